/**
 * QEMU-direct `start` with fake emulators (shell scripts): a QEMU that never daemonizes (never
 * opens its monitor) fails within the bound, naming the socket and the log, and is killed; one
 * that exits without leaving a live QEMU fails at once. The real QEMU runs in the lab suite.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DirectError, QemuDirectBackend } from "../../provider/backends/qemu/direct";

const XML =
  "<domain type='qemu'><name>NAME</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os><devices><serial type='pty'/></devices></domain>";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(ms: number, cond: () => boolean): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

describe("QEMU-direct start with an emulator that misbehaves (fake scripts)", function () {
  this.timeout(30000);
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-direct-start-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function backend(script: string, startTimeoutMs: number): QemuDirectBackend {
    const emulator = path.join(dir, "fake-qemu");
    fs.writeFileSync(emulator, `#!/bin/sh\n${script}\n`, { mode: 0o755 });
    return new QemuDirectBackend(`qemu-direct://${dir}/state?emulator=${emulator}`, { startTimeoutMs });
  }

  async function startError(b: QemuDirectBackend, name: string): Promise<Error> {
    await b.define(XML.replace("NAME", name));
    try {
      await b.start(name);
    } catch (e) {
      return e as Error;
    }
    throw new Error("start should have failed");
  }

  it("a QEMU that never opens its monitor: a bounded error naming the socket and the log; the process is killed", async () => {
    const pidFile = path.join(dir, "fake.pid");
    const b = backend(`echo "fake qemu: hanging" >&2\necho $$ > ${pidFile}\nexec sleep 600`, 800);
    const t0 = Date.now();
    const e = await startError(b, "hang");
    const took = Date.now() - t0;
    expect(e).to.be.instanceOf(DirectError);
    const state = path.join(dir, "state", "hang");
    expect(e.message)
      .to.contain(path.join(state, "qmp.sock"))
      .and.contain(path.join(state, "qemu.log"))
      .and.contain("0.8 s")
      .and.contain("fake qemu: hanging");
    expect(took, "bounded").to.be.below(5000);
    const pid = Number(fs.readFileSync(pidFile, "utf8"));
    expect(await waitFor(3000, () => !alive(pid)), `fake QEMU ${pid} killed`).to.equal(true);
    expect(await b.domstate("hang")).to.equal("shut off");
  });

  it("a QEMU that exits 0 without daemonizing: an error naming the pid file, the socket and the log", async () => {
    const b = backend("exit 0", 800);
    const e = await startError(b, "quick");
    const state = path.join(dir, "state", "quick");
    expect(e.message).to.contain(path.join(state, "qemu.pid")).and.contain(path.join(state, "qemu.log"));
  });

  it("a QEMU that fails: its exit status and the end of its log", async () => {
    const b = backend('echo "qemu-system-x86_64: -machine pc: bad thing" >&2\nexit 1', 5000);
    const e = await startError(b, "fails");
    expect(e.message).to.match(/QEMU exited with 1 while starting fails: .*bad thing/);
  });
});
