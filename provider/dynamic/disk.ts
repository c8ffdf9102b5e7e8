/**
 * The DiskImage resource's provider (0.1.0's DomainDisk): an image a fleet member owns (a qcow2 overlay of the
 * template's image, or a full copy). Created atomically with the template's mode; deleted only
 * while it is still the file it made (same device, inode and birth time, or our pin still
 * holding its inode: see `backends/image.ts`). The template image is only ever read.
 *
 * With `connection`, the image is a libvirt storage volume made over that connection (any URI,
 * `qemu+ssh://` included) through `backends/volumes.ts`: an overlay is a qcow2 volume whose
 * backing store is the template's volume, a copy is a cloned volume; created never over an
 * existing volume, and deleted only while the identity judge (`xml/volume.ts`) finds it is still
 * the volume made (see {@link remove}). Nothing touches the hypervisor's files directly.
 */
import { constants as fsc, promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  copyImage,
  createOverlay,
  fileIdentity,
  ImageError,
  ImageStamp,
  isOurImage,
  removeImage,
  statImage,
} from "../backends/image";
import { VolumeStore } from "../backends/volumes";
import { isDirectUri } from "../backends/qemu/direct";
import { failure, InputFailure, isObject, wrongType } from "../desired/inputs";
import { checkVolumeName, VolumeError, type PooledVolume, type VolumeStamp } from "../xml/volume";
import { LifecycleError } from "../lifecycle/errors";
import { DISK_INPUT_KEYS, DiskInputs, DiskOutputs, DiskRecorded } from "./types";

/** The inputs of a DiskImage (defined with the other resources' in `./types.ts`). */
export type { DiskInputs } from "./types";

/** An object as the engine sends it: any keys, engine-private ones (`__provider`) included. */
type EngineObject = Record<string, unknown>;

/** The failure for `property` unless `v` is a normalized absolute path on the hypervisor host. */
function absolutePathFailure(property: string, v: unknown): InputFailure | undefined {
  if (typeof v !== "string")
    return wrongType(
      property,
      "a string",
      v,
      "a normalized absolute path on the hypervisor host",
      "write the full path",
    );
  if (!path.isAbsolute(v) || v.split("/").includes("..") || /[\0\n]/.test(v)) {
    return failure(
      property,
      "must be a normalized absolute path",
      v,
      "an absolute path without '..', newlines or NUL",
      "write the full path",
    );
  }
  return undefined;
}

/** The stamp a state records (this version), or undefined. */
function stampOf(props: DiskRecorded): ImageStamp | undefined {
  const { device, inode, birthtimeNs, pin } = props;
  if (typeof device !== "string" || typeof inode !== "string" || typeof birthtimeNs !== "string") return undefined;
  return {
    path: props.path ?? "",
    device,
    inode,
    birthtimeNs,
    sizeBytes: Number(props.sizeBytes ?? 0),
    ...(typeof pin === "string" ? { pin } : {}),
  };
}

/** A state of the previous version: the inode number alone. */
function isLegacy(props: DiskRecorded): boolean {
  return typeof props.inode === "number" && stampOf(props) === undefined;
}

/** The outputs that identify the image (the pin only where there is one). */
function identityOutputs(s: ImageStamp): Pick<DiskOutputs, "device" | "inode" | "birthtimeNs" | "sizeBytes" | "pin"> {
  return {
    device: s.device,
    inode: s.inode,
    birthtimeNs: s.birthtimeNs,
    sizeBytes: s.sizeBytes,
    ...(s.pin ? { pin: s.pin } : {}),
  };
}

/** The JSON type each DiskImage input takes; `check` checks every one before using it. */
export const DISK_INPUT_TYPES: { readonly [K in keyof Required<DiskInputs>]: "string" | "object" } = {
  path: "string",
  source: "string",
  sourceFormat: "string",
  mode: "string",
  replaceTrigger: "string",
  connection: "object",
  pool: "string",
  volume: "string",
  from: "object",
};

