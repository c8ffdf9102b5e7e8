/**
 * Disk images on the local hypervisor host: qcow2 overlays (`qemu-img create -b`) and full copies.
 * Nothing is left half-made: each image is written under a temporary name in its final
 * directory, then linked into place; on failure the temporary file is removed. An existing file
 * is never overwritten.
 *
 * Modes: a new image gets its template's permission bits for group and others, never looser, at
 * every moment, and read-write for its owner (the guest writes it; a read-only 0444 golden image
 * gives a 0644 overlay). The temporary file is created empty with those bits (the umask can only
 * narrow them; a chmod then sets them exactly) before `qemu-img` or `cp` writes into it, and
 * both keep an existing file's mode.
 *
 * Identity: an image is ours only while the file at its path is the one we made: same device,
 * same inode and same birth time (`statx`, nanoseconds). The inode alone proves nothing: ext4
 * hands a freed inode straight to the next new file, so a user's file put at our path after
 * removing ours usually gets our inode back. Where the file system keeps no birth time (`statx`
 * reports none: ext4 with 128-byte inodes, some network file systems), a hidden hard link beside
 * the image, `.NAME.lvd-pin-RANDOM`, pins our inode instead: while the link exists the inode
 * cannot be freed, so it cannot be reused, and the same device and inode at the path prove the
 * file is ours. The pin is removed with the image.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { formatErrorMessage, hasBrand, LibvirtDomainError } from "../xml/errors";
import { constants as fsc, promises as fs } from "node:fs";
import * as path from "node:path";

const BRAND = "__pulumiLibvirtDomainImageError";

/**
 * {@link ImageError}: an image operation failed; `path` is the image it was about. The reason
 * names the image itself, so the message is `REASON; fix: FIX` (the path is not repeated first).
 */
export class ImageError extends LibvirtDomainError {
  /**
   * @param reason what failed, naming the image
   * @param imagePath the image it was about
   * @param fix how to fix it
   * @param cause the error this one reports, if any
   */
  constructor(reason: string, imagePath: string, fix: string, cause?: unknown) {
    super(reason, { path: imagePath, fix }, BRAND, formatErrorMessage(reason, { path: "", fix }), cause);
  }

  /** True for any {@link ImageError}, whichever copy of this module made it. */
  public static override isInstance(e: unknown): e is ImageError {
    return hasBrand(e, BRAND);
  }
}

/** Who a file is, as `stat` sees it; big numbers as decimal strings (exact). */
export interface FileIdentity {
  /** `st_dev`. */
  readonly device: string;
  /** `st_ino`. */
  readonly inode: string;
  /** Birth time in nanoseconds since the epoch; `"0"` where the file system keeps none. */
  readonly birthtimeNs: string;
  /** Apparent size in bytes. */
  readonly sizeBytes: number;
}

/** What we record of an image we made, to recognize it later. */
export interface ImageStamp extends FileIdentity {
  /** Where the image is: the path it was linked into place at. */
  readonly path: string;
  /** Where the file system keeps no birth time: the hidden hard link that pins our inode. */
  readonly pin?: string;
}

/** Runs `cmd` writing the image `target`; rejects with an {@link ImageError} carrying its stderr. */
function run(cmd: string, args: string[], target: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err)
        reject(
          new ImageError(
            (stderr || err.message).trim(),
            target,
            `correct what ${cmd} names (the template image, its format, room in ${path.dirname(target)})`,
            err,
          ),
        );
      else resolve(stdout);
    });
  });
}

