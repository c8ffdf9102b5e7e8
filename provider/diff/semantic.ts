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
import { XmlElement, childElements, firstChild, getAttr, textContent, formatElement, element } from "../xml/tree";
import { normalizeUuid } from "../xml/uuid";
import { scaledBytes } from "../xml/units";
import { canonicalBitmap, parseBitmap } from "../xml/bitmap";
import {
  BITMAP_ATTRIBUTES,
  ScaledValue,
  isDefaultOnly,
  isLibvirtDefault,
  isRuntimeOnlyValue,
  respell,
  scaledEntry,
} from "./libvirt-normalization";
import { isSecurityInfoPath, redactElement, REDACTED } from "../xml/security";

/**
 * How disruptive a change is, least first: `none` (a redefine, nothing to wait for), `live`
 * (libvirt applies it to the running guest and to the definition at once), `next-boot` (takes
 * effect when the guest next boots), `restart` (a running guest must be restarted), `replace`
 * (the domain is re-created).
 */
export type ChangeClass = "none" | "live" | "next-boot" | "restart" | "replace";

/** The order of {@link ChangeClass}, least disruptive first. */
export const CHANGE_CLASS_ORDER: readonly ChangeClass[] = ["none", "live", "next-boot", "restart", "replace"];

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
  "disk",
  "interface",
  "hostdev",
  "filesystem",
  "rng",
  "tpm",
  "channel",
  "graphics",
  "serial",
  "redirdev",
  "smartcard",
  "sound",
  "watchdog",
  "shmem",
  "vsock",
  "video",
]);

/** Top-level elements whose presence in actual but not in desired is a change. */
const USER_TOP = new Set(["hwuuid", "title", "description", "qemu:commandline", "sysinfo", "genid"]);

/** Elements compared as ordered lists (their children's order matters). */
const ORDERED = new Set(["qemu:commandline"]);

/** Runtime-only elements, never compared. */
const IGNORED_ELEMENTS = new Set(["alias", "seclabel"]);

/** Machine aliases libvirt expands (`pc` -> `pc-i440fx-11.1`). */
const MACHINE_ALIASES: Record<string, string> = { pc: "pc-i440fx-", q35: "pc-q35-" };

/**
 * Classifies a change by its path alone, as for a running domain that cannot take live changes;
 * {@link classifyAgainst} refines it against the running state.
 */
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
  return CHANGE_CLASS_ORDER[best]!; // 0, or the index of a class found in it
}

/**
 * What {@link classifyAgainst} classifies a change against: the domain's power state, whether
 * the backend can apply changes to a running guest, and the definitions.
 */
export interface ClassifyContext {
  /** The domain runs now (running or paused): a change either reaches the guest live or waits. */
  readonly running: boolean;
  /** The backend can apply live changes (virsh: yes; QEMU-direct: no, those wait for a restart). */
  readonly liveCapable: boolean;
  /** The desired definition. */
  readonly desired: DomainDef;
  /** The definition the change is measured from (libvirt's inactive XML). */
  readonly actual: DomainDef;
  /** The running guest's definition (libvirt's live XML), when read: its limits decide. @default actual */
  readonly live?: DomainDef;
}

/** Disk buses QEMU can hot-plug a disk on (libvirt refuses ide, sata, fdc). */
const HOTPLUG_DISK_BUSES = new Set(["virtio", "scsi", "usb"]);

/** The bus of a `<disk>`: its target's `bus`, else what libvirt infers from the target name. */
function diskBus(disk: XmlElement): string {
  const target = firstChild(disk, "target");
  const bus = getAttr(target, "bus");
  if (bus) return bus;
  const dev = getAttr(target, "dev") ?? "";
  if (dev.startsWith("vd")) return "virtio";
  if (dev.startsWith("sd")) return "scsi";
  if (dev.startsWith("hd")) return "ide";
  if (dev.startsWith("fd")) return "fdc";
  return "";
}

/** A scaled element in KiB, undefined when absent or unreadable. */
function kibOf(def: DomainDef, name: "memory" | "currentMemory"): bigint | undefined {
  try {
    return name === "memory" ? def.memoryKiB : def.currentMemoryKiB;
  } catch {
    return undefined;
  }
}

