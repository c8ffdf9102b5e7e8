/**
 * libvirt storage volumes, the pure part: the `<volume>` XML we send (`vol-create`,
 * `vol-create-from`), what we read back from `vol-dumpxml` and `pool-dumpxml`, and the identity
 * rule that decides whether a volume is still the one we made. No I/O: the virsh side is
 * `provider/backends/volumes.ts`.
 *
 * Identity. A volume is the one we made only while everything we recorded right after creating
 * it still holds: the pool (by uuid), the volume key, name and path, the format, the capacity,
 * the backing store (path and format), and the change time (`ctime`) and modification time
 * (`mtime`) libvirt reports in `<timestamps>` (nanoseconds). The key alone proves nothing on
 * the pools fleets use: a `dir` pool's key is the file's path, so a file put at the same path
 * has the same key. The times do: a file made after ours has a later `ctime`, and nobody can
 * set a `ctime` back. libvirt reports no birth time on Linux (`<btime>` is 0) and no inode,
 * so one thing cannot be told apart through libvirt: a volume whose times moved because its
 * guest wrote to it, and another volume put in its place since. That case has its own verdict,
 * `written`, and is never taken for `ours`: see {@link judgeVolume}.
 */
import { LibvirtDomainError, hasBrand } from "./errors";
import { escapeText, firstChild, getAttr, parseXml, textContent, type XmlElement } from "./tree";

const BRAND = "__pulumiLibvirtDomainVolumeError";

/**
 * {@link VolumeError}: a storage volume operation was refused or failed; `path` names the pool
 * and volume (`pool/name`) or the file it was about, `fix` says what to do.
 */
export class VolumeError extends LibvirtDomainError {
  /** Builds it from the bare reason and its details (`fix` always given). */
  constructor(
    reason: string,
    details: { path: string; value?: string; allowed?: string; fix: string },
    options?: { cause?: unknown },
  ) {
    super(reason, details, BRAND);
    this.name = "VolumeError";
    if (options?.cause !== undefined) Object.defineProperty(this, "cause", { value: options.cause, enumerable: false });
  }

  /** True for any {@link VolumeError}, whichever copy of this module made it. */
  public static override isInstance(e: unknown): e is VolumeError {
    return hasBrand(e, BRAND);
  }
}

/** A time libvirt reports in `<timestamps>`: `SECONDS.NANOSECONDS` as written (kept exact, as a string). */
export type VolumeTime = string;

/** A storage volume as `vol-dumpxml` describes it. */
export interface VolumeInfo {
  /** `<name>`. */
  readonly name: string;
  /** `<key>`: for `dir`/`fs`/`netfs` pools, the file's path. */
  readonly key: string;
  /** `<target><path>`. */
  readonly path: string;
  /** `@type` of `<volume>` (`file`, `block`, `dir`...); undefined when absent. */
  readonly type?: string;
  /** `<target><format type>` (`qcow2`, `raw`...); undefined when absent. */
  readonly format?: string;
  /** `<capacity>` in bytes, as a decimal string (exact). */
  readonly capacityBytes: string;
  /** `<allocation>` in bytes, as a decimal string. */
  readonly allocationBytes?: string;
  /** `<target><permissions><mode>` (octal, as written, e.g. `0600`). */
  readonly mode?: string;
  /** The backing store (`<backingStore><path>`, `<format type>`), for an overlay. */
  readonly backing?: { readonly path: string; readonly format?: string };
  /** `<target><timestamps>`. */
  readonly timestamps?: {
    readonly atime?: VolumeTime;
    readonly mtime?: VolumeTime;
    readonly ctime?: VolumeTime;
    readonly btime?: VolumeTime;
  };
}

/** A volume and the pool it lives in. */
export interface PooledVolume extends VolumeInfo {
  /** The pool's name. */
  readonly pool: string;
  /** The pool's uuid. */
  readonly poolUuid: string;
}

/**
 * What we record of a volume we made, right after making it, to recognize it later
 * ({@link judgeVolume}). Plain strings only: it goes into Pulumi state.
 */