/** The identity of the file at `p`; undefined when there is none. Other errors throw. */
export async function fileIdentity(p: string): Promise<FileIdentity | undefined> {
  let st;
  try {
    st = await fs.stat(p, { bigint: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw e;
  }
  return {
    device: String(st.dev),
    inode: String(st.ino),
    birthtimeNs: String(st.birthtimeNs),
    sizeBytes: Number(st.size),
  };
}

/**
 * Whether `now` (the file at the image's path) is the image `s` recorded: same device and inode,
 * and the same birth time, or, without birth times, our pin (`pinNow`) still holding that inode.
 */
export function isSameImage(s: ImageStamp, now: FileIdentity | undefined, pinNow: FileIdentity | undefined): boolean {
  if (!now || now.device !== s.device || now.inode !== s.inode) return false;
  if (s.birthtimeNs !== "0") return now.birthtimeNs === s.birthtimeNs;
  return s.pin !== undefined && pinNow !== undefined && pinNow.device === s.device && pinNow.inode === s.inode;
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p, fsc.F_OK).then(
    () => true,
    () => false,
  );
}

/** A hidden name beside `target`, unused so far: `.NAME.KIND-RANDOM`. */
function besideName(target: string, kind: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${kind}-${randomBytes(6).toString("hex")}`);
}

/**
 * Writes an image through `make(tmp)` into a temporary file created with `mode`, then links it
 * into place (never over an existing file); pins its inode where there is no birth time; cleans
 * up on failure.
 */
export async function writeImageAtomically(
  target: string,
  mode: number,
  make: (tmp: string) => Promise<void>,
): Promise<ImageStamp> {
  if (await exists(target)) {
    throw new ImageError(
      `${target} already exists; it is never overwritten`,
      target,
      "remove it, or choose another imageDir",
    );
  }
  const tmp = besideName(target, "partial");
  let made: FileIdentity;
  let raced: ImageError | undefined;
  try {
    // Empty, with the template's bits, before anything writes into it.
    const fh = await fs.open(tmp, "wx", mode);
    try {
      await fh.chmod(mode);
    } finally {
      await fh.close();
    }
    await make(tmp);
    made = (await fileIdentity(tmp))!;
    await fs.link(tmp, target).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code === "EEXIST")
        throw (raced = new ImageError(
          `${target} appeared while it was being written; it is never overwritten`,
          target,
          "find what else writes there (another stack or fleet with the same imageDir?), move that file away, and run again",
          e,
        ));
      throw e;
    });
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    if (e === raced) throw e;
    throw new ImageError(
      `cannot write ${target}: ${ImageError.isInstance(e) ? e.reason : (e as Error).message}`,
      target,
      `check that ${path.dirname(target)} exists, is writable and has room`,
      e,
    );
  }
  let pin: string | undefined;
  try {
    if (made.birthtimeNs === "0") {
      // No birth time here: a hard link we keep pins the inode (it can never be reused under us).
      pin = besideName(target, "lvd-pin");
      await fs.link(tmp, pin);
    }
  } catch (e) {
    // The image cannot be proven ours later: take it back out (it is still our inode) and fail.
    const now = await fileIdentity(target).catch(() => undefined);
    if (now && now.device === made.device && now.inode === made.inode) await fs.unlink(target).catch(() => undefined);
    throw new ImageError(
      `cannot pin ${target} (this file system keeps no birth time, so a hidden hard link ${pin} must hold the image's inode): ${(e as Error).message}`,
      target,
      `check that ${path.dirname(target)} is writable`,
      e,
    );
  } finally {
    await fs.rm(tmp, { force: true });
  }
  return { path: target, ...made, ...(pin ? { pin } : {}) };
}

/** The permission bits of `p` (a template image). */
/** The mode of an image made from a template of mode `templateMode`: its bits, and read-write for the owner. */
export function imageModeFor(templateMode: number): number {
  return (templateMode & 0o777) | 0o600;
}

/** The mode for an image made from the template `p` ({@link imageModeFor}). */
async function permissionBits(p: string): Promise<number> {
  try {
    return imageModeFor((await fs.stat(p)).mode);
  } catch (e) {
    throw new ImageError(
      `cannot read the template image ${p}: ${(e as Error).message}`,
      p,
      "check the template's disk path",
      e,
    );
  }
}

/** Creates a qcow2 overlay at `target` backed by `backing` (read-only for the guest of the overlay), with the backing image's mode ({@link imageModeFor}). */
export async function createOverlay(target: string, backing: string, backingFormat: string): Promise<ImageStamp> {
  const mode = await permissionBits(backing);
  return writeImageAtomically(target, mode, (tmp) =>
    run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", backing, "-F", backingFormat, tmp], target).then(
      () => undefined,
    ),
  );
}

/** Copies `source` to `target` in full (sparse where the source is), with the source's mode ({@link imageModeFor}). */
export async function copyImage(target: string, source: string): Promise<ImageStamp> {
  const mode = await permissionBits(source);
  return writeImageAtomically(target, mode, (tmp) =>
    run("cp", ["--sparse=always", "--reflink=auto", "--", source, tmp], target).then(() => undefined),
  );
}

/** The identity of an existing image, or undefined. */
export async function statImage(p: string): Promise<FileIdentity | undefined> {
  return fileIdentity(p).catch(() => undefined);
}

/** Whether the file at `s.path` is still the image `s` recorded. */
export async function isOurImage(s: ImageStamp): Promise<boolean> {
  return isSameImage(s, await fileIdentity(s.path), s.pin ? await fileIdentity(s.pin) : undefined);
}

/**
 * Removes an image only while it is still the one we made ({@link isSameImage}), and our pin
 * while it still holds our inode; returns whether the image was removed. Anything else at the
 * path is left alone.
 */
export async function removeImage(s: ImageStamp): Promise<boolean> {
  const pinNow = s.pin ? await fileIdentity(s.pin) : undefined;
  const ours = isSameImage(s, await fileIdentity(s.path), pinNow);
  if (ours) await fs.unlink(s.path);
  if (s.pin && pinNow && pinNow.device === s.device && pinNow.inode === s.inode) await fs.unlink(s.pin);
  return ours;
}