/** The value the engine sends for an input not known yet (a preview of an output of a resource not made yet). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** The inputs of a volume image (`connection` given), as `check` leaves them. */
type VolumeInputs = DiskInputs & { readonly connection: { readonly uri: string } };

/** True when the inputs make a storage volume (`connection` given). */
function isVolume(i: DiskInputs): i is VolumeInputs {
  return i.connection !== undefined;
}

/** The volume store of the inputs' connection. */
function storeOf(i: VolumeInputs): VolumeStore {
  return new VolumeStore(i.connection.uri);
}

/** The failures of the volume inputs' types and values (no I/O). */
function volumeInputFailures(news: EngineObject): InputFailure[] {
  const f: InputFailure[] = [];
  const c = news.connection;
  if (!isObject(c))
    f.push(
      wrongType(
        "connection",
        "an object",
        c,
        "{ uri: LIBVIRT_URI }: the image becomes a storage volume made over that connection",
        'write connection: { uri: "qemu+ssh://admin@hv1/system" }, or leave it out for a file made on this machine',
      ),
    );
  else if (typeof c.uri !== "string" || c.uri === "")
    f.push(
      wrongType(
        "connection.uri",
        "a libvirt URI string",
        c.uri,
        "any libvirt URI: qemu:///system, qemu+ssh://host/system...",
        'write e.g. "qemu+ssh://admin@hv1/system"',
      ),
    );
  else if (isDirectUri(c.uri))
    f.push(
      failure(
        "connection.uri",
        "QEMU-direct has no storage pools",
        c.uri,
        "a libvirt URI",
        "leave connection out: QEMU-direct images are files made on this machine",
      ),
    );
  for (const k of ["pool", "volume"] as const) {
    const v = news[k];
    if (v === undefined) continue;
    if (typeof v !== "string")
      f.push(
        wrongType(k, "a string", v, k === "pool" ? "a storage pool's name" : "a volume name", `write the ${k} name`),
      );
    else
      try {
        checkVolumeName(v, k);
      } catch (e) {
        if (!VolumeError.isInstance(e)) throw e;
        f.push(failure(k, e.reason, v, e.allowed ?? "a file name", e.fix ?? `write another ${k} name`));
      }
  }
  if (news.volume === undefined && news.path === undefined)
    f.push(
      failure(
        "volume",
        "is required for a volume (or give path)",
        undefined,
        "the new volume's name",
        'write e.g. volume: "web-1-vda.qcow2"',
      ),
    );
  return f;
}

/** The source volume of a volume image; a per-property failure when it cannot be used. */
async function sourceVolume(
  i: VolumeInputs,
  store: VolumeStore,
): Promise<{ volume?: PooledVolume; failure?: InputFailure }> {
  try {
    return { volume: await store.resolvePath(i.source) };
  } catch (e) {
    if (!VolumeError.isInstance(e)) throw e;
    return {
      failure: failure(
        "source",
        e.reason,
        i.source,
        e.allowed ?? "a volume of a storage pool",
        e.fix ?? "give the template volume's path",
      ),
    };
  }
}

/** Where the new volume goes: its pool and name. */
function volumeTarget(i: VolumeInputs, source: PooledVolume): { pool: string; name: string } {
  return { pool: i.pool ?? source.pool, name: i.volume ?? path.posix.basename(i.path ?? "") };
}