/** `<vcpu>`'s maximum (its text), undefined when absent or not a number. */
function vcpuMax(def: DomainDef): number | undefined {
  const t = (textContent(firstChild(def.root, "vcpu")) ?? "").trim();
  return /^[0-9]+$/.test(t) ? Number(t) : undefined;
}

/**
 * A device of `/domain/devices` by the key a change path gives it (`disk[target=vdb]`,
 * `interface[mac=52:54:00:12:34:56]`, ...), as {@link diffDomains} keys it on that side.
 */
export function deviceAt(def: DomainDef, key: string, side: "desired" | "actual"): XmlElement | undefined {
  const devices = firstChild(def.root, "devices");
  if (!devices) return undefined;
  return keyed("/domain/devices", devices, scopeOf(def.root, new Map()), side, def.root).get(key);
}

/** What a change needs to reach a running guest, when libvirt can apply it live (see {@link classifyAgainst}). */
export type LiveKind = "attach" | "detach" | "change-media" | "setmem" | "setvcpus";

/**
 * Whether libvirt can apply a change to the running guest, and how: a whole NIC or disk added
 * (`attach`, on a bus that hot-plugs) or removed (`detach`), a CD-ROM or floppy's `<source>`
 * (`change-media`), `<currentMemory>` within `<memory>` (`setmem`), `<vcpu current>` within the
 * `<vcpu>` maximum (`setvcpus`). Undefined for everything else. The maximums are the running
 * guest's (`live`, else `actual`) and the desired ones, and must not change in the same update.
 */
export function liveKind(
  change: DomainChange,
  ctx: Pick<ClassifyContext, "desired" | "actual" | "live">,
  all: readonly DomainChange[] = [],
): LiveKind | undefined {
  const p = change.path;
  const device = /^\/domain\/devices\/((disk|interface)(\[[^/]*\])?)$/.exec(p);
  if (device && (change.kind === "add" || change.kind === "remove")) {
    const [, key = "", kind] = device;
    const el = change.kind === "add" ? deviceAt(ctx.desired, key, "desired") : deviceAt(ctx.actual, key, "actual");
    if (!el) return undefined;
    if (kind === "disk" && !HOTPLUG_DISK_BUSES.has(diskBus(el))) return undefined;
    return change.kind === "add" ? "attach" : "detach";
  }
  const media = /^\/domain\/devices\/(disk\[target=[^\]/]*\])\/source(\/@file)?$/.exec(p);
  if (media && (change.kind === "add" || change.kind === "modify")) {
    const disk = deviceAt(ctx.desired, media[1] ?? "", "desired");
    const device = getAttr(disk, "device");
    const file = getAttr(disk && firstChild(disk, "source"), "file");
    if ((device === "cdrom" || device === "floppy") && file !== undefined) return "change-media";
    return undefined;
  }
  const limits = ctx.live ?? ctx.actual;
  if (p === "/domain/currentMemory" && change.kind === "modify") {
    if (all.some((c) => c.path === "/domain/memory" || c.path.startsWith("/domain/maxMemory"))) return undefined;
    const want = kibOf(ctx.desired, "currentMemory");
    const max = kibOf(ctx.desired, "memory");
    const runningMax = kibOf(limits, "memory");
    if (want === undefined || max === undefined || runningMax === undefined) return undefined;
    return want <= max && want <= runningMax ? "setmem" : undefined;
  }
  if (p === "/domain/vcpu/@current" && (change.kind === "modify" || change.kind === "add")) {
    if (all.some((c) => c.path === "/domain/vcpu")) return undefined;
    const want = Number(getAttr(firstChild(ctx.desired.root, "vcpu"), "current"));
    const max = vcpuMax(ctx.desired);
    const runningMax = vcpuMax(limits);
    if (!Number.isInteger(want) || want < 1 || max === undefined || runningMax === undefined) return undefined;
    return want <= max && want <= runningMax ? "setvcpus" : undefined;
  }
  return undefined;
}

/**
 * Classifies a change against the domain's state, before it is applied: a stopped domain takes
 * every change by a redefine (what would need a restart waits for its next boot: `next-boot`);
 * on a running domain, what libvirt applies live ({@link liveKind}) is `live` where the backend
 * can, and stays `restart` where it cannot; the rest keeps its {@link classifyChange} class.
 */