export interface VolumeStamp {
  readonly pool: string;
  readonly poolUuid: string;
  readonly name: string;
  readonly key: string;
  readonly path: string;
  readonly format: string;
  readonly capacityBytes: string;
  /** The backing store's path, for an overlay; absent for a copy. */
  readonly backingPath?: string;
  readonly backingFormat?: string;
  /** `ctime` right after creation. */
  readonly ctime: VolumeTime;
  /** `mtime` right after creation. */
  readonly mtime: VolumeTime;
  /** Birth time, when libvirt reports one (not `0`). */
  readonly btime?: VolumeTime;
}

/** A storage pool as `pool-dumpxml` describes it (what we need of it). */
export interface PoolInfo {
  readonly name: string;
  readonly uuid: string;
  /** `@type` (`dir`, `fs`, `logical`...). */
  readonly type: string;
  /** `<target><path>`: the directory of a file-backed pool. */
  readonly targetPath?: string;
}

/** What {@link judgeVolume} concludes. */
export type VolumeVerdict =
  /** Everything recorded still holds, the times included: the volume we made, unchanged since. */
  | "ours"
  /** Same pool, key, path, format, capacity and backing, but written since (later times): our volume written by its guest, or another volume put in its place; libvirt cannot tell which. */
  | "written"
  /** Not the volume we made: something recorded differs (or its times are earlier than ours). */
  | "other"
  /** No volume of that name in that pool. */
  | "gone";

/** The result of {@link judgeVolume}: the verdict and, unless `ours`/`gone`, what differs. */
export interface VolumeJudgement {
  readonly verdict: VolumeVerdict;
  /** One line per difference, naming the field, what was recorded and what is there now. */
  readonly differences: readonly string[];
}

/** A C0 control character or DEL: never in a volume name or a path we pass on. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
export const CONTROL_CHAR = /[\u0000-\u001f\u007f]/;

/** The longest volume name we make (a file name on most file systems). */
export const MAX_VOLUME_NAME_BYTES = 255;

/**
 * Checks a volume name we are about to create: a file name in the pool's directory, so no `/`,
 * not `.` or `..`, no control characters, not starting with `-` (virsh would read it as an
 * option), at most {@link MAX_VOLUME_NAME_BYTES} bytes. Throws a {@link VolumeError}.
 */
export function checkVolumeName(name: string, where: string): void {
  const problem =
    name === ""
      ? "is empty"
      : name === "." || name === ".."
        ? "is a directory reference"
        : name.includes("/")
          ? "contains '/'"
          : CONTROL_CHAR.test(name)
            ? "contains a control character"
            : name.startsWith("-")
              ? "starts with '-'"
              : Buffer.byteLength(name, "utf8") > MAX_VOLUME_NAME_BYTES
                ? `is longer than ${MAX_VOLUME_NAME_BYTES} bytes`
                : undefined;
  if (problem)
    throw new VolumeError(`the volume name ${problem}`, {
      path: where,
      value: name,
      allowed: `a file name: 1 to ${MAX_VOLUME_NAME_BYTES} bytes, no '/', no control characters, not '.', '..' or starting with '-'`,
      fix: "choose another volume name",
    });
}

/** A decimal byte count (what `<capacity unit='bytes'>` takes). */
function checkBytes(v: string, where: string): void {
  if (!/^[0-9]{1,20}$/.test(v))
    throw new VolumeError("not a byte count", {
      path: where,
      value: v,
      allowed: "a decimal number of bytes",
      fix: "pass the capacity in bytes, as libvirt reports it",
    });
}

/** An octal mode as libvirt writes it (`0644`). */
function checkMode(v: string, where: string): void {
  if (!/^0?[0-7]{3,4}$/.test(v))
    throw new VolumeError("not a file mode", {
      path: where,
      value: v,
      allowed: "octal permission bits, e.g. 0600",
      fix: "pass the mode as libvirt reports it in <permissions><mode>",
    });
}

/** A format name libvirt knows (`qcow2`, `raw`...): letters, digits, `-`, `_`. */
function checkFormat(v: string, where: string): void {
  if (!/^[a-z0-9_-]{1,32}$/i.test(v))
    throw new VolumeError("not a volume format", {
      path: where,
      value: v,
      allowed: "a libvirt volume format such as qcow2 or raw",
      fix: "use the format libvirt reports for the volume",
    });
}