/** `check` of a volume image, past the type checks: the source is a volume, the pool runs, the path is where the volume goes. */
async function checkVolume(i: VolumeInputs): Promise<InputFailure[]> {
  const store = storeOf(i);
  let src: { volume?: PooledVolume; failure?: InputFailure };
  try {
    src = await sourceVolume(i, store);
  } catch (e) {
    return [{ property: "connection.uri", reason: `connection.uri: ${(e as Error).message}` }];
  }
  if (!src.volume) return src.failure ? [src.failure] : [];
  const f: InputFailure[] = [];
  const v = src.volume;
  if (v.format !== undefined && v.format !== i.sourceFormat)
    f.push(
      failure(
        "sourceFormat",
        `differs from the format libvirt reports for the source volume (${v.format})`,
        i.sourceFormat,
        `"${v.format}"`,
        `write sourceFormat: "${v.format}"`,
      ),
    );
  const t = volumeTarget(i, v);
  const pool = t.pool === v.pool ? { name: v.pool, targetPath: undefined } : await store.pool(t.pool);
  if (!pool)
    f.push(
      failure(
        "pool",
        "no such storage pool",
        t.pool,
        `a pool of ${i.connection.uri}`,
        `define and start it: virsh -c ${i.connection.uri} pool-define-as ${t.pool} dir --target DIR && virsh -c ${i.connection.uri} pool-start ${t.pool}`,
      ),
    );
  if (i.path !== undefined && pool) {
    const dir = pool.targetPath ?? path.posix.dirname(v.path);
    const where = path.posix.join(dir, t.name);
    if (where !== path.posix.normalize(i.path))
      f.push(
        failure(
          "path",
          `is not where libvirt puts volume ${t.name} of pool ${t.pool} (${where})`,
          i.path,
          `"${where}", or leave path out`,
          `write path: "${where}", or leave it out`,
        ),
      );
  }
  return f;
}

/** The inputs of a seed (`mode: "seed"`), as `check` leaves them. */
type SeedInputs = VolumeInputs & {
  readonly mode: "seed";
  readonly pool: string;
  readonly volume: string;
  readonly from: { readonly uri: string };
};

/** The failures of a seed's own inputs (`from`; `pool` and `volume` required), and `from` without `seed`. No I/O. */
function seedInputFailures(news: EngineObject): InputFailure[] {
  const f: InputFailure[] = [];
  if (news.mode !== "seed") {
    if (news.from !== undefined)
      f.push(
        failure(
          "from",
          'is only for mode "seed"',
          news.from,
          'with mode: "seed"',
          'write mode: "seed", or leave from out',
        ),
      );
    return f;
  }
  if (news.connection === undefined)
    f.push(
      failure(
        "connection",
        "is required for a seed (the host the volume is uploaded to)",
        undefined,
        "{ uri: LIBVIRT_URI }",
        'write connection: { uri: "qemu+ssh://admin@hv2/system" }',
      ),
    );
  for (const k of ["pool", "volume"] as const)
    if (news[k] === undefined)
      f.push(
        failure(
          k,
          "is required for a seed",
          undefined,
          k === "pool" ? "a running storage pool of the connection" : "the new volume's name",
          k === "pool" ? 'write e.g. pool: "default"' : 'write e.g. volume: "template.qcow2"',
        ),
      );
  const from = news.from;
  if (!isObject(from))
    f.push(
      wrongType(
        "from",
        "an object",
        from,
        "{ uri: LIBVIRT_URI } of a host that has source as a volume",
        'write from: { uri: "qemu:///system" }',
      ),
    );
  else if (typeof from.uri !== "string" || from.uri === "")
    f.push(
      wrongType(
        "from.uri",
        "a libvirt URI string",
        from.uri,
        "any libvirt URI",
        'write e.g. "qemu+ssh://admin@hv1/system"',
      ),
    );
  else if (isDirectUri(from.uri))
    f.push(
      failure(
        "from.uri",
        "QEMU-direct has no storage pools",
        from.uri,
        "a libvirt URI",
        "name a libvirt host that has the image as a volume",
      ),
    );
  else if (isObject(news.connection) && news.connection.uri === from.uri)
    f.push(
      failure(
        "from.uri",
        "is the connection itself: a seed copies an image from another host",
        from.uri,
        "another host's libvirt URI",
        'use mode: "copy" for a copy on the same host',
      ),
    );
  return f;
}

