/**
 * The fleet planner: from a template domain's XML and the fleet's options, a plan per member:
 * its name, hwuuid (by policy), MACs, cleared per-domain fields, a fresh genid, and what to do
 * with each disk (overlay, copy or share). Deterministic: the same inputs give the same plan,
 * and a member's plan depends only on its key, so scaling up or down leaves the other members
 * untouched. What cannot be cloned comes back as a refusal, never as an exception half-way.
 *
 * Pure: no I/O, no Pulumi.
 */
import { createHash } from "node:crypto";
import * as posix from "node:path/posix";
import { DomainDef } from "../xml/domain";
import { DomainXmlError } from "../xml/errors";
import { removeUuidPassthrough, resolveIdentity, uuidPassthrough } from "../xml/identity";
import { redactSecurityInfoXml, xmlHasSecurityInfo } from "../xml/security";
import {
  childElements,
  element,
  firstChild,
  getAttr,
  removeChild,
  setAttr,
  setTextContent,
  textContent,
  XmlElement,
} from "../xml/tree";
import { isValidUuid, NAMESPACE_URL, normalizeUuid, parseUuid, uuidV5 } from "../xml/uuid";
import { NAME_RE } from "../desired/inputs";

/** How members get their hardware UUID. */
export type HwuuidPolicy =
  /** The template's guest-visible UUID (one member only: the single-replacement case). */
  | { readonly kind: "keep" }
  /** UUIDv5 from project, stack, fleet name and member key: stable across re-creation, distinct across stacks and fleets. */
  | { readonly kind: "derive" }
  /** Given per member key. */
  | { readonly kind: "explicit"; readonly hwuuids: Readonly<Record<string, string>> };

/** What to do with a writable disk. */
export type DiskMode = "overlay" | "copy" | "share";

/** The planner's inputs. */
export interface FleetOptions {
  /** The fleet's (component's) name. */
  readonly fleetName: string;
  /** The Pulumi project and stack: part of the derive namespace. */
  readonly project: string;
  readonly stack: string;
  /** The template's inactive XML with its security info (`virsh dumpxml --inactive --security-info`): members keep its graphics password. */
  readonly templateXml: string;
  /** Member keys, in order (e.g. `["1", "2", "3"]`): the members planned here. */
  readonly keys: readonly string[];
  /**
   * The whole fleet's keys, in order, when `keys` is the part on one host of several: `{index}`,
   * the key checks and the `keep` and `explicit` policies are over it. @default `keys`
   */
  readonly fleetKeys?: readonly string[];
  /**
   * Member names: `{stack}`, `{fleet}`, `{key}` and `{index}` (1-based position) are replaced.
   * @default `{stack}-{fleet}-{key}` (two stacks of one program never collide on a host)
   */
  readonly namePattern?: string;
  readonly hwuuidPolicy: HwuuidPolicy;
  /** Mode for writable disks. @default `overlay` */
  readonly diskMode?: DiskMode;
  /** Where member disks and NVRAM go. @default the template disk's own directory */
  readonly imageDir?: string;
}

/** One disk of a member. */
export interface DiskPlan {
  /** Guest target (`vda`). */
  readonly target: string;
  readonly mode: DiskMode;
  /** The template's image. */
  readonly source: string;
  /** The template image's format. */
  readonly sourceFormat: string;
  /** The member's image (equals `source` for `share`). */
  readonly path: string;
  /** The member image's format: qcow2 for overlays, the source format for copies. */
  readonly format: string;
  /** When the fleet makes its images as storage volumes ({@link planVolumes}): the member's volume. */
  readonly volume?: VolumePlan;
}

/** A member image made as a libvirt storage volume: its pool and name (its path is `path`, in the pool's directory). */
export interface VolumePlan {
  /** The pool of the new volume (the one whose directory is the member image's). */
  readonly pool: string;
  /** The new volume's name (the member image's file name). */
  readonly name: string;
}

/** The plan of one member. */
export interface MemberPlan {
  readonly key: string;
  /** 1-based position in the key list. */
  readonly index: number;
  readonly name: string;
  /** The guest-visible UUID, or undefined when the guest sees the (new) libvirt uuid. */
  readonly hwuuid: string | undefined;
  readonly macs: string[];
  readonly disks: DiskPlan[];
  /** NVRAM to copy: template path -> member path; undefined when there is none to copy (with `<nvram template>` the backend makes the member's own at first start). */
  readonly nvram: { readonly source: string; readonly path: string; readonly volume?: VolumePlan } | undefined;
  /** The member's domain XML (no `<uuid>`: libvirt gives each member a new one; no hwuuid: set by the Domain). */
  readonly xml: string;
}