/** What {@link overlayVolumeXml} builds. */
export interface OverlaySpec {
  /** The new volume's name. */
  readonly name: string;
  /** Its capacity in bytes (at least the backing volume's). */
  readonly capacityBytes: string;
  /** The backing volume's path, as libvirt reports it. */
  readonly backingPath: string;
  /** The backing volume's format. */
  readonly backingFormat: string;
  /** Permission bits for the new file (octal), e.g. the template's mode with owner read-write. */
  readonly mode?: string;
}

/**
 * The `<volume>` XML of a qcow2 overlay whose backing store is an existing volume, for
 * `vol-create`. Every value is escaped; names, sizes, modes and formats are checked first.
 */
export function overlayVolumeXml(s: OverlaySpec): string {
  checkVolumeName(s.name, "volume/name");
  checkBytes(s.capacityBytes, "volume/capacity");
  checkFormat(s.backingFormat, "volume/backingStore/format");
  if (s.mode !== undefined) checkMode(s.mode, "volume/target/permissions/mode");
  if (s.backingPath === "" || CONTROL_CHAR.test(s.backingPath))
    throw new VolumeError("not a usable backing path", {
      path: "volume/backingStore/path",
      value: s.backingPath,
      allowed: "the path libvirt reports for the template volume",
      fix: "resolve the template's disk to its volume first",
    });
  return [
    "<volume>",
    `  <name>${escapeText(s.name)}</name>`,
    `  <capacity unit='bytes'>${s.capacityBytes}</capacity>`,
    "  <target>",
    "    <format type='qcow2'/>",
    ...(s.mode !== undefined ? [`    <permissions><mode>${s.mode}</mode></permissions>`] : []),
    "  </target>",
    "  <backingStore>",
    `    <path>${escapeText(s.backingPath)}</path>`,
    `    <format type='${s.backingFormat}'/>`,
    "  </backingStore>",
    "</volume>",
    "",
  ].join("\n");
}

/** What {@link copyVolumeXml} builds. */
export interface CopySpec {
  readonly name: string;
  readonly capacityBytes: string;
  /** The new volume's format (the source's by default). */
  readonly format: string;
  readonly mode?: string;
}

/**
 * The `<volume>` XML of a full copy of another volume, for `vol-create-from` (libvirt's clone:
 * the data is copied; a source overlay is flattened, as the copy has no backing store).
 */
export function copyVolumeXml(s: CopySpec): string {
  checkVolumeName(s.name, "volume/name");
  checkBytes(s.capacityBytes, "volume/capacity");
  checkFormat(s.format, "volume/target/format");
  if (s.mode !== undefined) checkMode(s.mode, "volume/target/permissions/mode");
  return [
    "<volume>",
    `  <name>${escapeText(s.name)}</name>`,
    `  <capacity unit='bytes'>${s.capacityBytes}</capacity>`,
    "  <target>",
    `    <format type='${s.format}'/>`,
    ...(s.mode !== undefined ? [`    <permissions><mode>${s.mode}</mode></permissions>`] : []),
    "  </target>",
    "</volume>",
    "",
  ].join("\n");
}

/** The mode of a volume made from a template of mode `templateMode` (octal string): its bits, and read-write for the owner. */
export function volumeModeFor(templateMode: string | undefined): string | undefined {
  if (templateMode === undefined) return undefined;
  checkMode(templateMode, "volume/target/permissions/mode");
  const bits = (parseInt(templateMode, 8) & 0o777) | 0o600;
  return "0" + bits.toString(8).padStart(3, "0");
}