export function classifyAgainst(
  change: DomainChange,
  ctx: ClassifyContext,
  all: readonly DomainChange[] = [],
): ChangeClass {
  const base = classifyChange(change.path);
  if (base === "replace" || base === "none") return base;
  if (!ctx.running) return "next-boot";
  const kind = base === "restart" ? liveKind(change, ctx, all) : undefined;
  if (kind === undefined) return base;
  // The running guest has it already (the definition alone differs): a redefine is all it takes.
  if (ctx.live && runningHasIt(kind, change, ctx.desired, ctx.live)) return "none";
  return ctx.liveCapable ? "live" : base;
}

/** Whether the running guest (`live`) already is as desired for a change {@link liveKind} named. */
function runningHasIt(kind: LiveKind, change: DomainChange, desired: DomainDef, live: DomainDef): boolean {
  const key = /^\/domain\/devices\/([^/]+)/.exec(change.path)?.[1] ?? "";
  switch (kind) {
    case "attach":
      return deviceAt(live, key, "actual") !== undefined;
    case "detach":
      return deviceAt(live, key, "actual") === undefined;
    case "change-media": {
      const source = (def: DomainDef, side: "desired" | "actual") => {
        const disk = deviceAt(def, key, side);
        return getAttr(disk && firstChild(disk, "source"), "file");
      };
      return source(live, "actual") === source(desired, "desired");
    }
    case "setvcpus": {
      const vcpu = firstChild(live.root, "vcpu");
      const online = Number(getAttr(vcpu, "current") ?? (textContent(vcpu) ?? "").trim());
      return online === Number(getAttr(firstChild(desired.root, "vcpu"), "current"));
    }
    case "setmem":
      return false; // the live <currentMemory> is what the guest gave back, not the balloon target
  }
}

/** The changes, each classified by {@link classifyAgainst} (in the context of all of them). */
export function classifyChanges(changes: readonly DomainChange[], ctx: ClassifyContext): DomainChange[] {
  return changes.map((c) => ({ ...c, class: classifyAgainst(c, ctx, changes) }));
}

/**
 * Compares desired with actual: every stated desired value must be in actual (after
 * normalization); user-managed devices and a few top-level elements present only in actual are
 * removals.
 */