/** Something the planner will not do, and why. */
export interface PlanRefusal {
  /** The member key, when it concerns one member. */
  readonly key?: string;
  /** Where: an XML path or an option. */
  readonly path: string;
  readonly reason: string;
}

/**
 * What {@link planFleet} decided: the members to create, or the refusals that stop the fleet
 * (a plan with refusals is never applied).
 */
export interface FleetPlan {
  /** The members, one per key: name, hwuuid, MACs, disks and XML. */
  readonly members: MemberPlan[];
  /** What cannot be cloned, with where and why; empty when the plan can be applied. */
  readonly refusals: PlanRefusal[];
  /**
   * A digest of the template XML with its security info redacted: members are re-created when it
   * changes. It goes into the state in clear, so it never covers a password (a new template
   * password reaches the members as an update of their XML).
   */
  readonly templateDigest: string;
  /** The template images this host lacks that the fleet seeds from another host ({@link planSeeds}). */
  readonly seeds?: readonly SeedPlan[];
}

/** The namespace of a fleet's derived UUIDs and MACs. */
export function fleetNamespace(project: string, stack: string, fleetName: string): string {
  return uuidV5(NAMESPACE_URL, `urn:pulumi-libvirt-domain:fleet:${project}/${stack}/${fleetName}`);
}

/** A locally administered unicast MAC with QEMU's 52:54:00 prefix, derived from a seed. */
export function deriveMac(seed: string): string {
  const h = createHash("sha256").update(seed).digest();
  return `52:54:00:${Array.from(h.subarray(0, 3), (b) => b.toString(16).padStart(2, "0")).join(":")}`;
}

/** A member's name: `{stack}`, `{fleet}`, `{key}` and `{index}` (1-based position) in `pattern` replaced. */
export function expandName(pattern: string, stack: string, fleet: string, key: string, index: number): string {
  return pattern
    .replace(/\{stack\}/g, stack)
    .replace(/\{fleet\}/g, fleet)
    .replace(/\{key\}/g, key)
    .replace(/\{index\}/g, String(index));
}

/**
 * Plans a fleet from its template's XML: each member's name, hwuuid (by policy), MACs, disks
 * (overlay, copy or share) and XML (without `<uuid>`: libvirt gives each member a new one).
 * Pure: what cannot be cloned comes back in `refusals`, never as an exception.
 */
