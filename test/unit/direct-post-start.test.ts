/**
 * QEMU-direct `start` when a step after launch fails (fake QEMU: a Node script that daemonizes, writes
 * its pid file and answers QMP, refusing the commands named in FAKE_QMP_FAIL or, later, in a file): the I/O limits, the
 * `cont` of a QEMU started paused, the balloon target. As libvirt does (qemuProcessStop), QEMU is
 * stopped again: no guest is left paused and never continued, or running while its start is reported
 * failed (a later `start` would then refuse: "domain is already running"). The real QEMU runs in
 * the lab suite.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as net from "node:net";
import * as path from "node:path";
import { DirectError, QemuDirectBackend } from "../../provider/backends/qemu/direct";

/** The daemon: listens on the QMP socket named in its argv, writes its pid file, records each command. */
const DAEMON = `
const net = require("net");
const fs = require("fs");
const [qmp, pidFile, record] = process.argv.slice(2);
const fail = (process.env.FAKE_QMP_FAIL || "").split(",");
let paused = process.env.FAKE_QMP_PAUSED === "1";
const server = net.createServer((c) => {
  c.write(JSON.stringify({ QMP: { version: {}, capabilities: [] } }) + "\\n");
  let buf = "";
  c.on("data", (d) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf("\\n")) >= 0) {
      const m = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      fs.appendFileSync(record, m.execute + "\\n");
      const more = fs.existsSync(record + ".fail") ? fs.readFileSync(record + ".fail", "utf8").split(",") : [];
      if (fail.includes(m.execute) || more.includes(m.execute)) {
        c.write(JSON.stringify({ error: { class: "GenericError", desc: "fake: " + m.execute + " refused" } }) + "\\n");
        continue;
      }
      if (m.execute === "cont") paused = false;
      const ret = m.execute === "query-status" ? { status: paused ? "prelaunch" : "running" } : {};
      c.write(JSON.stringify({ return: ret }) + "\\n");
      if (m.execute === "quit") setTimeout(() => process.exit(0), 20);
    }
  });
});
server.listen(qmp, () => fs.writeFileSync(pidFile, String(process.pid)));
`;

/** The emulator: finds -pidfile and the monitor socket, starts the daemon detached, exits once its pid file is there. */
const EMULATOR = (daemon: string, record: string) => `#!${process.execPath}
const { spawn } = require("child_process");
const fs = require("fs");
const a = process.argv.slice(2);
const pidFile = a[a.indexOf("-pidfile") + 1];
const qmp = /^socket,id=charmonitor,path=([^,]+),/.exec(a.find((x) => x.startsWith("socket,id=charmonitor,")))[1];
if (a.includes("-S")) process.env.FAKE_QMP_PAUSED = "1";
fs.writeFileSync(${JSON.stringify(record)} + ".argv", a.join("\\n"));
spawn(process.execPath, [${JSON.stringify(daemon)}, qmp, pidFile, ${JSON.stringify(record)}], { detached: true, stdio: "ignore", env: process.env }).unref();
const t = setInterval(() => { if (fs.existsSync(pidFile)) { clearInterval(t); process.exit(0); } }, 20);
`;