export function diffDomains(desired: DomainDef, actual: DomainDef): DomainDiff {
  const changes: DomainChange[] = [];
  compareElement(desired.root, actual.root, "/domain", changes, { root: desired.root, dNs: new Map(), aNs: new Map() });
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

/** The namespace URI of the QEMU driver's elements (`<qemu:commandline>`), whatever the prefix. */
export const QEMU_NAMESPACE_URI = "http://libvirt.org/schemas/domain/qemu/1.0";

/** In-scope namespace declarations: prefix (`""` for the default namespace) -> URI. */
type NsScope = ReadonlyMap<string, string>;

/** The scope inside `el`: its `xmlns`/`xmlns:p` declarations over the parent's. */
function scopeOf(el: XmlElement, parent: NsScope): NsScope {
  const decls = el.attrs.filter((a) => a.name === "xmlns" || a.name.startsWith("xmlns:"));
  if (decls.length === 0) return parent;
  const m = new Map(parent);
  for (const a of decls) m.set(a.name === "xmlns" ? "" : a.name.slice(6), a.value);
  return m;
}

/**
 * The name of an element as libvirt reads it: by namespace URI, not prefix (libvirt's QEMU
 * driver reads its elements by URI and writes them as `qemu:`). Elements of the QEMU namespace
 * are `qemu:LOCAL` whatever their prefix; of another namespace `{URI}LOCAL`; of none, the name.
 */
function canonicalName(el: XmlElement, scope: NsScope): string {
  const i = el.name.indexOf(":");
  const prefix = i < 0 ? "" : el.name.slice(0, i);
  const local = i < 0 ? el.name : el.name.slice(i + 1);
  const uri = scopeOf(el, scope).get(prefix);
  if (uri === undefined || uri === "") return el.name;
  if (uri === QEMU_NAMESPACE_URI) return `qemu:${local}`;
  return `{${uri}}${local}`;
}

/** The element in canonical form (names by URI, no namespace declarations), for ordered comparison. */
function canonicalXml(el: XmlElement, scope: NsScope): string {
  const inner = scopeOf(el, scope);
  const attrs = el.attrs
    .filter((a) => !a.name.startsWith("xmlns"))
    .map((a) => ` ${a.name}='${a.value}'`)
    .join("");
  const kids = childElements(el)
    .map((c) => canonicalXml(c, inner))
    .join("");
  const text = kids === "" ? (textContent(el) ?? "").trim() : "";
  return `<${canonicalName(el, scope)}${attrs}>${kids}${text}</>`;
}

/** Normalizes a value for comparison, knowing where it is and on which element. */
function normalizeValue(path: string, v: string, el: XmlElement): string {
  const t = respell(path, v.trim(), el);
  if (/\/mac\/@address$/.test(path)) return t.toLowerCase();
  if (/^\/domain\/(uuid|hwuuid|genid)$/.test(path) || /entry\[name=uuid\]$/.test(path)) return normalizeUuid(t) ?? t;
  if (BITMAP_ATTRIBUTES.test(path)) return canonicalBitmap(t) ?? t;
  if (INT.test(t) && !/\/(name|serial|title|description)$/.test(path)) return BigInt(t.toLowerCase()).toString();
  return t;
}

function sameValue(path: string, desired: string, actual: string | undefined, d: XmlElement, a: XmlElement): boolean {
  if (actual === undefined) return false;
  const dn = normalizeValue(path, desired, d);
  const an = normalizeValue(path, actual, a);
  if (dn === an) return true;
  if (path === "/domain/os/type/@machine" && MACHINE_ALIASES[dn] && an.startsWith(MACHINE_ALIASES[dn])) return true;
  return false;
}

/** A scaled value in its base unit (KiB rounded up, or bytes), as text; undefined when unreadable. */
function scaledValue(entry: ScaledValue, el: XmlElement): string | undefined {
  const raw = entry.attr ? getAttr(el, entry.attr) : textContent(el);
  if (raw === undefined) return undefined;
  const bytes = scaledBytes(raw, getAttr(el, "unit"), entry.defaultUnit);
  if (bytes === undefined) return undefined;
  return (entry.base === "KiB" ? (bytes + 1023n) / 1024n : bytes).toString();
}

/** The text of a scaled element in its base unit (for the defaults table). */
function scaledText(el: XmlElement, path: string): string | undefined {
  const entry = scaledEntry(path);
  return entry && !entry.attr ? scaledValue(entry, el) : undefined;
}

/**
 * A value as it stands in a path key: `[`, `]`, `/` and `%` percent-encoded, so a value can never
 * end its key early or add a path segment (the path decides, for instance, what is redacted as
 * security info).
 */
function k(v: string): string {
  return v.replace(/[%[\]/]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);
}

/** The identity key of a child, used to match desired children to actual ones. */
function childKey(parentPath: string, el: XmlElement, name: string, ordinal: number): string {
  if (parentPath === "/domain/devices") {
    switch (name) {
      case "disk": {
        const dev = getAttr(firstChild(el, "target"), "dev");
        if (dev) return `disk[target=${k(dev)}]`;
        break;
      }
      case "interface": {
        const mac = getAttr(firstChild(el, "mac"), "address");
        if (mac) return `interface[mac=${k(mac.toLowerCase())}]`;
        break;
      }
      case "controller":
        return `controller[type=${k(getAttr(el, "type") ?? "")},index=${k(getAttr(el, "index") ?? "0")}]`;
      case "graphics":
        return `graphics[type=${k(getAttr(el, "type") ?? "")}]`;
      case "channel": {
        const n = getAttr(firstChild(el, "target"), "name");
        if (n) return `channel[name=${k(n)}]`;
        break;
      }
    }
  }
  if (
    /^\/domain\/cpu\/numa\/cell[^/]*\/distances$/.test(parentPath) &&
    name === "sibling" &&
    getAttr(el, "id") !== undefined
  ) {
    return `sibling[id=${Number(getAttr(el, "id"))}]`;
  }
  if (name === "entry" && getAttr(el, "name") !== undefined) return `entry[name=${k(getAttr(el, "name")!)}]`;
  if (name === "timer" && getAttr(el, "name") !== undefined) return `timer[name=${k(getAttr(el, "name")!)}]`;
  if (name === "feature" && getAttr(el, "name") !== undefined) return `feature[name=${k(getAttr(el, "name")!)}]`;
  if (name === "sysinfo") return `sysinfo[type=${k(getAttr(el, "type") ?? "")}]`;
  return ordinal === 0 ? name : `${name}[${ordinal + 1}]`;
}

/** The USB2 controllers: an EHCI master and its UHCI companions, which share one index. */
const USB2_MODELS = new Set(["ich9-ehci1", "ich9-uhci1", "ich9-uhci2", "ich9-uhci3"]);

/**
 * Gives controllers without an index the one libvirt assigns (virDomainAssignControllerIndexes,
 * src/conf/domain_postparse.c): a USB2 controller joins the group (index) of the USB2 controller
 * before it unless that group already has its model; pci-root/pcie-root get 0; every other the
 * lowest index unused among controllers of its type. Returns the indexes by element.
 */
function assignControllerIndexes(controllers: XmlElement[]): Map<XmlElement, string> {
  const out = new Map<XmlElement, string>();
  const used = new Map<string, Set<number>>();
  const usedOf = (t: string) => used.get(t) ?? used.set(t, new Set()).get(t)!;
  for (const c of controllers) {
    const i = getAttr(c, "index");
    if (i !== undefined && /^\d+$/.test(i.trim())) usedOf(getAttr(c, "type") ?? "").add(Number(i));
  }
  const usb2Groups = new Map<string, Set<string>>();
  let prevUsb2: XmlElement | undefined;
  for (const c of controllers) {
    const type = getAttr(c, "type") ?? "";
    const model = getAttr(c, "model") ?? "";
    const usb2 = type === "usb" && USB2_MODELS.has(model);
    let idx = getAttr(c, "index");
    if (idx === undefined) {
      const prevGroup = prevUsb2 && usb2Groups.get(out.get(prevUsb2)!);
      if (usb2 && prevUsb2 && prevGroup && !prevGroup.has(model)) idx = out.get(prevUsb2)!;
      else if (type === "pci" && (model === "pci-root" || model === "pcie-root")) idx = "0";
      else {
        let n = 0;
        while (usedOf(type).has(n)) n++;
        idx = String(n);
      }
      usedOf(type).add(Number(idx));
    }
    const index = String(Number(idx));
    out.set(c, index);
    if (usb2) {
      const g = usb2Groups.get(index) ?? usb2Groups.set(index, new Set()).get(index)!;
      g.add(model);
      prevUsb2 = c;
    } else if (type === "usb") {
      prevUsb2 = undefined;
    }
  }
  return out;
}

/**
 * The devices as libvirt sees them after its console compat rule (virDomainDefAddConsoleCompat,
 * src/conf/domain_conf.c), for an HVM guest: a first <console> of target type serial (or none)
 * without any <serial> stands for a <serial> libvirt adds; with serials, a first console of
 * another target type gets a serial console put before it.
 */
function consoleCompat(devices: XmlElement[], root: XmlElement): XmlElement[] {
  const os = firstChild(root, "os");
  if ((textContent(os && firstChild(os, "type")) ?? "").trim() !== "hvm") return devices;
  const firstSerial = devices.find((c) => c.name === "serial");
  const firstConsole = devices.find((c) => c.name === "console");
  if (!firstConsole) return devices;
  const firstTarget = getAttr(firstChild(firstConsole, "target"), "type");
  const at = devices.indexOf(firstConsole);
  if (!firstSerial && (firstTarget === undefined || firstTarget === "serial")) {
    const type = getAttr(firstConsole, "type");
    return [...devices.slice(0, at), element("serial", type ? { type } : {}), ...devices.slice(at)];
  }
  if (firstSerial && firstTarget !== undefined && firstTarget !== "serial") {
    const type = getAttr(firstSerial, "type");
    return [...devices.slice(0, at), element("console", type ? { type } : {}), ...devices.slice(at)];
  }
  return devices;
}

/** Keys for all element children; interfaces without a MAC are keyed by their order among such. */
function keyed(
  parentPath: string,
  el: XmlElement,
  scope: NsScope,
  side: "desired" | "actual",
  root: XmlElement,
): Map<string, XmlElement> {
  const m = new Map<string, XmlElement>();
  const counts: Record<string, number> = {};
  let kids = childElements(el).filter((c) => !IGNORED_ELEMENTS.has(c.name));
  let controllerKey: ((c: XmlElement) => string) | undefined;
  if (parentPath === "/domain/devices") {
    if (side === "desired") kids = consoleCompat(kids, root);
    // the primary video first (the parser inserts it first; virDomainDefPostParseVideo)
    const videos = kids.filter((c) => c.name === "video");
    const primary = videos.find((v) => getAttr(firstChild(v, "model"), "primary") === "yes");
    if (primary && videos[0] !== primary) {
      const ordered = [primary, ...videos.filter((v) => v !== primary)];
      let vi = 0;
      kids = kids.map((c) => (c.name === "video" ? (ordered[vi++] ?? c) : c));
    }
    const controllers = kids.filter((c) => c.name === "controller");
    const indexes = assignControllerIndexes(controllers);
    const base = (c: XmlElement) => `type=${getAttr(c, "type") ?? ""},index=${indexes.get(c)}`;
    const seen = new Map<string, number>();
    for (const c of controllers) seen.set(base(c), (seen.get(base(c)) ?? 0) + 1);
    // USB2 companions share their master's index: they are told apart by model
    controllerKey = (c) =>
      `controller[${base(c)}${(seen.get(base(c)) ?? 0) > 1 ? `,model=${getAttr(c, "model") ?? ""}` : ""}]`;
  }
  // NUMA cells by id; a cell without one has its position as id (virDomainNumaDefParseXML)
  const cells = parentPath === "/domain/cpu/numa" ? kids.filter((c) => c.name === "cell") : [];
  const cellKey = (c: XmlElement) => `cell[id=${Number(getAttr(c, "id") ?? cells.indexOf(c))}]`;
  for (const c of kids) {
    const name = canonicalName(c, scope);
    const base =
      name === "controller" && controllerKey
        ? controllerKey(c)
        : name === "cell" && cells.length > 0
          ? cellKey(c)
          : childKey(parentPath, c, name, 0);
    const isIdentity = base.includes("[");
    let key: string;
    if (isIdentity && !m.has(base)) {
      key = base;
    } else {
      const n = (counts[name] = (counts[name] ?? -1) + 1);
      key = n === 0 ? name : `${name}[${n + 1}]`;
      if (m.has(key)) key = `${name}[#${n + 1}]`;
    }
    m.set(key, c);
  }
  return m;
}

function isRuntimeOnly(path: string, el: XmlElement, attr: string): boolean {
  if (
    el.name === "target" &&
    attr === "dev" &&
    /\/interface/.test(path) &&
    /^(vnet|macvtap|tap)\d+$/.test(getAttr(el, "dev") ?? "")
  )
    return true;
  if (el.name === "graphics" && (attr === "port" || attr === "websocket") && getAttr(el, "autoport") === "yes")
    return true;
  if (path === "/domain" && attr === "id") return true;
  return isRuntimeOnlyValue(`${path}/@${attr}`, getAttr(el, attr) ?? "");
}

/** Per-thread scheduler elements of <cputune> (one element covers the threads of its bitmap). */
const SCHEDULERS: Record<string, string> = { vcpusched: "vcpus", iothreadsched: "iothreads", emulatorsched: "" };

/**
 * <vcpusched>/<iothreadsched> as libvirt holds them (virDomainSchedulerParse): one scheduler
 * per thread; the formatter regroups them, so only the per-thread map is compared.
 */
function schedulerMap(cputune: XmlElement): Map<string, string> {
  const m = new Map<string, string>();
  for (const c of childElements(cputune)) {
    const attr = SCHEDULERS[c.name];
    if (!attr) continue;
    const threads = parseBitmap(getAttr(c, attr) ?? "") ?? [];
    const value = c.attrs
      .filter((a) => a.name !== attr)
      .map((a) => `${a.name}=${a.value}`)
      .join(",");
    for (const t of threads) m.set(`${c.name}[${attr.replace(/s$/, "")}=${t}]`, value);
  }
  return m;
}

interface DiffScope {
  /** The desired document's root (for conditional defaults). */
  readonly root: XmlElement;
  readonly dNs: NsScope;
  readonly aNs: NsScope;
}

function compareElement(d: XmlElement, a: XmlElement, path: string, changes: DomainChange[], scope: DiffScope): void {
  const dNs = scopeOf(d, scope.dNs);
  const aNs = scopeOf(a, scope.aNs);
  const inner: DiffScope = { root: scope.root, dNs, aNs };
  const scaled = scaledEntry(path);
  if (scaled && !scaled.attr) {
    const dv = scaledValue(scaled, d);
    const av = scaledValue(scaled, a);
    if (dv !== av)
      push(changes, {
        path,
        kind: "modify",
        old: av === undefined ? undefined : `${av} ${scaled.base}`,
        new: dv === undefined ? undefined : `${dv} ${scaled.base}`,
      });
    return;
  }
  for (const attr of d.attrs) {
    if (attr.name.startsWith("xmlns")) continue;
    if (isRuntimeOnly(path, d, attr.name)) continue;
    const ap = `${path}/@${attr.name}`;
    if (scaled && (attr.name === scaled.attr || attr.name === "unit")) {
      if (attr.name === "unit") continue;
      const dv = scaledValue(scaled, d);
      const av = scaledValue(scaled, a);
      if (dv !== av)
        push(changes, {
          path: ap,
          kind: av === undefined ? "add" : "modify",
          old: av === undefined ? undefined : `${av} ${scaled.base}`,
          new: `${dv ?? attr.value} ${scaled.base}`,
        });
      continue;
    }
    const av = getAttr(a, attr.name);
    if (av === undefined && isLibvirtDefault(ap, attr.value, d, scope.root)) continue;
    if (!sameValue(ap, attr.value, av, d, a))
      push(changes, { path: ap, kind: av === undefined ? "add" : "modify", old: av, new: attr.value });
  }
  const hasChildren = childElements(d).length > 0 || childElements(a).length > 0;
  const dt = (textContent(d) ?? "").trim();
  if (!hasChildren && dt !== "") {
    const at = textContent(a) ?? "";
    if (!sameValue(path, dt, at, d, a)) push(changes, { path, kind: "modify", old: at.trim(), new: dt });
  }
  const name = canonicalName(d, scope.dNs);
  if (ORDERED.has(name)) {
    const ds = childElements(d)
      .map((c) => canonicalXml(c, dNs))
      .join("\n");
    const as = childElements(a)
      .map((c) => canonicalXml(c, aNs))
      .join("\n");
    const shown = (el: XmlElement) =>
      childElements(el)
        .map((c) => xmlOf(c, `${path}/${c.name}`))
        .join("\n");
    if (ds !== as) push(changes, { path, kind: "modify", old: shown(a), new: shown(d) });
    return;
  }
  const dm = keyed(path, d, dNs, "desired", scope.root);
  const am = keyed(path, a, aNs, "actual", scope.root);
  if (path === "/domain/cputune") {
    const ds = schedulerMap(d);
    const as = schedulerMap(a);
    for (const [k, v] of ds)
      if (as.get(k) !== v)
        push(changes, { path: `${path}/${k}`, kind: as.has(k) ? "modify" : "add", old: as.get(k), new: v });
    for (const [k, v] of as) if (!ds.has(k)) push(changes, { path: `${path}/${k}`, kind: "remove", old: v });
    for (const m of [dm, am]) for (const [k, el] of m) if (el.name in SCHEDULERS) m.delete(k);
  }
  if (path === "/domain/devices") pairInterfacesWithoutMac(dm, am);
  for (const [key, dc] of dm) {
    const cp = `${path}/${key}`;
    const ac = am.get(key);
    if (!ac) {
      if (isDefaultOnly(dc, cp, scope.root, scaledText)) continue;
      push(changes, { path: cp, kind: "add", new: xmlOf(dc, cp) });
      continue;
    }
    compareElement(dc, ac, cp, changes, inner);
  }
  for (const [key, ac] of am) {
    if (dm.has(key)) continue;
    const removable =
      (path === "/domain/devices" && USER_DEVICES.has(ac.name) && !libvirtAdded(ac, d)) ||
      (path === "/domain" && USER_TOP.has(canonicalName(ac, aNs)));
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
      c.kind === "modify"
        ? `${JSON.stringify(c.old ?? null)} -> ${JSON.stringify(c.new ?? null)}`
        : c.kind === "add"
          ? oneLine(c.new)
          : oneLine(c.old);
    return `${sign[c.kind]} ${c.path}: ${val}  [${c.class}]`;
  });
  lines.push(`${diff.changes.length} change(s); apply: ${diff.class}`);
  return lines.join("\n") + "\n";
}

function oneLine(s: string | undefined): string {
  const t = (s ?? "").replace(/\s*\n\s*/g, "");
  return t.length > 160 ? t.slice(0, 157) + "..." : t;
}