export function planFleet(o: FleetOptions): FleetPlan {
  const refusals: PlanRefusal[] = [];
  // A template without security info is digested as it is, so existing fleets keep their digest.
  const digested = xmlHasSecurityInfo(o.templateXml) ? redactSecurityInfoXml(o.templateXml) : o.templateXml;
  const templateDigest = createHash("sha256").update(digested).digest("hex").slice(0, 16);
  let template: DomainDef;
  let templateGuestUuid: string | null;
  try {
    template = DomainDef.parse(o.templateXml, "template");
    const id = resolveIdentity(template);
    templateGuestUuid = id.hwuuid ?? uuidPassthrough(template) ?? id.uuid;
  } catch (e) {
    if (!DomainXmlError.isInstance(e)) throw e;
    return { members: [], refusals: [{ path: "template", reason: e.message }], templateDigest };
  }
  const ns = fleetNamespace(o.project, o.stack, o.fleetName);
  const pattern = o.namePattern ?? "{stack}-{fleet}-{key}";
  const fleetKeys = o.fleetKeys ?? o.keys;
  const seenKeys = new Set<string>();
  for (const k of fleetKeys) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/.test(k))
      refusals.push({
        key: k,
        path: "keys",
        reason: `member key ${JSON.stringify(k)} is not allowed: 1-32 letters, digits, '_' or '-'`,
      });
    if (seenKeys.has(k))
      refusals.push({ key: k, path: "keys", reason: `member key ${JSON.stringify(k)} is given twice` });
    seenKeys.add(k);
  }
  if (o.imageDir !== undefined && (!posix.isAbsolute(o.imageDir) || o.imageDir.split("/").includes(".."))) {
    refusals.push({
      path: "imageDir",
      reason: `imageDir ${JSON.stringify(o.imageDir)} must be a normalized absolute path on the hypervisor host`,
    });
  }
  const policy = o.hwuuidPolicy;
  if (policy.kind === "keep" && fleetKeys.length > 1) {
    refusals.push({
      path: "hwuuidPolicy",
      reason: `"keep" gives every member the template's guest UUID (${templateGuestUuid}); with ${fleetKeys.length} members they would share it. Use "derive" or "explicit", or one member`,
    });
  }
  if (policy.kind === "explicit") {
    for (const k of Object.keys(policy.hwuuids)) {
      if (!seenKeys.has(k))
        refusals.push({
          key: k,
          path: `hwuuidPolicy.hwuuids.${k}`,
          reason: `no member has the key ${JSON.stringify(k)}`,
        });
    }
  }

  const members: MemberPlan[] = [];
  const usedNames = new Map<string, string>();
  const usedHw = new Map<string, string>();
  const usedMacs = new Map<string, string>();
  o.keys.forEach((key, i) => {
    const index = o.fleetKeys ? o.fleetKeys.indexOf(key) + 1 : i + 1;
    const name = expandName(pattern, o.stack, o.fleetName, key, index);
    if (!NAME_RE.test(name) || name.includes(".."))
      refusals.push({
        key,
        path: "namePattern",
        reason: `member name ${JSON.stringify(name)} is not a valid domain name`,
      });
    if (usedNames.has(name))
      refusals.push({
        key,
        path: "namePattern",
        reason: `members ${usedNames.get(name)} and ${key} would both be named ${name}`,
      });
    usedNames.set(name, key);

    let hwuuid: string | undefined;
    if (policy.kind === "keep") hwuuid = templateGuestUuid ?? undefined;
    else if (policy.kind === "derive") hwuuid = uuidV5(ns, `member:${key}`);
    else {
      const given = policy.hwuuids[key];
      const b = given === undefined ? undefined : parseUuid(given);
      if (given === undefined)
        refusals.push({ key, path: `hwuuidPolicy.hwuuids.${key}`, reason: `no hwuuid given for member ${key}` });
      else if (!b || !isValidUuid(b))
        refusals.push({
          key,
          path: `hwuuidPolicy.hwuuids.${key}`,
          reason: `${JSON.stringify(given)} is not a usable UUID (malformed, or all bytes equal)`,
        });
      else hwuuid = normalizeUuid(given);
    }
    if (hwuuid !== undefined) {
      if (usedHw.has(hwuuid) && policy.kind !== "keep")
        refusals.push({
          key,
          path: "hwuuidPolicy",
          reason: `members ${usedHw.get(hwuuid)} and ${key} would share the hwuuid ${hwuuid}`,
        });
      usedHw.set(hwuuid, key);
    }

    const def = template.clone();
    const memberRefusals: PlanRefusal[] = [];
    const macs = prepareMember(def, { name, key, ns, usedMacs, imageDir: o.imageDir });
    const disks = planDisks(def, {
      name,
      key,
      mode: o.diskMode ?? "overlay",
      imageDir: o.imageDir,
      refusals: memberRefusals,
    });
    const nvram = planNvram(def, name, o.imageDir);
    refusals.push(...memberRefusals);
    members.push({ key, index, name, hwuuid, macs, disks, nvram, xml: def.format() });
  });
  return { members, refusals, templateDigest };
}

interface PrepareContext {
  name: string;
  key: string;
  ns: string;
  usedMacs: Map<string, string>;
  imageDir?: string;
}

