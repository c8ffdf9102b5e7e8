/**
 * Disk images on the local hypervisor host: qcow2 overlays (`qemu-img create -b`) and full copies.
 * Nothing is left half-made: each image is written under a temporary name in its final
 * directory, then renamed; on failure the temporary file is removed. An existing file is never
 * overwritten.
 */
import { execFile } from "node:child_process";
import { hasBrand } from "../xml/errors";
import { constants as fsc, promises as fs } from "node:fs";
import * as path from "node:path";

const BRAND = "__pulumiLibvirtDomainImageError";

/** {@link ImageError}: an image operation failed; `path` is the image it was about. */
export class ImageError extends Error {
  /** Brand for {@link ImageError.isInstance}. */
  public readonly [BRAND] = true;
  /** The image path. */
  public readonly path: string;
  /** Builds it. */
  constructor(message: string, imagePath: string) {
    super(message);
    this.name = "ImageError";
    this.path = imagePath;
  }
  /** True for any {@link ImageError}. */
  public static isInstance(e: unknown): e is ImageError {
    return hasBrand(e, BRAND);
  }
}

/** What we record of an image we made, to recognize it later. */
export interface ImageStamp {
  readonly path: string;
  readonly inode: number;
  readonly sizeBytes: number;
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error((stderr || err.message).trim()));
      else resolve(stdout);
    });
  });
}

async function stamp(p: string): Promise<ImageStamp> {
  const st = await fs.stat(p);
  return { path: p, inode: st.ino, sizeBytes: st.size };
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p, fsc.F_OK).then(() => true, () => false);
}

/** Writes an image through `make(tmp)`, then renames it into place; cleans up on failure. */
async function writeAtomically(target: string, make: (tmp: string) => Promise<void>): Promise<ImageStamp> {
  if (await exists(target)) {
    throw new ImageError(`${target} already exists; it is never overwritten. Fix: remove it, or choose another imageDir`, target);
  }
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.partial-${process.pid}-${Date.now()}`);
  try {
    await make(tmp);
    await fs.link(tmp, target).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code === "EEXIST") throw new ImageError(`${target} appeared while it was being written; it is never overwritten`, target);
      throw e;
    });
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    if (ImageError.isInstance(e)) throw e;
    throw new ImageError(`cannot write ${target}: ${(e as Error).message}. Fix: check that ${path.dirname(target)} exists, is writable and has room`, target);
  }
  await fs.rm(tmp, { force: true });
  return stamp(target);
}

/** Creates a qcow2 overlay at `target` backed by `backing` (read-only for the guest of the overlay). */
export function createOverlay(target: string, backing: string, backingFormat: string): Promise<ImageStamp> {
  return writeAtomically(target, (tmp) => run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", backing, "-F", backingFormat, tmp]).then(() => undefined));
}

/** Copies `source` to `target` in full (sparse where the source is). */
export function copyImage(target: string, source: string): Promise<ImageStamp> {
  return writeAtomically(target, (tmp) => run("cp", ["--sparse=always", "--reflink=auto", "--", source, tmp]).then(() => undefined));
}

/** The stamp of an existing image, or undefined. */
export async function statImage(p: string): Promise<ImageStamp | undefined> {
  return stamp(p).catch(() => undefined);
}

/** Removes an image only when it is still the one we made (same inode); returns whether it did. */
export async function removeImage(s: ImageStamp): Promise<boolean> {
  const now = await statImage(s.path);
  if (!now || now.inode !== s.inode) return false;
  await fs.rm(s.path);
  return true;
}