/** Bytes from a `<capacity>`/`<allocation>` element, converting libvirt's units (it writes `bytes`). */
function bytesOf(el: XmlElement | undefined, where: string): string | undefined {
  const text = textContent(el)?.trim();
  if (text === undefined || el === undefined) return undefined;
  const unit = (getAttr(el, "unit") ?? "bytes").toLowerCase();
  const mult: Record<string, bigint> = {
    b: 1n,
    bytes: 1n,
    k: 1024n,
    kib: 1024n,
    kb: 1000n,
    m: 1024n ** 2n,
    mib: 1024n ** 2n,
    mb: 1000n ** 2n,
    g: 1024n ** 3n,
    gib: 1024n ** 3n,
    gb: 1000n ** 3n,
    t: 1024n ** 4n,
    tib: 1024n ** 4n,
    tb: 1000n ** 4n,
  };
  const m = mult[unit];
  if (m === undefined || !/^[0-9]+$/.test(text))
    throw new VolumeError("unexpected size in libvirt's volume XML", {
      path: where,
      value: `${text} ${unit}`,
      allowed: "a whole number with a libvirt unit",
      fix: "report this: libvirt wrote a size this provider does not read",
    });
  return (BigInt(text) * m).toString();
}

/** Parses `vol-dumpxml` output. Throws a {@link VolumeError} when it is not a `<volume>` with a name, key and path. */
export function parseVolumeXml(xml: string): VolumeInfo {
  const root = parseXml(xml, "volume").root;
  const need = (v: string | undefined, what: string): string => {
    if (v === undefined || v === "")
      throw new VolumeError(`libvirt's volume XML has no ${what}`, {
        path: `volume/${what}`,
        fix: "report this: libvirt described a volume this provider does not read",
      });
    return v;
  };
  if (root.name !== "volume")
    throw new VolumeError("not a <volume> document", {
      path: "volume",
      value: `<${root.name}>`,
      fix: "report this: virsh vol-dumpxml returned something else",
    });
  const target = firstChild(root, "target");
  const ts = target ? firstChild(target, "timestamps") : undefined;
  const backing = firstChild(root, "backingStore");
  const backingPath = backing ? textContent(firstChild(backing, "path"))?.trim() : undefined;
  const perms = target ? firstChild(target, "permissions") : undefined;
  const time = (n: string): string | undefined => (ts ? textContent(firstChild(ts, n))?.trim() : undefined);
  return {
    name: need(textContent(firstChild(root, "name"))?.trim(), "name"),
    key: need(textContent(firstChild(root, "key"))?.trim(), "key"),
    path: need(target ? textContent(firstChild(target, "path"))?.trim() : undefined, "target/path"),
    type: getAttr(root, "type"),
    format: target ? getAttr(firstChild(target, "format"), "type") : undefined,
    capacityBytes: need(bytesOf(firstChild(root, "capacity"), "volume/capacity"), "capacity"),
    allocationBytes: bytesOf(firstChild(root, "allocation"), "volume/allocation"),
    mode: perms ? textContent(firstChild(perms, "mode"))?.trim() : undefined,
    backing: backingPath ? { path: backingPath, format: getAttr(firstChild(backing!, "format"), "type") } : undefined,
    timestamps: ts
      ? { atime: time("atime"), mtime: time("mtime"), ctime: time("ctime"), btime: time("btime") }
      : undefined,
  };
}

/** Parses `pool-dumpxml` output (name, uuid, type, target path). */
export function parsePoolXml(xml: string): PoolInfo {
  const root = parseXml(xml, "pool").root;
  const name = textContent(firstChild(root, "name"))?.trim();
  const uuid = textContent(firstChild(root, "uuid"))?.trim();
  if (root.name !== "pool" || !name || !uuid)
    throw new VolumeError("not a <pool> document with a name and uuid", {
      path: "pool",
      value: `<${root.name}>`,
      fix: "report this: virsh pool-dumpxml returned something else",
    });
  const target = firstChild(root, "target");
  return {
    name,
    uuid,
    type: getAttr(root, "type") ?? "",
    targetPath: target ? textContent(firstChild(target, "path"))?.trim() : undefined,
  };
}

/**
 * The stamp of a volume we just made (`vol-dumpxml` right after creation). Throws when libvirt
 * reports no `ctime`/`mtime` for it: without them nothing could prove later that it is ours.
 */