/** Clears and renews per-domain fields in place (virt-clone's list, plus what it gets wrong). */
function prepareMember(def: DomainDef, c: PrepareContext): string[] {
  def.name = c.name;
  def.setChildText("uuid", undefined);
  def.setChildText("hwuuid", undefined);
  // QEMU passthrough -uuid is the Domain's to set, per member.
  removeUuidPassthrough(def);
  // A fresh genid: the guest must learn it was cloned (libvirt generates one for <genid/>).
  const genid = firstChild(def.root, "genid");
  if (genid) genid.children = [];
  // The sysinfo uuid entry would contradict the new identity.
  for (const si of childElements(def.root, "sysinfo")) {
    const sys = firstChild(si, "system");
    for (const e of sys ? childElements(sys, "entry") : []) if (getAttr(e, "name") === "uuid") removeChild(sys!, e);
  }
  const md = firstChild(def.root, "metadata");
  if (md)
    for (const e of childElements(md))
      if (e.attrs.some((a) => a.value === "urn:pulumi-libvirt-domain:owner:1")) removeChild(md, e);
  if (firstChild(def.root, "seclabel")) for (const s of childElements(def.root, "seclabel")) removeChild(def.root, s);
  const devices = firstChild(def.root, "devices");
  const macs: string[] = [];
  if (!devices) return macs;
  childElements(devices, "interface").forEach((nic, n) => {
    let mac = deriveMac(`${c.ns}/${c.key}/nic${n}`);
    for (let k = 1; c.usedMacs.has(mac); k++) mac = deriveMac(`${c.ns}/${c.key}/nic${n}/${k}`);
    c.usedMacs.set(mac, c.key);
    let m = firstChild(nic, "mac");
    if (!m) {
      m = element("mac");
      nic.children.unshift(m);
    }
    setAttr(m, "address", mac);
    const t = firstChild(nic, "target");
    if (t) removeChild(nic, t);
    macs.push(mac);
  });
  for (const g of childElements(devices, "graphics")) {
    if (getAttr(g, "port") !== undefined && getAttr(g, "port") !== "-1") {
      setAttr(g, "port", "-1");
      setAttr(g, "autoport", "yes");
    }
    setAttr(g, "websocket", undefined);
  }
  for (const kind of ["serial", "console", "channel", "parallel"]) {
    for (const ch of childElements(devices, kind)) {
      const src = firstChild(ch, "source");
      const p = getAttr(src, "path");
      if (!src || p === undefined) continue;
      const type = getAttr(ch, "type");
      if (type === "pty") removeChild(ch, src);
      else if (kind === "channel" && type === "unix")
        setAttr(src, "path", undefined); // libvirt picks one per domain
      else setAttr(src, "path", posix.join(c.imageDir ?? posix.dirname(p), `${c.name}-${posix.basename(p)}`));
    }
  }
  for (const el of allElements(devices)) {
    for (const a of childElements(el, "alias")) removeChild(el, a);
  }
  return macs;
}

function allElements(el: XmlElement): XmlElement[] {
  return [el, ...childElements(el).flatMap(allElements)];
}

interface DiskContext {
  name: string;
  key: string;
  mode: DiskMode;
  imageDir?: string;
  refusals: PlanRefusal[];
}

function planDisks(def: DomainDef, c: DiskContext): DiskPlan[] {
  const devices = firstChild(def.root, "devices");
  const plans: DiskPlan[] = [];
  if (!devices) return plans;
  childElements(devices, "disk").forEach((disk, n) => {
    const target = getAttr(firstChild(disk, "target"), "dev") ?? `disk${n}`;
    const path = `/domain/devices/disk[target=${target}]`;
    const type = getAttr(disk, "type") ?? "file";
    const device = getAttr(disk, "device") ?? "disk";
    const src = firstChild(disk, "source");
    const sourceFile = getAttr(src, "file") ?? getAttr(src, "dev");
    const drv = firstChild(disk, "driver");
    const sourceFormat = getAttr(drv, "type") ?? "raw";
    const shared =
      device === "cdrom" ||
      device === "floppy" ||
      firstChild(disk, "readonly") !== undefined ||
      firstChild(disk, "shareable") !== undefined;
    const serial = firstChild(disk, "serial");
    if (serial && !shared) {
      // virt-clone leaves serials equal across clones; each member gets its own.
      const s = textContent(serial) ?? "";
      setTextContent(serial, `${s.slice(0, Math.max(0, 20 - c.key.length - 1))}-${c.key}`.replace(/^-/, ""));
    }
    for (const a of childElements(disk, "backingStore")) removeChild(disk, a);
    if (!shared && type !== "file" && type !== "block") {
      c.refusals.push({
        key: c.key,
        path,
        reason:
          type === "volume"
            ? `the volume ${getAttr(src, "volume") ?? "(none)"} of pool ${getAttr(src, "pool") ?? "(none)"} was not found through libvirt's storage API (virsh vol-path), so it cannot be cloned; fix: check the disk's <source pool volume> against virsh vol-list POOL, or mark it <readonly/> to share it`
            : `a ${type} disk cannot be cloned here (network disks need libvirt's storage API); use a file disk, or mark it <readonly/> to share it`,
      });
      return;
    }
    if (shared || c.mode === "share" || sourceFile === undefined) {
      if (sourceFile !== undefined)
        plans.push({ target, mode: "share", source: sourceFile, sourceFormat, path: sourceFile, format: sourceFormat });
      if (c.mode === "share" && !shared && sourceFile !== undefined && firstChild(disk, "shareable") === undefined) {
        c.refusals.push({
          key: c.key,
          path,
          reason: `diskMode "share" would let several members write ${sourceFile} at once; mark the disk <readonly/> or <shareable/>, or use "overlay"`,
        });
      }
      return;
    }
    if (type === "block" && c.mode === "copy") {
      c.refusals.push({
        key: c.key,
        path,
        reason: `copying the raw block device ${sourceFile} is refused; use diskMode "overlay" (a qcow2 file backed by it)`,
      });
      return;
    }
    if (!["qcow2", "raw"].includes(sourceFormat)) {
      c.refusals.push({ key: c.key, path, reason: `image format ${sourceFormat} is not supported; use qcow2 or raw` });
      return;
    }
    const dir = c.imageDir ?? posix.dirname(sourceFile);
    const format = c.mode === "overlay" ? "qcow2" : sourceFormat;
    const memberPath = posix.join(dir, `${c.name}-${target}.${format === "qcow2" ? "qcow2" : "img"}`);
    if (memberPath === sourceFile) {
      c.refusals.push({
        key: c.key,
        path,
        reason: `the member image would overwrite the template image ${sourceFile}; choose another imageDir or namePattern`,
      });
      return;
    }
    plans.push({ target, mode: c.mode, source: sourceFile, sourceFormat, path: memberPath, format });
    setAttr(disk, "type", "file");
    if (src) {
      setAttr(src, "dev", undefined);
      setAttr(src, "file", memberPath);
    }
    if (drv) setAttr(drv, "type", format);
    else disk.children.unshift(element("driver", { name: "qemu", type: format }));
  });
  return plans;
}

