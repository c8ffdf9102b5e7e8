/**
 * The DomainDisk resource's provider: an image a fleet member owns (a qcow2 overlay of the
 * template's image, or a full copy). Created atomically; deleted only while it is still the file
 * it made (same inode). The template image is only ever read.
 */
import { constants as fsc, promises as fs } from "node:fs";
import * as path from "node:path";
import { copyImage, createOverlay, ImageError, ImageStamp, removeImage, statImage } from "../backends/image";
import { failure, InputFailure, wrongType } from "../spec/inputs";

/** The inputs of a DomainDisk. */
export interface DiskInputs {
  readonly path: string;
  readonly source: string;
  readonly sourceFormat: string;
  readonly mode: "overlay" | "copy";
  /** Any change re-creates the image. */
  readonly replaceTrigger?: string;
}

function abs(property: string, v: unknown): InputFailure | undefined {
  if (typeof v !== "string") return wrongType(property, "a string", v, "a normalized absolute path on the hypervisor host", "write the full path");
  if (!path.isAbsolute(v) || v.split("/").includes("..") || /[\0\n]/.test(v)) {
    return failure(property, "must be a normalized absolute path", v, "an absolute path without '..', newlines or NUL", "write the full path");
  }
  return undefined;
}

/** The JSON type each DomainDisk input takes; `check` checks every one before using it. */
export const DISK_INPUT_TYPES: { readonly [K in keyof Required<DiskInputs>]: "string" } = {
  path: "string",
  source: "string",
  sourceFormat: "string",
  mode: "string",
  replaceTrigger: "string",
};

/** `check`: every input's type, paths, mode, and a readable source image. Never throws for bad input. */
export async function check(_olds: Record<string, unknown>, news: Record<string, unknown>): Promise<{ inputs: Record<string, unknown>; failures: InputFailure[] }> {
  const failures = [abs("path", news.path), abs("source", news.source)].filter((f): f is InputFailure => f !== undefined);
  if (news.mode !== "overlay" && news.mode !== "copy") failures.push(failure("mode", "is not a disk mode", news.mode, '"overlay", "copy"', 'write "overlay"'));
  if (news.sourceFormat !== "qcow2" && news.sourceFormat !== "raw") failures.push(failure("sourceFormat", "is not an image format", news.sourceFormat, '"qcow2", "raw"', "write the template image's format"));
  if (news.replaceTrigger !== undefined && typeof news.replaceTrigger !== "string") {
    failures.push(wrongType("replaceTrigger", "a string", news.replaceTrigger, "any string; a change re-creates the image", "convert the value to a string, e.g. String(x)"));
  }
  if (failures.length === 0) {
    try {
      await fs.access(news.source as string, fsc.R_OK);
    } catch {
      failures.push({ property: "source", reason: `source: the template image ${news.source} cannot be read on this host; fix: check the template's disk path (disks are cloned on the local hypervisor host)` });
    }
  }
  return { inputs: news, failures };
}

/** `diff`: every input change re-creates the image (delete first when the path stays). */
export async function diff(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>): Promise<{ changes: boolean; replaces: string[]; deleteBeforeReplace: boolean }> {
  const replaces = ["path", "source", "sourceFormat", "mode", "replaceTrigger"].filter((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]));
  const gone = typeof olds.inode === "number" && !(await statImage(olds.path as string));
  return { changes: replaces.length > 0 || gone, replaces, deleteBeforeReplace: replaces.length > 0 && olds.path === news.path };
}

/** `create`: the overlay or the copy, atomically. */
export async function create(inputs: Record<string, unknown>): Promise<{ id: string; outs: Record<string, unknown> }> {
  const i = inputs as unknown as DiskInputs;
  let s: ImageStamp;
  try {
    s = i.mode === "overlay" ? await createOverlay(i.path, i.source, i.sourceFormat) : await copyImage(i.path, i.source);
  } catch (e) {
    if (ImageError.isInstance(e)) throw new Error(`path: ${e.message}`);
    throw e;
  }
  return { id: i.path, outs: { ...inputs, inode: s.inode, sizeBytes: s.sizeBytes } };
}

/** `read`: gone (empty id) when the file is missing or is not the one we made. */
export async function read(id: string, props: Record<string, unknown>): Promise<{ id: string; props: Record<string, unknown> }> {
  const s = await statImage(id);
  if (!s || (typeof props.inode === "number" && s.inode !== props.inode)) return { id: "", props: {} };
  return { id, props: { ...props, sizeBytes: s.sizeBytes } };
}

/** `update`: every input change replaces, so only a file removed behind our back is made again. */
export async function update(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>): Promise<{ outs: Record<string, unknown> }> {
  const s = await statImage(news.path as string);
  if (!s) return { outs: (await create(news)).outs };
  return { outs: { ...news, inode: olds.inode, sizeBytes: s.sizeBytes } };
}

/** `delete`: removes the image if it is still ours. */
export async function remove(_id: string, props: Record<string, unknown>): Promise<void> {
  if (typeof props.inode !== "number") return;
  await removeImage({ path: props.path as string, inode: props.inode, sizeBytes: 0 });
}

/** The provider object the shim forwards to. */
export const provider = { check, diff, create, read, update, delete: remove };