export function stampOf(v: PooledVolume): VolumeStamp {
  const ctime = v.timestamps?.ctime;
  const mtime = v.timestamps?.mtime;
  if (!ctime || !mtime)
    throw new VolumeError("libvirt reports no timestamps for this volume, so it could not be recognized later", {
      path: `${v.pool}/${v.name}`,
      fix: "use a file-backed pool (dir, fs, netfs), where libvirt reports <timestamps>",
    });
  const btime = v.timestamps?.btime;
  return {
    pool: v.pool,
    poolUuid: v.poolUuid,
    name: v.name,
    key: v.key,
    path: v.path,
    format: v.format ?? "raw",
    capacityBytes: v.capacityBytes,
    ...(v.backing ? { backingPath: v.backing.path } : {}),
    ...(v.backing?.format ? { backingFormat: v.backing.format } : {}),
    ctime,
    mtime,
    ...(btime && !/^0*(\.0*)?$/.test(btime) ? { btime } : {}),
  };
}

/** Compares two libvirt times (`SECONDS.NANOSECONDS`) exactly: negative, zero or positive. */
export function compareVolumeTimes(a: VolumeTime, b: VolumeTime): number {
  const parse = (t: string): bigint => {
    const m = /^([0-9]+)(?:\.([0-9]{1,9}))?$/.exec(t.trim());
    if (!m)
      throw new VolumeError("not a libvirt timestamp", {
        path: "volume/target/timestamps",
        value: t,
        allowed: "SECONDS.NANOSECONDS as libvirt writes it",
        fix: "report this: libvirt wrote a time this provider does not read",
      });
    return BigInt(m[1]!) * 1_000_000_000n + BigInt((m[2] ?? "").padEnd(9, "0"));
  };
  const d = parse(a) - parse(b);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

/**
 * Whether `now` (the volume of that name in that pool today, or undefined) is still the volume
 * `s` recorded:
 * - `gone`: no such volume;
 * - `other`: the pool uuid, key, path, format, capacity or backing store differ, a birth time
 *   differs, or its `ctime` is earlier than the one recorded (an older file is not ours);
 * - `ours`: all of that holds and `ctime` and `mtime` are the recorded ones (or a birth time
 *   libvirt reports is the recorded one): nothing has touched it since we made it;
 * - `written`: all of that holds but its times are later: its guest wrote to it, or another
 *   volume of the same shape was put in its place. libvirt cannot tell these apart on a
 *   file-backed pool (no inode, no birth time), so the caller decides, never this rule.
 */
export function judgeVolume(s: VolumeStamp, now: PooledVolume | undefined): VolumeJudgement {
  if (now === undefined) return { verdict: "gone", differences: [] };
  const diffs: string[] = [];
  const same = (field: string, was: string | undefined, is: string | undefined): void => {
    if ((was ?? "") !== (is ?? ""))
      diffs.push(`${field}: recorded ${JSON.stringify(was ?? null)}, now ${JSON.stringify(is ?? null)}`);
  };
  same("pool uuid", s.poolUuid, now.poolUuid);
  same("name", s.name, now.name);
  same("key", s.key, now.key);
  same("path", s.path, now.path);
  same("format", s.format, now.format ?? "raw");
  same("capacity (bytes)", s.capacityBytes, now.capacityBytes);
  same("backing store path", s.backingPath, now.backing?.path);
  same("backing store format", s.backingFormat, now.backing?.format);
  const ctime = now.timestamps?.ctime;
  const mtime = now.timestamps?.mtime;
  const btime = now.timestamps?.btime;
  if (!ctime || !mtime) diffs.push("timestamps: libvirt reports none now");
  else if (compareVolumeTimes(ctime, s.ctime) < 0)
    diffs.push(`ctime: recorded ${s.ctime}, now ${ctime}, earlier than ours`);
  if (s.btime !== undefined && btime !== undefined && !/^0*(\.0*)?$/.test(btime)) {
    if (compareVolumeTimes(btime, s.btime) !== 0) diffs.push(`btime: recorded ${s.btime}, now ${btime}`);
    else if (diffs.length === 0) return { verdict: "ours", differences: [] };
  }
  if (diffs.length > 0) return { verdict: "other", differences: diffs };
  if (compareVolumeTimes(ctime!, s.ctime) === 0 && compareVolumeTimes(mtime!, s.mtime) === 0)
    return { verdict: "ours", differences: [] };
  return {
    verdict: "written",
    differences: [`ctime: recorded ${s.ctime}, now ${ctime}`, `mtime: recorded ${s.mtime}, now ${mtime}`],
  };
}