/** `check` of a seed past the type checks: the source is a volume on `from`, the pool runs, the volume is not there yet. */
async function checkSeed(olds: EngineObject, i: SeedInputs): Promise<InputFailure[]> {
  const f: InputFailure[] = [];
  if (i.source === UNKNOWN) return f;
  let src: { volume?: PooledVolume; failure?: InputFailure };
  try {
    src = await sourceVolume(i, new VolumeStore(i.from.uri));
  } catch (e) {
    return [{ property: "from.uri", reason: `from.uri: ${(e as Error).message}` }];
  }
  if (src.failure) f.push(src.failure);
  const v = src.volume;
  if (v?.format !== undefined && v.format !== i.sourceFormat)
    f.push(
      failure(
        "sourceFormat",
        `differs from the format libvirt reports for the source volume on ${i.from.uri} (${v.format})`,
        i.sourceFormat,
        `"${v.format}"`,
        `write sourceFormat: "${v.format}"`,
      ),
    );
  const store = storeOf(i);
  try {
    if (!(await store.pool(i.pool)))
      f.push(
        failure(
          "pool",
          "no such storage pool",
          i.pool,
          `a pool of ${i.connection.uri}`,
          `define and start it: virsh -c ${i.connection.uri} pool-define-as ${i.pool} dir --target DIR && virsh -c ${i.connection.uri} pool-start ${i.pool}`,
        ),
      );
    else {
      // The engine passes the old inputs: the same seed as before is the volume it made (create,
      // which runs only for a new one, refuses an existing volume again).
      const made =
        olds.mode === "seed" &&
        olds.pool === i.pool &&
        olds.volume === i.volume &&
        JSON.stringify(olds.connection) === JSON.stringify(i.connection);
      if (!made && (await store.volume(i.pool, i.volume)))
        f.push(
          failure(
            "volume",
            `exists already in pool ${i.pool}; a seed never overwrites a volume`,
            i.volume,
            "a name the pool does not have",
            `use that volume (the host has the image), or remove it yourself: virsh -c ${i.connection.uri} vol-delete --pool ${i.pool} ${i.volume}`,
          ),
        );
    }
  } catch (e) {
    return [...f, { property: "connection.uri", reason: `connection.uri: ${(e as Error).message}` }];
  }
  return f;
}

/** How long a seed's download, and then its upload, may take. */
export const SEED_TIMEOUT_MS = 3600000;

/** A progress line of a seed, as `pulumi up` shows a provider's output. */
function seedProgress(what: string, doneBytes: number, totalBytes: number): void {
  const pct = totalBytes > 0 ? Math.min(100, Math.floor((doneBytes * 100) / totalBytes)) : 100;
  process.stderr.write(`seed ${what}: ${doneBytes} of ${totalBytes} bytes (${pct}%)\n`);
}

/**
 * Creates a seed: `source` streamed out of `from` (`vol-download`) into a 0600 file in a private
 * temporary directory (always removed), then uploaded into `pool` as `volume` over the
 * connection ({@link VolumeStore.uploadVolume}: never over an existing volume, never half-made).
 * Progress goes to the provider's output (bytes and percent, at most a line a second per step).
 */
async function createSeed(i: SeedInputs): Promise<{ id: string; outs: EngineObject }> {
  const from = new VolumeStore(i.from.uri);
  const source = await from.resolvePath(i.source);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "lvd-seed-"));
  const file = path.join(dir, "image");
  const where = `${i.pool}/${i.volume} on ${i.connection.uri}`;
  let last = 0;
  const throttled =
    (what: string) =>
    (done: number, total: number): void => {
      const now = Date.now();
      if (done < total && now - last < 1000) return;
      last = now;
      seedProgress(what, done, total);
    };
  let stamp;
  try {
    await from.downloadVolume(source, file, {
      timeoutMs: SEED_TIMEOUT_MS,
      onProgress: throttled(`download of ${i.source} from ${i.from.uri}`),
    });
    last = 0;
    stamp = await storeOf(i).uploadVolume({ pool: i.pool, name: i.volume }, file, {
      format: source.format ?? i.sourceFormat,
      timeoutMs: SEED_TIMEOUT_MS,
      onProgress: throttled(`upload to ${where}`),
    });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
  return createdVolume(i, storeOf(i), stamp);
}

