/**
 * A per-domain lock for the QEMU-direct backend, across processes: an atomic `mkdir`, with the
 * owner's pid inside; a lock whose owner is gone is broken. Waiters poll.
 */
import { promises as fs, readFileSync } from "node:fs";
import * as path from "node:path";

/** One lock directory. */
export class DirectLock {
  /** Builds a lock at `dir` (which must not exist while free). */
  constructor(private readonly dir: string, private readonly timeoutMs = 300000) {}

  /** Waits until held. */
  public async acquire(): Promise<void> {
    const end = Date.now() + this.timeoutMs;
    for (;;) {
      try {
        await fs.mkdir(this.dir);
        await fs.writeFile(path.join(this.dir, "owner"), String(process.pid));
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
      if (this.ownerGone()) {
        await fs.rm(this.dir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > end) throw new Error(`timed out after ${this.timeoutMs} ms waiting for the lock ${this.dir} (held by pid ${this.owner()})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private owner(): number | undefined {
    try {
      return Number(readFileSync(path.join(this.dir, "owner"), "utf8"));
    } catch {
      return undefined;
    }
  }

  private ownerGone(): boolean {
    const pid = this.owner();
    if (pid === undefined) return false; // being written: wait
    try {
      process.kill(pid, 0);
      return false;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === "ESRCH";
    }
  }

  /** Releases it. */
  public async release(): Promise<void> {
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}
