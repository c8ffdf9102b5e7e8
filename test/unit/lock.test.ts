/**
 * The QEMU-direct per-domain lock: held by one at a time, broken when its owner is gone or when it
 * has no owner at all (after a bound), and every wait is bounded with a message naming the lock.
 */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DirectLock } from "../../provider/backends/qemu/lock";
import { rejection } from "../support/async";

describe("QEMU-direct lock", function () {
  this.timeout(20000);
  let dir: string;
  let lockDir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-lock-"));
    lockDir = path.join(dir, ".web.lock");
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("one holder at a time; the second waits, then gets it", async () => {
    const a = new DirectLock(lockDir, 5000);
    const b = new DirectLock(lockDir, 5000);
    await a.acquire();
    expect(fs.readFileSync(path.join(lockDir, "owner"), "utf8")).to.equal(String(process.pid));
    let got = false;
    const pb = b.acquire().then(() => (got = true));
    await new Promise((r) => setTimeout(r, 200));
    expect(got).to.equal(false);
    await a.release();
    await pb;
    expect(got).to.equal(true);
    await b.release();
    expect(fs.existsSync(lockDir)).to.equal(false);
  });

  it("a lock whose owner is gone is broken at once", async () => {
    const dead = spawnSync("true").pid;
    fs.mkdirSync(lockDir);
    fs.writeFileSync(path.join(lockDir, "owner"), String(dead));
    const t0 = Date.now();
    await new DirectLock(lockDir, 5000).acquire();
    expect(Date.now() - t0).to.be.below(2000);
    expect(fs.readFileSync(path.join(lockDir, "owner"), "utf8")).to.equal(String(process.pid));
  });

  it("a lock directory without an owner file (a crash between mkdir and the owner write) is taken over", async () => {
    fs.mkdirSync(lockDir);
    const t0 = Date.now();
    await new DirectLock(lockDir, 8000, 300).acquire();
    expect(Date.now() - t0).to.be.below(3000);
    expect(fs.readFileSync(path.join(lockDir, "owner"), "utf8")).to.equal(String(process.pid));
  });

  it("a lock directory with content but no owner file is broken after the bound, not before", async () => {
    fs.mkdirSync(lockDir);
    fs.writeFileSync(path.join(lockDir, "stray"), "x");
    const t0 = Date.now();
    await new DirectLock(lockDir, 8000, 600).acquire();
    expect(Date.now() - t0)
      .to.be.at.least(500)
      .and.below(4000);
    expect(fs.readdirSync(lockDir)).to.deep.equal(["owner"]);
  });

  it("waiting for an ownerless lock is bounded too, naming the lock", async () => {
    fs.mkdirSync(lockDir);
    fs.writeFileSync(path.join(lockDir, "stray"), "x");
    const e = await rejection(new DirectLock(lockDir, 300, 60000).acquire());
    expect(e.message).to.equal(
      `timed out after 300 ms waiting for the lock ${lockDir} (it has no usable owner file; broken once 60000 ms old); fix: if no Pulumi or provider process works on this domain, remove ${lockDir}`,
    );
  });

  it("an owner file that is not a pid counts as no owner", async () => {
    fs.mkdirSync(lockDir);
    fs.writeFileSync(path.join(lockDir, "owner"), "");
    await new DirectLock(lockDir, 8000, 300).acquire();
    expect(fs.readFileSync(path.join(lockDir, "owner"), "utf8")).to.equal(String(process.pid));
  });

  it("a live owner is waited for, up to the bound; the error names the lock and the owner", async () => {
    await new DirectLock(lockDir, 5000).acquire();
    const e = await rejection(new DirectLock(lockDir, 400).acquire());
    expect(e.message).to.equal(
      `timed out after 400 ms waiting for the lock ${lockDir} (held by pid ${process.pid}); fix: wait for the operation of pid ${process.pid} on this domain to end, then run again`,
    );
  });

  it("the directory is never without its owner file while held (made whole, then renamed into place)", async () => {
    const locks = Array.from({ length: 8 }, () => new DirectLock(lockDir, 10000, 200));
    let holders = 0;
    let most = 0;
    await Promise.all(
      locks.map(async (l) => {
        for (let i = 0; i < 5; i++) {
          await l.acquire();
          holders++;
          most = Math.max(most, holders);
          expect(fs.readFileSync(path.join(lockDir, "owner"), "utf8")).to.equal(String(process.pid));
          await new Promise((r) => setTimeout(r, 2));
          holders--;
          await l.release();
        }
      }),
    );
    expect(most).to.equal(1);
    expect(fs.readdirSync(dir)).to.deep.equal([]);
  });
});