/** `check`: every input's type, paths, mode, and a readable source image. Never throws for bad input. */
export async function check(
  _olds: EngineObject,
  news: EngineObject,
): Promise<{ inputs: EngineObject; failures: InputFailure[] }> {
  const volume = news.connection !== undefined;
  // A volume's source known only once another resource is made (a fleet's seed, at preview: the
  // engine sends it unknown, or leaves it out) is checked when it is known; create refuses none.
  const sourceKnown = news.source !== UNKNOWN && !(volume && news.source === undefined);
  const failures = [
    volume && news.path === undefined ? undefined : absolutePathFailure("path", news.path),
    sourceKnown ? absolutePathFailure("source", news.source) : undefined,
    ...(volume ? volumeInputFailures(news) : []),
  ].filter((f): f is InputFailure => f !== undefined);
  for (const k of ["pool", "volume"] as const)
    if (!volume && news[k] !== undefined)
      failures.push(
        failure(
          k,
          "is only for a storage volume",
          news[k],
          "with connection",
          `add connection: { uri }, or leave ${k} out`,
        ),
      );
  if (news.mode !== "overlay" && news.mode !== "copy" && news.mode !== "seed")
    failures.push(failure("mode", "is not a disk mode", news.mode, '"overlay", "copy", "seed"', 'write "overlay"'));
  failures.push(...seedInputFailures(news));
  if (news.sourceFormat !== "qcow2" && news.sourceFormat !== "raw")
    failures.push(
      failure(
        "sourceFormat",
        "is not an image format",
        news.sourceFormat,
        '"qcow2", "raw"',
        "write the template image's format",
      ),
    );
  if (news.replaceTrigger !== undefined && typeof news.replaceTrigger !== "string") {
    failures.push(
      wrongType(
        "replaceTrigger",
        "a string",
        news.replaceTrigger,
        "any string; a change re-creates the image",
        "convert the value to a string, e.g. String(x)",
      ),
    );
  }
  if (failures.length === 0 && news.mode === "seed")
    failures.push(...(await checkSeed(_olds, news as unknown as SeedInputs)));
  else if (failures.length === 0 && !sourceKnown) return { inputs: news, failures };
  else if (failures.length === 0 && volume) failures.push(...(await checkVolume(news as unknown as VolumeInputs)));
  else if (failures.length === 0) {
    try {
      await fs.access(news.source as string, fsc.R_OK);
    } catch {
      failures.push({
        property: "source",
        reason: `source: the template image ${String(news.source)} cannot be read on this host; fix: check the template's disk path (disks are cloned on the local hypervisor host)`,
      });
    }
  }
  return { inputs: news, failures };
}

/** The volume store of a recorded volume image (its connection). */
function recordedStore(props: DiskRecorded): VolumeStore {
  return new VolumeStore(props.connection?.uri ?? "");
}

/** `diff`: every input change re-creates the image (delete first when the path or volume stays). */
export async function diff(
  _id: string,
  olds: EngineObject,
  news: EngineObject,
): Promise<{ changes: boolean; replaces: string[]; deleteBeforeReplace: boolean }> {
  const old = recorded(olds);
  // A volume's `path` is an output too: left out of the inputs, it is not a change.
  // A file image made by an earlier version (or before its fleet moved to volumes) stays the
  // file it is: the volume inputs alone do not replace it (same path; delete removes the file).
  const fileKept = !old.volumeStamp && olds.path === news.path && (stampOf(old) !== undefined || isLegacy(old));
  const replaces: string[] = DISK_INPUT_KEYS.filter(
    (k) =>
      !(k === "path" && news.connection !== undefined && news.path === undefined && old.volumeStamp !== undefined) &&
      !(fileKept && (k === "connection" || k === "pool" || k === "volume")) &&
      JSON.stringify(olds[k]) !== JSON.stringify(news[k]),
  );
  let gone: boolean;
  let sameTarget: boolean;
  if (old.volumeStamp) {
    gone = (await recordedStore(old).judge(old.volumeStamp)).verdict === "gone";
    const name =
      typeof news.volume === "string"
        ? news.volume
        : path.posix.basename(typeof news.path === "string" ? news.path : "");
    sameTarget = name === old.volumeStamp.name;
  } else {
    const made = stampOf(old) !== undefined || isLegacy(old);
    gone = made && !(await statImage(old.path ?? ""));
    sameTarget = olds.path === news.path;
  }
  return {
    changes: replaces.length > 0 || gone,
    replaces,
    deleteBeforeReplace: replaces.length > 0 && sameTarget,
  };
}

