/**
 * The semantic diff of domain XML: what the desired document states must be found in the
 * actual one (libvirt adds defaults, addresses, aliases; those are not changes). Devices are
 * matched by identity (disk by target dev, interface by MAC else by order, controller by
 * type+index), values are compared after normalization (units, hex vs decimal, case of MACs
 * and UUIDs, machine aliases), runtime-only values are ignored (aliases, `vnetN` targets,
 * seclabels, autoport ports). Each change is addressed by a path such as
 * `/domain/devices/interface[mac=52:54:00:12:34:56]/model/@type` and classified by
 * {@link classifyChange}.
 *
 * Security info (graphics passwords, see `xml/security.ts`) is compared like any value, so a
 * changed password is a change, but a change never carries it: its old and new values, and the
 * XML of an added or removed element, show the redaction marker instead.
 *
 * Pure: no I/O, no Pulumi.
 */
import { DomainDef } from "../xml/domain";
import { XmlElement, childElements, firstChild, getAttr, textContent, formatElement } from "../xml/tree";
import { normalizeUuid } from "../xml/uuid";
import { toKiB } from "../xml/units";
import { isSecurityInfoPath, redactElement, REDACTED } from "../xml/security";

/** How disruptive a change is, least first. */
export type ChangeClass = "none" | "next-boot" | "restart" | "replace";

/** The order of {@link ChangeClass}, least disruptive first. */
export const CHANGE_CLASS_ORDER: readonly ChangeClass[] = ["none", "next-boot", "restart", "replace"];

/** One semantic difference between desired and actual. */
export interface DomainChange {
  /** Path of the element or attribute, e.g. `/domain/memory` or `/domain/devices/disk[target=vdb]`. */
  readonly path: string;
  /** `add`: desired states it, actual lacks it; `remove`: actual has it, desired does not; `modify`: values differ. */
  readonly kind: "add" | "remove" | "modify";
  /** Actual value (normalized), or the element's XML for add/remove. */
  readonly old?: string;
  /** Desired value (normalized), or the element's XML for add/remove. */
  readonly new?: string;
  /** What applying it takes. */
  readonly class: ChangeClass;
}

/** The result of {@link diffDomains}. */
export interface DomainDiff {
  readonly changes: DomainChange[];
  /** The most disruptive class among the changes, `none` when there are none. */
  readonly class: ChangeClass;
}

/** Device kinds a user manages: an actual device of these kinds that desired lacks is a removal. */
const USER_DEVICES = new Set([
  "disk", "interface", "hostdev", "filesystem", "rng", "tpm", "channel", "graphics", "serial",
  "redirdev", "smartcard", "sound", "watchdog", "shmem", "vsock", "video",
]);

/** Top-level elements whose presence in actual but not in desired is a change. */
const USER_TOP = new Set(["hwuuid", "title", "description", "qemu:commandline", "sysinfo", "genid"]);

/** Elements compared as ordered lists (their children's order matters). */
const ORDERED = new Set(["qemu:commandline"]);

/** Runtime-only elements, never compared. */
const IGNORED_ELEMENTS = new Set(["alias", "seclabel"]);

/** Machine aliases libvirt expands (`pc` -> `pc-i440fx-11.1`). */
const MACHINE_ALIASES: Record<string, string> = { pc: "pc-i440fx-", q35: "pc-q35-" };