/**
 * A member's NVRAM is its own, never the template's. With `<nvram template=...>` (what libvirt
 * writes for UEFI firmware) the member gets its own file name, `MEMBER_VARS.fd` beside the
 * template's (or in imageDir), and nothing to copy: libvirt, or the QEMU-direct backend, makes it
 * from the pristine template variables at the first start (and removes it at undefine). Without a
 * template the template's NVRAM file is copied. An `<nvram>` naming no file stays as it is: each
 * domain then gets the backend's own per-domain file (libvirt's and QEMU-direct's `NAME_VARS.fd`).
 */
function planNvram(def: DomainDef, name: string, imageDir: string | undefined): MemberPlan["nvram"] {
  const os = firstChild(def.root, "os");
  const nv = os && firstChild(os, "nvram");
  const p = nv ? (textContent(nv) ?? "").trim() : "";
  if (!nv || p === "") return undefined;
  const path = posix.join(imageDir ?? posix.dirname(p), `${name}_VARS.fd`);
  setTextContent(nv, path);
  if (getAttr(nv, "template")) return undefined;
  return { source: p, path };
}

/**
 * True for a libvirt URI whose hypervisor is this machine: no host, and no transport or the
 * `unix` one (`qemu:///system`, `qemu+unix:///system?socket=...`, `qemu-direct:///...`). Anything
 * else (`qemu+ssh://`, `qemu+tcp://`, `qemu://HOST/`, `qemu+libssh2://`...) is remote, even when
 * its host is `localhost`.
 */
