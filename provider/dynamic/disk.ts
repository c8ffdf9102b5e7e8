/**
 * The DiskImage resource's provider (0.1.0's DomainDisk): an image a fleet member owns (a qcow2 overlay of the
 * template's image, or a full copy). Created atomically with the template's mode; deleted only
 * while it is still the file it made (same device, inode and birth time, or our pin still
 * holding its inode: see `backends/image.ts`). The template image is only ever read.
 */
import { constants as fsc, promises as fs } from "node:fs";
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
import { failure, InputFailure, wrongType } from "../desired/inputs";
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
export const DISK_INPUT_TYPES: { readonly [K in keyof Required<DiskInputs>]: "string" } = {
  path: "string",
  source: "string",
  sourceFormat: "string",
  mode: "string",
  replaceTrigger: "string",
};

/** `check`: every input's type, paths, mode, and a readable source image. Never throws for bad input. */
export async function check(
  _olds: EngineObject,
  news: EngineObject,
): Promise<{ inputs: EngineObject; failures: InputFailure[] }> {
  const failures = [absolutePathFailure("path", news.path), absolutePathFailure("source", news.source)].filter(
    (f): f is InputFailure => f !== undefined,
  );
  if (news.mode !== "overlay" && news.mode !== "copy")
    failures.push(failure("mode", "is not a disk mode", news.mode, '"overlay", "copy"', 'write "overlay"'));
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
  if (failures.length === 0) {
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

/** `diff`: every input change re-creates the image (delete first when the path stays). */
export async function diff(
  _id: string,
  olds: EngineObject,
  news: EngineObject,
): Promise<{ changes: boolean; replaces: string[]; deleteBeforeReplace: boolean }> {
  const replaces: string[] = DISK_INPUT_KEYS.filter((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]));
  const old = recorded(olds);
  const made = stampOf(old) !== undefined || isLegacy(old);
  const gone = made && !(await statImage(old.path ?? ""));
  return {
    changes: replaces.length > 0 || gone,
    replaces,
    deleteBeforeReplace: replaces.length > 0 && olds.path === news.path,
  };
}

/** `create`: the overlay or the copy, atomically, with the template's mode. */
export async function create(inputs: EngineObject): Promise<{ id: string; outs: EngineObject }> {
  // `check` validated every input before the engine passes them here.
  const i = inputs as unknown as DiskInputs;
  let s: ImageStamp;
  try {
    s =
      i.mode === "overlay" ? await createOverlay(i.path, i.source, i.sourceFormat) : await copyImage(i.path, i.source);
  } catch (e) {
    if (ImageError.isInstance(e))
      throw new LifecycleError(
        e.message,
        { path: "path", value: i.path, fix: imageFix(e.message) },
        `path: ${e.message}`,
        e,
      );
    throw e;
  }
  return { id: i.path, outs: { ...stripIdentity(inputs), ...identityOutputs(s) } };
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
  const { device: _d, inode: _i, birthtimeNs: _b, pin: _p, sizeBytes: _s, ...rest } = o;
  return rest;
}

/** `read`: gone (empty id) when the file is missing or is not the one we made. */
export async function read(id: string, props: EngineObject): Promise<{ id: string; props: EngineObject }> {
  const now = await statImage(id);
  if (!now) return { id: "", props: {} };
  const s = stampOf(recorded(props));
  if (s && !(await isOurImage({ ...s, path: id }))) return { id: "", props: {} };
  // A state of the previous version can only compare the inode (see `remove`).
  if (!s && typeof props.inode === "number" && Number(now.inode) !== props.inode) return { id: "", props: {} };
  return { id, props: { ...props, sizeBytes: now.sizeBytes } };
}

/** `update`: every input change replaces, so only a file removed behind our back is made again. */
export async function update(_id: string, olds: EngineObject, news: EngineObject): Promise<{ outs: EngineObject }> {
  const now = await statImage((news as unknown as DiskInputs).path);
  if (!now) {
    const made = (await create(news)).outs;
    // The old image is gone; our pin of it (if any) goes too, freeing its space.
    const old = stampOf(recorded(olds));
    if (old?.pin) await removeImage(old);
    return { outs: made };
  }
  const keep = isLegacy(recorded(olds))
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
 */
export async function remove(_id: string, engineProps: EngineObject): Promise<void> {
  const props = recorded(engineProps);
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
