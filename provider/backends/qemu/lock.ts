/**
 * A per-domain lock for the QEMU-direct backend, across processes: a directory holding the
 * owner's pid. It is made whole under a temporary name and renamed into place (atomic; a rename
 * fails onto a directory with content), so a held lock always has its owner file; released by
 * renaming it away, then removing it.
 *
 * Broken locks: an empty lock directory (left by a crash of an older version between `mkdir` and
 * the owner write, or made by hand) is taken over at once (the rename replaces it); one whose
 * owner process is gone is broken at once; one with content but no usable owner file is broken
 * once it is older than `ownerlessMs`. Waiters poll; every wait is bounded by `timeoutMs` and the
 * error names the lock and its holder.
 */
import { randomBytes } from "node:crypto";
import { promises as fs, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { DirectError } from "./direct-error";

/** @default bound of a wait for a lock, in milliseconds. */
export const DEFAULT_LOCK_TIMEOUT_MS = 300000;
/** @default age after which a lock directory without an owner file is broken, in milliseconds. */
export const DEFAULT_OWNERLESS_MS = 10000;

/** One lock directory. */
export class DirectLock {
  /**
   * Builds a lock at `dir` (which must not exist while free). `timeoutMs` bounds `acquire`;
   * `ownerlessMs` is how old a lock directory without an owner file must be to be broken.
   */
  constructor(
    private readonly dir: string,
    private readonly timeoutMs = DEFAULT_LOCK_TIMEOUT_MS,
    private readonly ownerlessMs = DEFAULT_OWNERLESS_MS,
  ) {}

  /** A unique sibling name (same file system, so renames are atomic). */
  private sibling(kind: string): string {
    return `${this.dir}.${kind}-${process.pid}-${randomBytes(4).toString("hex")}`;
  }

  /** Waits until held, at most `timeoutMs`. */
  public async acquire(): Promise<void> {
    const end = Date.now() + this.timeoutMs;
    for (;;) {
      if (await this.tryTake()) return;
      const owner = this.owner();
      if (owner.kind === "gone") continue; // released meanwhile: try again at once
      const stale = owner.kind === "pid" ? !alive(owner.pid) : owner.ageMs >= this.ownerlessMs;
      if (stale && (await this.breakStale(owner.kind === "pid" ? String(owner.pid) : owner.text))) continue;
      if (Date.now() > end) {
        const holder =
          owner.kind === "pid"
            ? `held by pid ${owner.pid}`
            : `it has no usable owner file; broken once ${this.ownerlessMs} ms old`;
        throw new DirectError(`timed out after ${this.timeoutMs} ms waiting for the lock ${this.dir} (${holder})`, {
          fix:
            owner.kind === "pid"
              ? `wait for the operation of pid ${owner.pid} on this domain to end, then run again`
              : `if no Pulumi or provider process works on this domain, remove ${this.dir}`,
        });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Makes the lock whole under a temporary name and renames it into place; false when taken. */
  private async tryTake(): Promise<boolean> {
    const tmp = this.sibling("new");
    await fs.mkdir(tmp);
    try {
      await fs.writeFile(path.join(tmp, "owner"), String(process.pid));
      await fs.rename(tmp, this.dir);
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "EEXIST" && code !== "ENOTEMPTY") throw e;
      return false;
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  }

  /** The owner as found: a pid, none usable (its text, the directory's age), or no lock at all. */
  private owner():
    { kind: "pid"; pid: number } | { kind: "none"; text: string | undefined; ageMs: number } | { kind: "gone" } {
    let ageMs: number;
    try {
      ageMs = Date.now() - statSync(this.dir).mtimeMs;
    } catch {
      return { kind: "gone" };
    }
    let text: string | undefined;
    try {
      text = readFileSync(path.join(this.dir, "owner"), "utf8");
    } catch {
      return { kind: "none", text: undefined, ageMs };
    }
    const pid = Number(text);
    return /^[0-9]+$/.test(text) && Number.isSafeInteger(pid) && pid > 1
      ? { kind: "pid", pid }
      : { kind: "none", text, ageMs };
  }

  /**
   * Breaks a stale lock whose owner file read `judged`: renames it away (one breaker wins), then
   * checks it took what it judged; a lock taken meanwhile by a live process is put back.
   * Returns whether the lock was broken.
   */
  private async breakStale(judged: string | undefined): Promise<boolean> {
    const trash = this.sibling("stale");
    try {
      await fs.rename(this.dir, trash);
    } catch {
      return false; // broken or released by someone else: the next try will tell
    }
    let found: string | undefined;
    try {
      found = readFileSync(path.join(trash, "owner"), "utf8");
    } catch {
      found = undefined;
    }
    if (found !== judged && /^[0-9]+$/.test(found ?? "") && alive(Number(found))) {
      await fs.rename(trash, this.dir).catch(() => undefined);
      return false;
    }
    await fs.rm(trash, { recursive: true, force: true });
    return true;
  }

  /** Releases it: renamed away first, so a crash never leaves a lock without its owner file. */
  public async release(): Promise<void> {
    const trash = this.sibling("old");
    try {
      await fs.rename(this.dir, trash);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      throw e;
    }
    await fs.rm(trash, { recursive: true, force: true });
  }
}

/** Whether a process exists (EPERM: it does, under another user). */
function alive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 1) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