export function isLocalUri(uri: string): boolean {
  const m = /^([A-Za-z][A-Za-z0-9-]*)(?:\+([A-Za-z0-9-]+))?:\/\/([^/?#]*)/.exec(uri);
  if (!m) return true; // an alias or a bare driver name: resolved by the local libvirt
  const transport = m[2];
  const authority = m[3] ?? "";
  return (transport === undefined || transport === "unix") && authority === "";
}

/** A volume as {@link planVolumes} needs it: its pool, and where libvirt says it is. */
export interface KnownVolume {
  readonly pool: string;
  readonly path: string;
  readonly format?: string;
}

/** A pool as {@link planVolumes} needs it. */
export interface KnownPool {
  readonly name: string;
  readonly targetPath?: string;
  readonly active: boolean;
}

/** What a connection has: the volumes of the template's images (by path) and its pools. */
export interface StorageFacts {
  /** The connection's URI (named in refusals and fixes). */
  readonly uri: string;
  /** Template image path -> its volume; an image in no pool is absent. */
  readonly volumes: ReadonlyMap<string, KnownVolume>;
  readonly pools: readonly KnownPool[];
}

/** The images a plan makes from the template (writable disks and NVRAM copies): their sources and the members' directories. */
export function imagesOf(plan: FleetPlan): { readonly sources: string[]; readonly dirs: string[] } {
  const sources = new Set<string>();
  const dirs = new Set<string>();
  for (const m of plan.members) {
    for (const d of m.disks)
      if (d.mode !== "share") {
        sources.add(d.source);
        dirs.add(posix.dirname(d.path));
      }
    if (m.nvram) {
      sources.add(m.nvram.source);
      dirs.add(posix.dirname(m.nvram.path));
    }
  }
  return { sources: [...sources], dirs: [...dirs] };
}

/**
 * Which way a fleet makes its images, the rule: a remote URI ({@link isLocalUri} false) always
 * uses libvirt storage volumes (nothing may touch the hypervisor's files); a local URI uses
 * volumes when every template image the fleet copies or overlays is a volume of a pool and every
 * members' directory is a running pool's, else files made on this machine as before;
 * QEMU-direct always uses files.
 */
export function fleetStorage(uri: string, direct: boolean, plan: FleetPlan, facts?: StorageFacts): "files" | "volumes" {
  if (direct) return "files";
  if (!isLocalUri(uri)) return "volumes";
  const { sources, dirs } = imagesOf(plan);
  return sources.length > 0 &&
    facts !== undefined &&
    sources.every((s) => facts.volumes.has(s)) &&
    dirs.every((d) => poolOfDir(facts.pools, d)?.active === true)
    ? "volumes"
    : "files";
}

/** The running pool whose directory is `dir`, else any pool of it (inactive), else undefined. */
function poolOfDir(pools: readonly KnownPool[], dir: string): KnownPool | undefined {
  const of = pools.filter((p) => p.targetPath !== undefined && posix.normalize(p.targetPath) === posix.normalize(dir));
  return of.find((p) => p.active) ?? of[0];
}

/**
 * The directories that need a pool before {@link planVolumes} can place the images: a template
 * image's directory when the image is no pool's volume, and a members' directory that is no
 * pool's. (What `definePools` defines.)
 */
export function dirsWithoutPool(plan: FleetPlan, facts: StorageFacts): string[] {
  const { sources, dirs } = imagesOf(plan);
  const need = new Set<string>();
  for (const s of sources)
    if (!facts.volumes.has(s) && !poolOfDir(facts.pools, posix.dirname(s))) need.add(posix.dirname(s));
  for (const d of dirs) if (!poolOfDir(facts.pools, d)) need.add(d);
  return [...need];
}

/**
 * Places the plan's images as storage volumes: each writable disk (and NVRAM copy) of each
 * member gets `volume` (the running pool whose directory is the member image's, and the image's
 * file name), so its path in the member XML is where libvirt puts the volume (a `file` disk: what
 * libvirt keeps as written, no perpetual diff). Pure. What cannot be placed comes back as
 * refusals naming the disk, the directory and the fix (once per disk, not per member).
 */
export function planVolumes(plan: FleetPlan, facts: StorageFacts): { plan: FleetPlan; refusals: PlanRefusal[] } {
  const refusals = new Map<string, PlanRefusal>();
  const refuse = (where: string, reason: string): void => {
    if (!refusals.has(where + reason)) refusals.set(where + reason, { path: where, reason });
  };
  const poolFix = (dir: string): string =>
    `define the directory as a pool (virsh -c ${facts.uri} pool-define-as NAME dir --target ${dir} && virsh -c ${facts.uri} pool-start NAME && virsh -c ${facts.uri} pool-autostart NAME), or let the fleet do it: definePools: true`;
  const place = (where: string, source: string, path: string, sourceFormat?: string): VolumePlan | undefined => {
    const v = facts.volumes.get(source);
    if (!v) {
      const dir = posix.dirname(source);
      const pool = poolOfDir(facts.pools, dir);
      refuse(
        where,
        pool && !pool.active
          ? `the template image ${source} is in pool ${pool.name}, which is not running; fix: virsh -c ${facts.uri} pool-start ${pool.name}`
          : pool
            ? `the template image ${source} is not a volume of pool ${pool.name} (${dir}) on ${facts.uri}; fix: check the disk's path (virsh -c ${facts.uri} vol-list ${pool.name})`
            : `the template image ${source} is in ${dir}, which is no storage pool's on ${facts.uri}, and images there are made through libvirt's storage API; fix: ${poolFix(dir)}`,
      );
      return undefined;
    }
    if (sourceFormat !== undefined && v.format !== undefined && v.format !== sourceFormat)
      refuse(
        where,
        `the template's XML says ${sourceFormat} for ${source}, libvirt reports the volume as ${v.format}; fix: correct the template's <driver type='${v.format}'/>`,
      );
    const dir = posix.dirname(path);
    const pool = poolOfDir(facts.pools, dir);
    if (!pool) {
      refuse(where, `the members' directory ${dir} is no storage pool's on ${facts.uri}; fix: ${poolFix(dir)}`);
      return undefined;
    }
    if (!pool.active) {
      refuse(
        where,
        `the members' directory ${dir} is pool ${pool.name}, which is not running; fix: virsh -c ${facts.uri} pool-start ${pool.name}`,
      );
      return undefined;
    }
    return { pool: pool.name, name: posix.basename(path) };
  };
  const members = plan.members.map((m) => {
    const disks = m.disks.map((d) => {
      if (d.mode === "share") return d;
      const volume = place(`/domain/devices/disk[target=${d.target}]`, d.source, d.path, d.sourceFormat);
      return volume ? { ...d, volume } : d;
    });
    const nvram = m.nvram && {
      ...m.nvram,
      ...(() => {
        const volume = place("/domain/os/nvram", m.nvram.source, m.nvram.path);
        return volume ? { volume } : {};
      })(),
    };
    return { ...m, disks, nvram };
  });
  return { plan: { ...plan, members }, refusals: [...refusals.values()] };
}

/** A template disk of `type='volume'`: its pool and volume, as `<source pool volume>` names them. */
export interface VolumeDiskRef {
  readonly pool: string;
  readonly volume: string;
}

/** The `type='volume'` disks of a template (`<source pool='P' volume='V'/>`), each once. Pure. */
export function volumeDisksOf(templateXml: string): VolumeDiskRef[] {
  let def: DomainDef;
  try {
    def = DomainDef.parse(templateXml, "template");
  } catch {
    return []; // planFleet refuses it, naming the problem
  }
  const devices = firstChild(def.root, "devices");
  const out = new Map<string, VolumeDiskRef>();
  for (const disk of devices ? childElements(devices, "disk") : []) {
    if (getAttr(disk, "type") !== "volume") continue;
    const src = firstChild(disk, "source");
    const pool = getAttr(src, "pool");
    const volume = getAttr(src, "volume");
    if (pool !== undefined && volume !== undefined) out.set(`${pool}\n${volume}`, { pool, volume });
  }
  return [...out.values()];
}

/**
 * The template with each `type='volume'` disk whose volume has a path in `paths` (key
 * `POOL\nVOLUME`, from `virsh vol-path`) written as the `file` disk it is, so the planner clones
 * it like any file disk and the fleet makes the members' images as volumes of that pool. Disks
 * not resolved stay as they are (the planner refuses them, naming them). Pure.
 */
export function volumeDisksAsFiles(templateXml: string, paths: ReadonlyMap<string, string>): string {
  if (paths.size === 0) return templateXml;
  const def = DomainDef.parse(templateXml, "template");
  const devices = firstChild(def.root, "devices");
  for (const disk of devices ? childElements(devices, "disk") : []) {
    if (getAttr(disk, "type") !== "volume") continue;
    const src = firstChild(disk, "source");
    const p = paths.get(`${getAttr(src, "pool") ?? ""}\n${getAttr(src, "volume") ?? ""}`);
    if (!src || p === undefined) continue;
    setAttr(disk, "type", "file");
    setAttr(src, "pool", undefined);
    setAttr(src, "volume", undefined);
    setAttr(src, "mode", undefined);
    setAttr(src, "file", p);
  }
  return def.format();
}

/** A template image one host of a fleet lacks, seeded from another host that has it ({@link planSeeds}). */
export interface SeedPlan {
  /** The template image's path on the host that lacks it (as that host's template XML has it). */
  readonly missing: string;
  /** The pool of its directory on that host: the seed volume's pool. */
  readonly pool: string;
  /** The seed volume's name ({@link seedVolumeName}). */
  readonly volume: string;
  /** Where libvirt puts the seed volume (the pool's directory and the name): the members' source. */
  readonly path: string;
  /** The image's format, as libvirt reports it on the host that has it. */
  readonly format: string;
  /** The host that has the image: its name, URI and the image's path there. */
  readonly from: { readonly host: string; readonly uri: string; readonly path: string };
}

/** The images one other host of a fleet has: volume file name -> its volume there. */
export interface SeedCandidate {
  readonly host: string;
  readonly uri: string;
  readonly images: ReadonlyMap<string, KnownVolume>;
}

/**
 * The seed volume's name for the template image at `missing`: `lvd-seed-`, 8 hex digits of a
 * digest of the fleet's name and the path, and the image's file name. Another name than the
 * template's own image: the host still lacks that one, so every run plans the same seed (a seed
 * is never taken for an image a user copied there), and destroy removes only what it made.
 */
export function seedVolumeName(fleetName: string, missing: string): string {
  const digest = createHash("sha256")
    .update(`${fleetName}\n${posix.normalize(missing)}`)
    .digest("hex")
    .slice(0, 8);
  return `lvd-seed-${digest}-${posix.basename(missing)}`;
}

/**
 * For a fleet on several hosts, one host's template images that are missing there: in the
 * directory of a running pool, but no volume of it. With `seedImages`, each gets one
 * {@link SeedPlan} from the first candidate (the other hosts, in `hosts` order) that has a
 * volume of the same file name, and `facts` gains the seed volume in its place (so
 * {@link planVolumes} places the members on it). Without `seedImages` (or when no host has it),
 * a refusal naming the host, the image and the fix. Images in no pool (or a stopped one) are
 * left to {@link planVolumes}. `candidates` is called only when an image is missing.
 */
export function planSeeds(
  plan: FleetPlan,
  facts: StorageFacts,
  o: {
    readonly fleetName: string;
    readonly host: string;
    readonly seedImages: boolean;
    readonly candidates: () => readonly SeedCandidate[];
  },
): { facts: StorageFacts; seeds: SeedPlan[]; refusals: PlanRefusal[] } {
  const volumes = new Map(facts.volumes);
  const seeds: SeedPlan[] = [];
  const refusals: PlanRefusal[] = [];
  let candidates: readonly SeedCandidate[] | undefined;
  for (const source of imagesOf(plan).sources) {
    if (volumes.has(source)) continue;
    const dir = posix.dirname(source);
    const pool = poolOfDir(facts.pools, dir);
    if (!pool?.active) continue;
    candidates ??= o.candidates();
    const name = posix.basename(source);
    const has = candidates.find((c) => c.images.has(name));
    const found = has?.images.get(name);
    const on = `host ${o.host} (${facts.uri})`;
    const where = plan.members.some((m) => m.nvram?.source === source) ? "/domain/os/nvram" : "/domain/devices/disk";
    if (!has || !found) {
      refusals.push({
        path: where,
        reason: `${on} lacks the template image ${source} (no volume of pool ${pool.name}), and no other host of hosts has an image named ${name}; fix: copy it there (virsh -c ${facts.uri} vol-upload --pool ${pool.name} ${name} FILE, after vol-create-as), or correct the template's disk`,
      });
      continue;
    }
    if (!o.seedImages) {
      refusals.push({
        path: where,
        reason: `${on} lacks the template image ${source} (no volume of pool ${pool.name}); host ${has.host} (${has.uri}) has ${found.path}; fix: seedImages: true to let the fleet copy it there once (through libvirt's volume streams), or copy it there yourself (virsh vol-download from ${has.uri}, vol-upload into pool ${pool.name} on ${facts.uri})`,
      });
      // Placed as if there, so that this refusal is the only one about it.
      volumes.set(source, { pool: pool.name, path: source, ...(found.format ? { format: found.format } : {}) });
      continue;
    }
    const volume = seedVolumeName(o.fleetName, source);
    const seedPath = posix.join(dir, volume);
    seeds.push({
      missing: source,
      pool: pool.name,
      volume,
      path: seedPath,
      format: found.format ?? "raw",
      from: { host: has.host, uri: has.uri, path: found.path },
    });
    volumes.set(source, { pool: pool.name, path: seedPath, ...(found.format ? { format: found.format } : {}) });
  }
  return { facts: { ...facts, volumes }, seeds, refusals };
}