/** The id and outputs of a volume just made: its inputs, its path and allocation, its stamp. */
async function createdVolume(
  i: DiskInputs,
  store: VolumeStore,
  stamp: VolumeStamp,
): Promise<{ id: string; outs: EngineObject }> {
  const now = await store.volume(stamp.pool, stamp.name);
  return {
    id: stamp.path,
    outs: {
      ...stripIdentity(i as unknown as EngineObject),
      path: stamp.path,
      sizeBytes: Number(now?.allocationBytes ?? 0),
      volumeStamp: stamp,
    },
  };
}

/** Creates the volume the inputs describe; its outputs. */
async function createVolume(i: VolumeInputs): Promise<{ id: string; outs: EngineObject }> {
  const store = storeOf(i);
  const source = await store.resolvePath(i.source);
  const target = volumeTarget(i, source);
  const stamp =
    i.mode === "overlay" ? await store.createOverlay(target, source) : await store.cloneVolume(target, source);
  return createdVolume(i, store, stamp);
}

/** `create`: the overlay or the copy, atomically, with the template's mode. */
export async function create(inputs: EngineObject): Promise<{ id: string; outs: EngineObject }> {
  // `check` validated every input before the engine passes them here.
  const i = inputs as unknown as DiskInputs;
  if (typeof i.source !== "string" || i.source === UNKNOWN)
    throw new LifecycleError(
      "no source image",
      { path: "source", value: String(i.source), fix: "give source: the template image's path" },
      `source: no source image; got ${String(i.source)}; fix: give source: the template image's path`,
    );
  if (i.mode === "seed") return createSeed(i as SeedInputs);
  if (isVolume(i)) return createVolume(i);
  const file = i.path ?? "";
  let s: ImageStamp;
  try {
    s = i.mode === "overlay" ? await createOverlay(file, i.source, i.sourceFormat) : await copyImage(file, i.source);
  } catch (e) {
    if (ImageError.isInstance(e))
      throw new LifecycleError(
        e.message,
        { path: "path", value: file, fix: imageFix(e.message) },
        `path: ${e.message}`,
        e,
      );
    throw e;
  }
  return { id: file, outs: { ...stripIdentity(inputs), ...identityOutputs(s) } };
}

/** The fix an image error names (its own `fix:` part), else the generic one. */
function imageFix(message: string): string {
  return (
    /\bfix: (.*)$/is.exec(message)?.[1] ?? "check the image path and the template image, then run `pulumi up` again"
  );
}

/** A recorded state as the engine hands it back (any key may be missing). */
function recorded(o: EngineObject): DiskRecorded {
  return o;
}

/** The inputs without identity outputs (the engine passes them back as `undefined` placeholders). */
function stripIdentity(o: EngineObject): EngineObject {
  const { device: _d, inode: _i, birthtimeNs: _b, pin: _p, sizeBytes: _s, volumeStamp: _v, ...rest } = o;
  return rest;
}

/**
 * `read`: gone (empty id) when the file is missing or is not the one we made. A volume is gone
 * when libvirt has none of that name, or the judge finds another one there; a volume its guest
 * wrote to (`written`) is still ours.
 */