/** Whether the process runs (a zombie is dead). */
function alive(pid: number): boolean {
  try {
    return !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

describe("QEMU-direct start: a step after launch fails (fake QEMU answering QMP)", function () {
  this.timeout(30000);
  let dir: string;
  let b: QemuDirectBackend;
  let record: string;
  const daemonPids: number[] = [];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-direct-post-"));
    const daemon = path.join(dir, "fake-qemu-daemon.js");
    record = path.join(dir, "qmp-commands");
    fs.writeFileSync(daemon, DAEMON);
    const emulator = path.join(dir, "fake-qemu");
    fs.writeFileSync(emulator, EMULATOR(daemon, record), { mode: 0o755 });
    const options = { startTimeoutMs: 10000, stopTimeoutMs: 1000 }; // bounds of start, and of each wait of a stop
    b = new QemuDirectBackend(`qemu-direct://${dir}/state?emulator=${emulator}`, options);
  });
  afterEach(() => {
    delete process.env.FAKE_QMP_FAIL;
    for (const pid of daemonPids.splice(0))
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function startFails(name: string, xml: string, failing: string): Promise<DirectError> {
    await b.define(xml);
    process.env.FAKE_QMP_FAIL = failing;
    const pidFile = path.join(dir, "state", name, "qemu.pid");
    try {
      await b.start(name);
    } catch (e) {
      if (fs.existsSync(pidFile)) daemonPids.push(Number(fs.readFileSync(pidFile, "utf8")));
      expect(DirectError.isInstance(e), String(e)).to.equal(true);
      return e as DirectError;
    }
    if (fs.existsSync(pidFile)) daemonPids.push(Number(fs.readFileSync(pidFile, "utf8")));
    throw new Error("start should have failed");
  }

  const domain = (name: string, extra: string, devices = "") =>
    `<domain type='qemu'><name>${name}</name><memory unit='MiB'>64</memory>${extra}<os><type arch='x86_64'>hvm</type></os><devices>${devices}</devices></domain>`;

  it("the balloon target is refused: the error says so and QEMU is stopped, not left running", async () => {
    const e = await startFails("balloon", domain("balloon", "<currentMemory unit='MiB'>32</currentMemory>"), "balloon");
    expect(e.message).to.contain("balloon target").and.contain("fake: balloon refused").and.contain("stopped again");
    expect(fs.readFileSync(record, "utf8")).to.contain("quit");
    expect(await b.domstate("balloon")).to.equal("shut off");
    for (const pid of daemonPids) expect(alive(pid), `fake QEMU ${pid} stopped`).to.equal(false);
    // a new start is not refused as "already running"
    delete process.env.FAKE_QMP_FAIL;
    await b.start("balloon");
    expect(await b.domstate("balloon")).to.equal("running");
    await b.destroy("balloon");
  });

  it("QEMU started paused for <iotune> and `cont` fails: QEMU is stopped, not left paused for ever", async () => {
    const img = path.join(dir, "a.img");
    fs.writeFileSync(img, "");
    const disk = `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${img}'/><target dev='vda' bus='virtio'/><iotune><total_bytes_sec>5000000</total_bytes_sec></iotune></disk>`;
    const e = await startFails("paused", domain("paused", "", disk), "cont");
    expect(e.message).to.contain("cont").and.contain("fake: cont refused").and.contain("stopped again");
    const sent = fs.readFileSync(record, "utf8").split("\n");
    expect(sent).to.include("block_set_io_throttle").and.include("quit");
    expect(await b.domstate("paused")).to.equal("shut off");
  });

  it("destroy of a QEMU that outlives SIGKILL (hung in the kernel): an error naming it; it still reads as running, its pid file kept", async () => {
    await b.define(domain("hung", ""));
    await b.start("hung");
    const pidFile = path.join(dir, "state", "hung", "qemu.pid");
    const pid = Number(fs.readFileSync(pidFile, "utf8"));
    daemonPids.push(pid);
    fs.writeFileSync(`${record}.fail`, "quit");
    // SIGKILL to it does nothing, as to a process in uninterruptible sleep (a hung NFS disk)
    const kill = process.kill.bind(process);
    process.kill = (p: number, sig?: string | number) =>
      Math.abs(p) === pid && sig === "SIGKILL" ? true : kill(p, sig);
    let err: unknown;
    try {
      await b.destroy("hung");
    } catch (e) {
      err = e;
    } finally {
      process.kill = kill;
    }
    expect(alive(pid)).to.equal(true);
    expect(DirectError.isInstance(err), `destroy must fail: ${String(err)}`).to.equal(true);
    expect((err as DirectError).message)
      .to.contain(`pid ${pid}`)
      .and.contain("SIGKILL")
      .and.contain("fix:");
    expect(fs.existsSync(pidFile), "pid file kept").to.equal(true);
    expect(await b.domstate("hung")).to.equal("running");
  });

  it("SPICE autoport next to a fixed VNC port 5900: the fixed port is not given to SPICE too (libvirt reserves it first)", async () => {
    await b.define(
      domain("ports", "", "<graphics type='vnc' port='5900' autoport='no'/><graphics type='spice' autoport='yes'/>"),
    );
    await b.start("ports");
    daemonPids.push(Number(fs.readFileSync(path.join(dir, "state", "ports", "qemu.pid"), "utf8")));
    const argv = fs.readFileSync(`${record}.argv`, "utf8").split("\n");
    const spice = argv[argv.indexOf("-spice") + 1] ?? "";
    expect(argv[argv.indexOf("-vnc") + 1]).to.match(/^127\.0\.0\.1:0,/);
    expect(spice).to.match(/^port=[0-9]+,/);
    expect(spice).not.to.match(/^port=5900,/);
    await b.destroy("ports");
  });

  it("undefine removes channel sockets only in the domain's own channel directory, never through a link to another", async () => {
    await b.define(domain("chan", ""));
    const other = path.join(dir, "other");
    fs.mkdirSync(other);
    const sock = path.join(other, "someone.sock");
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      fs.symlinkSync(other, path.join(dir, "state", "chan", "channel"));
      await b.undefine("chan");
      expect(fs.existsSync(sock), "a socket we did not make stays").to.equal(true);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it("the balloon target is set while QEMU is paused (-S), then `cont`: the guest never runs without it (libvirt's order)", async () => {
    await b.define(domain("order", "<currentMemory unit='MiB'>32</currentMemory>"));
    await b.start("order");
    daemonPids.push(Number(fs.readFileSync(path.join(dir, "state", "order", "qemu.pid"), "utf8")));
    expect(fs.readFileSync(`${record}.argv`, "utf8").split("\n")).to.include("-S");
    const sent = fs.readFileSync(record, "utf8").split("\n");
    expect(sent).to.include("balloon").and.include("cont");
    expect(sent.lastIndexOf("balloon")).to.be.below(sent.lastIndexOf("cont"));
    expect(await b.domstate("order")).to.equal("running");
    await b.destroy("order");
  });
  it("a QEMU left paused before its guest ever ran (-S, a start interrupted before `cont`) is replaced by the next start", async () => {
    await b.define(domain("left", ""));
    const state = path.join(dir, "state", "left");
    const qmp = path.join(state, "qmp.sock");
    const pidFile = path.join(state, "qemu.pid");
    // what an interrupted start leaves: a daemonized QEMU in prelaunch (the provider was killed before cont)
    execFileSync(path.join(dir, "fake-qemu"), [
      "-S",
      "-chardev",
      `socket,id=charmonitor,path=${qmp},server=on,wait=off`,
      "-pidfile",
      pidFile,
    ]);
    const old = Number(fs.readFileSync(pidFile, "utf8"));
    daemonPids.push(old);
    expect(await b.domstate("left")).to.equal("paused");
    await b.start("left");
    const now = Number(fs.readFileSync(pidFile, "utf8"));
    daemonPids.push(now);
    expect(now).not.to.equal(old);
    expect(alive(old), "the one left paused is stopped").to.equal(false);
    expect(await b.domstate("left")).to.equal("running");
    await b.destroy("left");
  });

  it("a QEMU whose guest runs is not replaced: start refuses (already running), as libvirt does", async () => {
    await b.define(domain("ran", ""));
    await b.start("ran");
    daemonPids.push(Number(fs.readFileSync(path.join(dir, "state", "ran", "qemu.pid"), "utf8")));
    let err: unknown;
    try {
      await b.start("ran");
    } catch (e) {
      err = e;
    }
    expect(String(err)).to.contain("already running");
    await b.destroy("ran");
  });
});

describe("QEMU-direct start: an emulator that cannot be run", () => {
  it("a missing emulator: a DirectError naming it, with a fix (not a bare spawn ENOENT)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-direct-noemu-"));
    try {
      const emulator = path.join(dir, "no-such-qemu");
      const b = new QemuDirectBackend(`qemu-direct://${dir}/state?emulator=${emulator}`);
      await b.define(
        "<domain type='qemu'><name>noemu</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os></domain>",
      );
      let err: unknown;
      try {
        await b.start("noemu");
      } catch (e) {
        err = e;
      }
      expect(DirectError.isInstance(err), `a DirectError: ${String(err)}`).to.equal(true);
      expect((err as DirectError).message)
        .to.contain(emulator)
        .and.contain("fix:")
        .and.contain("?emulator=");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