/** Classifies a change by its path. */
export function classifyChange(path: string): ChangeClass {
  if (/^\/domain\/(@type|name|uuid)(\/|$)/.test(path)) return "replace";
  if (/^\/domain\/(title|description|metadata)(\/|$)/.test(path)) return "none";
  if (/^\/domain\/(on_poweroff|on_reboot|on_crash|on_lockfailure|pm)(\/|$)/.test(path)) return "next-boot";
  if (/^\/domain\/os\/boot(\/|\[|$)/.test(path) || /\/boot\/@order$/.test(path)) return "next-boot";
  return "restart";
}

/** The most disruptive of some classes. */
export function maxClass(classes: Iterable<ChangeClass>): ChangeClass {
  let best = 0;
  for (const c of classes) best = Math.max(best, CHANGE_CLASS_ORDER.indexOf(c));
  return CHANGE_CLASS_ORDER[best];
}

/**
 * Compares desired with actual: every stated desired value must be in actual (after
 * normalization); user-managed devices and a few top-level elements present only in actual are
 * removals.
 */
export function diffDomains(desired: DomainDef, actual: DomainDef): DomainDiff {
  const changes: DomainChange[] = [];
  compareElement(desired.root, actual.root, "/domain", changes);
  return { changes, class: maxClass(changes.map((c) => c.class)) };
}

function push(changes: DomainChange[], c: Omit<DomainChange, "class">): void {
  // A value at a security-info path (an element added or removed already shows redacted XML).
  if (isSecurityInfoPath(c.path) && (c.kind === "modify" || c.path.includes("/@"))) {
    c = { ...c, old: c.old === undefined ? undefined : REDACTED, new: c.new === undefined ? undefined : REDACTED };
  }
  changes.push({ ...c, class: classifyChange(c.path) });
}

/** The XML of an element found at `path`, its security info redacted. */
function xmlOf(el: XmlElement, path: string): string {
  const out: string[] = [];
  formatElement(redactElement(el, path), "", out);
  return out.join("").trim();
}

const INT = /^(0x[0-9a-f]+|[0-9]+)$/i;

/** Normalizes a value for comparison, knowing where it is. */
function normalizeValue(path: string, v: string): string {
  const t = v.trim();
  if (/\/mac\/@address$/.test(path)) return t.toLowerCase();
  if (/^\/domain\/(uuid|hwuuid|genid)$/.test(path) || /entry\[name=uuid\]$/.test(path)) return normalizeUuid(t) ?? t;
  if (INT.test(t) && !/\/(name|serial|title|description)$/.test(path)) return BigInt(t.toLowerCase()).toString();
  return t;
}

function sameValue(path: string, desired: string, actual: string | undefined): boolean {
  if (actual === undefined) return false;
  const d = normalizeValue(path, desired);
  const a = normalizeValue(path, actual);
  if (d === a) return true;
  if (path === "/domain/os/type/@machine" && MACHINE_ALIASES[d] && a.startsWith(MACHINE_ALIASES[d])) return true;
  return false;
}

/** Scaled elements (value + unit) compared in KiB. */
const SCALED = new Set(["/domain/memory", "/domain/currentMemory", "/domain/maxMemory"]);

function scaledKiB(el: XmlElement, path: string): string | undefined {
  try {
    return toKiB(textContent(el) ?? "", getAttr(el, "unit"), path).toString();
  } catch {
    return undefined;
  }
}

/** The identity key of a child, used to match desired children to actual ones. */
function childKey(parentPath: string, el: XmlElement, ordinal: number): string {
  if (parentPath === "/domain/devices") {
    switch (el.name) {
      case "disk": {
        const dev = getAttr(firstChild(el, "target"), "dev");
        if (dev) return `disk[target=${dev}]`;
        break;
      }
      case "interface": {
        const mac = getAttr(firstChild(el, "mac"), "address");
        if (mac) return `interface[mac=${mac.toLowerCase()}]`;
        break;
      }
      case "controller":
        return `controller[type=${getAttr(el, "type") ?? ""},index=${getAttr(el, "index") ?? "0"}]`;
      case "graphics":
        return `graphics[type=${getAttr(el, "type") ?? ""}]`;
      case "channel": {
        const n = getAttr(firstChild(el, "target"), "name");
        if (n) return `channel[name=${n}]`;
        break;
      }
    }
  }
  if (el.name === "entry" && getAttr(el, "name") !== undefined) return `entry[name=${getAttr(el, "name")}]`;
  if (el.name === "timer" && getAttr(el, "name") !== undefined) return `timer[name=${getAttr(el, "name")}]`;
  if (el.name === "feature" && getAttr(el, "name") !== undefined) return `feature[name=${getAttr(el, "name")}]`;
  if (el.name === "sysinfo") return `sysinfo[type=${getAttr(el, "type") ?? ""}]`;
  return ordinal === 0 ? el.name : `${el.name}[${ordinal + 1}]`;
}

/** Keys for all element children; interfaces without a MAC are keyed by their order among such. */
function keyed(parentPath: string, el: XmlElement): Map<string, XmlElement> {
  const m = new Map<string, XmlElement>();
  const counts: Record<string, number> = {};
  for (const c of childElements(el)) {
    if (IGNORED_ELEMENTS.has(c.name)) continue;
    const base = childKey(parentPath, c, 0);
    const isIdentity = base.includes("[");
    let key: string;
    if (isIdentity && !m.has(base)) {
      key = base;
    } else {
      const n = (counts[c.name] = (counts[c.name] ?? -1) + 1);
      key = n === 0 ? c.name : `${c.name}[${n + 1}]`;
      if (m.has(key)) key = `${c.name}[#${n + 1}]`;
    }
    m.set(key, c);
  }
  return m;
}

function isRuntimeOnly(path: string, el: XmlElement, attr: string): boolean {
  if (el.name === "target" && attr === "dev" && /\/interface/.test(path) && /^(vnet|macvtap|tap)\d+$/.test(getAttr(el, "dev") ?? "")) return true;
  if (el.name === "graphics" && (attr === "port" || attr === "websocket") && getAttr(el, "autoport") === "yes") return true;
  if (path === "/domain" && attr === "id") return true;
  return false;
}

function compareElement(d: XmlElement, a: XmlElement, path: string, changes: DomainChange[]): void {
  if (SCALED.has(path)) {
    const dv = scaledKiB(d, path);
    const av = scaledKiB(a, path);
    if (dv !== av) push(changes, { path, kind: "modify", old: av === undefined ? undefined : `${av} KiB`, new: dv === undefined ? undefined : `${dv} KiB` });
    return;
  }
  for (const attr of d.attrs) {
    if (attr.name.startsWith("xmlns")) continue;
    if (isRuntimeOnly(path, d, attr.name)) continue;
    const ap = `${path}/@${attr.name}`;
    const av = getAttr(a, attr.name);
    if (!sameValue(ap, attr.value, av)) push(changes, { path: ap, kind: av === undefined ? "add" : "modify", old: av, new: attr.value });
  }
  const hasChildren = childElements(d).length > 0 || childElements(a).length > 0;
  const dt = (textContent(d) ?? "").trim();
  if (!hasChildren && dt !== "") {
    const at = textContent(a) ?? "";
    if (!sameValue(path, dt, at)) push(changes, { path, kind: "modify", old: at.trim(), new: dt });
  }
  if (ORDERED.has(d.name)) {
    const ds = childElements(d).map((c) => xmlOf(c, `${path}/${c.name}`)).join("\n");
    const as = childElements(a).map((c) => xmlOf(c, `${path}/${c.name}`)).join("\n");
    if (ds !== as) push(changes, { path, kind: "modify", old: as, new: ds });
    return;
  }
  const dm = keyed(path, d);
  const am = keyed(path, a);
  if (path === "/domain/devices") pairInterfacesWithoutMac(dm, am);
  for (const [key, dc] of dm) {
    const cp = `${path}/${key}`;
    const ac = am.get(key);
    if (!ac) {
      push(changes, { path: cp, kind: "add", new: xmlOf(dc, cp) });
      continue;
    }
    compareElement(dc, ac, cp, changes);
  }
  for (const [key, ac] of am) {
    if (dm.has(key)) continue;
    const removable =
      (path === "/domain/devices" && USER_DEVICES.has(ac.name) && !libvirtAdded(ac, d)) || (path === "/domain" && USER_TOP.has(ac.name));
    if (removable) push(changes, { path: `${path}/${key}`, kind: "remove", old: xmlOf(ac, `${path}/${key}`) });
  }
}

/**
 * Devices libvirt adds by itself, so their presence in actual alone is no removal: the ICH9
 * watchdog of q35 machines, and a video device beside graphics when desired states none.
 */
function libvirtAdded(el: XmlElement, desiredDevices: XmlElement): boolean {
  if (el.name === "watchdog") return getAttr(el, "model") === "itco";
  if (el.name === "video") return childElements(desiredDevices, "video").length === 0;
  return false;
}

/**
 * Interfaces the desired XML gives without a MAC get one from libvirt: pair them, in order,
 * with the actual interfaces no desired MAC claims (re-keying the actual ones).
 */
function pairInterfacesWithoutMac(dm: Map<string, XmlElement>, am: Map<string, XmlElement>): void {
  const desiredLoose = [...dm.keys()].filter((k) => /^interface(\[\d+\])?$/.test(k));
  const actualFree = [...am.keys()].filter((k) => k.startsWith("interface[mac=") && !dm.has(k));
  desiredLoose.forEach((dk, i) => {
    const ak = actualFree[i];
    if (ak === undefined) return;
    const el = am.get(ak)!;
    am.delete(ak);
    am.set(dk, el);
  });
}

/** Formats a diff as readable text, one change a line: `~ path: old -> new`. */
export function formatDiffText(diff: DomainDiff): string {
  if (diff.changes.length === 0) return "no changes\n";
  const sign = { add: "+", remove: "-", modify: "~" } as const;
  const lines = diff.changes.map((c) => {
    const val =
      c.kind === "modify" ? `${JSON.stringify(c.old ?? null)} -> ${JSON.stringify(c.new ?? null)}` :
      c.kind === "add" ? oneLine(c.new) : oneLine(c.old);
    return `${sign[c.kind]} ${c.path}: ${val}  [${c.class}]`;
  });
  lines.push(`${diff.changes.length} change(s); apply: ${diff.class}`);
  return lines.join("\n") + "\n";
}

function oneLine(s: string | undefined): string {
  const t = (s ?? "").replace(/\s*\n\s*/g, "");
  return t.length > 160 ? t.slice(0, 157) + "..." : t;
}