export async function read(id: string, props: EngineObject): Promise<{ id: string; props: EngineObject }> {
  const r = recorded(props);
  if (r.volumeStamp) {
    const store = recordedStore(r);
    const j = await store.judge(r.volumeStamp);
    if (j.verdict === "gone" || j.verdict === "other") return { id: "", props: {} };
    const now = await store.volume(r.volumeStamp.pool, r.volumeStamp.name);
    return { id, props: { ...props, sizeBytes: Number(now?.allocationBytes ?? r.sizeBytes ?? 0) } };
  }
  const now = await statImage(id);
  if (!now) return { id: "", props: {} };
  const s = stampOf(r);
  if (s && !(await isOurImage({ ...s, path: id }))) return { id: "", props: {} };
  // A state of the previous version can only compare the inode (see `remove`).
  if (!s && typeof props.inode === "number" && Number(now.inode) !== props.inode) return { id: "", props: {} };
  return { id, props: { ...props, sizeBytes: now.sizeBytes } };
}

/** `update`: every input change replaces, so only an image removed behind our back is made again. */
export async function update(_id: string, olds: EngineObject, news: EngineObject): Promise<{ outs: EngineObject }> {
  const old = recorded(olds);
  if (old.volumeStamp) {
    const j = await recordedStore(old).judge(old.volumeStamp);
    if (j.verdict === "gone") return { outs: (await create(news)).outs };
    return {
      outs: { ...stripIdentity(news), path: old.path, sizeBytes: old.sizeBytes, volumeStamp: old.volumeStamp },
    };
  }
  const now = await statImage((news as unknown as DiskInputs).path ?? "");
  if (!now) {
    const made = (await create(news)).outs;
    // The old image is gone; our pin of it (if any) goes too, freeing its space.
    const oldStamp = stampOf(old);
    if (oldStamp?.pin) await removeImage(oldStamp);
    return { outs: made };
  }
  const keep = isLegacy(old)
    ? { inode: olds.inode }
    : {
        device: olds.device,
        inode: olds.inode,
        birthtimeNs: olds.birthtimeNs,
        ...(typeof olds.pin === "string" ? { pin: olds.pin } : {}),
      };
  return { outs: { ...stripIdentity(news), ...keep, sizeBytes: now.sizeBytes } };
}

/**
 * `delete`: removes the image if it is still ours; anything else at the path is left alone. A
 * state of the previous version recorded only the inode number, which proves nothing (ext4
 * reuses inodes at once): a file there with that inode is left in place, and delete fails
 * naming the path and what to do.
 *
 * A volume is deleted while the judge finds it `ours` (untouched since it was made) or
 * `written` (same pool uuid, key, path, format, capacity and backing store, later times: its
 * guest wrote to it, which a member's disk always is by then); `other` (anything recorded
 * differs, or an older ctime) is left alone and delete fails naming what differs and the fix.
 */
export async function remove(_id: string, engineProps: EngineObject): Promise<void> {
  const props = recorded(engineProps);
  if (props.volumeStamp) {
    await recordedStore(props).deleteVolume(props.volumeStamp, { acceptWritten: true });
    return;
  }
  const s = stampOf(props);
  if (s) {
    await removeImage(s);
    return;
  }
  if (!isLegacy(props)) return; // nothing was made (the create failed)
  const p = props.path ?? "";
  const now = await fileIdentity(p);
  if (!now || Number(now.inode) !== props.inode) return; // gone, or certainly another file
  const fix = `if ${p} is that image, remove it yourself (rm ${p}) and run the command again; if it is not, drop the resource from the state with \`pulumi state delete <urn>\``;
  throw new LifecycleError(
    `${p} was recorded by an earlier version by its inode number (${props.inode}) alone, and cannot be proven to be the image this stack made; it was left in place`,
    { path: "path", value: p, fix },
    `path: ${p} was recorded by an earlier version of pulumi-libvirt-domain by its inode number (${props.inode}) alone; the file there has that inode, but inode numbers are reused, so it cannot be proven to be the image this stack made, and it was left in place. fix: if ${p} is that image, remove it yourself (rm ${p}) and run the command again; if it is not, drop the resource from the state with \`pulumi state delete <urn>\``,
  );
}

/** The provider object the shim forwards to. */
export const provider = { check, diff, create, read, update, delete: remove };
