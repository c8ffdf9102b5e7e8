/**
 * What the labs do to the machine they run on (scripts/lab.sh, behind `npm run up`):
 * - a host whose libvirt is already set up is used as it is: /etc stays byte-identical and no
 *   second libvirtd starts; one that is set up but not running is an error naming how to start it;
 * - on a host without a libvirt set-up, the lab's own libvirtd sees the lab's settings while /etc
 *   stays byte-identical, and `down` leaves it so;
 * - `down` and `crash` signal a recorded pid only while it is still the process the lab started.
 *
 * Real processes and a real libvirtd. These tests stop and restart the host lab's daemon, so they
 * hold the lab lock (/tmp/pld-lab.lock, or an ancestor process holds it) for their whole duration,
 * and leave the labs as they found them.
 */
import { expect } from "chai";
import { ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { REPO_ROOT } from "../support/paths";

const LAB_SH = path.join(REPO_ROOT, "scripts", "lab.sh");
const LAB_LOCK = "/tmp/pld-lab.lock";
const HOST_URI = "qemu:///system";
const HOST_SOCKET = "/run/libvirt/libvirt-sock";

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * `scripts/lab.sh ARGS`, with `LAB_DIR` when given (a lab of its own, as on another machine) and
 * `extraFd` open as its descriptor 3 (as `flock LOCK lab.sh ...` passes the lock's descriptor).
 */
function labSh(args: string[], labDir?: string, extraFd?: number): Run {
  const env = { ...process.env };
  if (labDir) env.LAB_DIR = labDir;
  const stdio: Array<"ignore" | "pipe" | number> = ["ignore", "pipe", "pipe"];
  if (extraFd !== undefined) stdio.push(extraFd);
  const r = spawnSync("bash", [LAB_SH, ...args], { env, encoding: "utf8", timeout: 300000, stdio });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The files a process and its children hold open. */
function openFiles(pid: number): string[] {
  const out: string[] = [];
  const kids = fs
    .readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);
  for (const p of [pid, ...kids]) {
    for (const fd of fs.readdirSync(`/proc/${p}/fd`)) {
      try {
        out.push(fs.readlinkSync(`/proc/${p}/fd/${fd}`));
      } catch {
        // closed meanwhile
      }
    }
  }
  return out;
}

function ok(r: Run, what: string): Run {
  expect(r.status, `${what} exits 0; stderr:\n${r.stderr}`).to.equal(0);
  return r;
}

function answers(uri: string): boolean {
  return spawnSync("virsh", ["-c", uri, "version"], { stdio: "ignore", timeout: 30000 }).status === 0;
}

/** Paths under /etc that are mount points (the container runtime's /etc/hosts, resolv.conf...). */
function etcMountPoints(): Set<string> {
  const out = new Set<string>();
  for (const line of fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const mountPoint = line.split(" ")[4];
    if (mountPoint && mountPoint.startsWith("/etc/")) out.add(mountPoint);
  }
  return out;
}

/**
 * Every entry under /etc: type, mode, owner, and the sha256 of a file's bytes or a link's target.
 * Left out: only mount points, which the container runtime manages, not packages or scripts.
 */
function etcSnapshot(): Map<string, string> {
  const skip = etcMountPoints();
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const name of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      if (skip.has(p)) continue;
      const st = fs.lstatSync(p);
      const meta = `mode ${st.mode.toString(8)} owner ${st.uid}:${st.gid}`;
      if (st.isSymbolicLink()) out.set(p, `link -> ${fs.readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.set(p, `dir ${meta}`);
        walk(p);
      } else if (st.isFile())
        out.set(p, `file ${meta} sha256 ${createHash("sha256").update(fs.readFileSync(p)).digest("hex")}`);
      else out.set(p, `special ${meta}`);
    }
  };
  walk("/etc");
  return out;
}

/** What changed between two snapshots, one line per path. */
function etcChanges(before: Map<string, string>, after: Map<string, string>): string[] {
  const changes: string[] = [];
  for (const [p, v] of before) if (after.get(p) !== v) changes.push(`${p}: ${v} => ${after.get(p) ?? "(gone)"}`);
  for (const [p, v] of after) if (!before.has(p)) changes.push(`${p}: (new) ${v}`);
  return changes;
}

/** PIDs of the libvirtd processes running now. */
function libvirtdPids(): number[] {
  const pids: number[] = [];
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/comm`, "utf8").trim() === "libvirtd") pids.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return pids.sort((a, b) => a - b);
}

/** The process runs (a zombie, killed but not yet reaped by this test process, does not). */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat[stat.lastIndexOf(")") + 2] !== "Z";
  } catch {
    return false;
  }
}

/** Field 22 of /proc/PID/stat: the start time. */
function startTime(pid: number): string {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  if (start === undefined) throw new Error(`/proc/${pid}/stat has no field 22 (start time): ${stat}`);
  return start;
}

/** A pid no process has now (as a pid file from before a reboot holds). */
function unusedPid(): number {
  const max = Number(fs.readFileSync("/proc/sys/kernel/pid_max", "utf8"));
  for (let pid = max - 1; pid > 1000; pid--) if (!fs.existsSync(`/proc/${pid}`)) return pid;
  throw new Error(`no unused pid below ${max}`);
}

/** The pids holding a flock on `file`, from /proc/locks. */
function lockHolders(file: string): number[] {
  if (!fs.existsSync(file)) return [];
  const ino = fs.statSync(file).ino;
  const holders: number[] = [];
  for (const line of fs.readFileSync("/proc/locks", "utf8").split("\n")) {
    const f = line.trim().split(/\s+/);
    // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; waiters have "->" after the number.
    if (f[1] !== "FLOCK" || Number(f[5]?.split(":")[2]) !== ino) continue;
    holders.push(Number(f[4]));
  }
  return holders;
}

function ancestors(): Set<number> {
  const out = new Set<number>();
  let pid = process.pid;
  while (pid > 1) {
    out.add(pid);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    pid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  }
  return out;
}

/**
 * Holds the lab lock until the returned function is called: nothing when an ancestor (e.g.
 * `flock /tmp/pld-lab.lock npx mocha ...`) holds it already, else a `flock` child waits for it.
 */
async function holdLabLock(waitMs: number): Promise<() => Promise<void>> {
  const mine = ancestors();
  if (lockHolders(LAB_LOCK).some((p) => mine.has(p))) return async () => undefined;
  const child: ChildProcess = spawn("flock", [LAB_LOCK, "sh", "-c", "echo locked; exec cat >/dev/null"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill();
      reject(
        new Error(
          `waited ${waitMs / 1000} s for the lab lock ${LAB_LOCK} (held by pid ${lockHolders(LAB_LOCK).join(", ")})`,
        ),
      );
    }, waitMs);
    child.stdout!.on("data", (d) => {
      if (String(d).includes("locked")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`flock ${LAB_LOCK} exited (${code}) before taking the lock`));
    });
  });
  return () =>
    new Promise<void>((resolve) => {
      child.removeAllListeners("exit");
      child.on("exit", () => resolve());
      child.stdin!.end();
    });
}

/** A unix socket nothing listens on: what a system libvirtd that stopped uncleanly leaves. */
function leftoverSocket(p: string): void {
  execFileSync(process.execPath, [
    "-e",
    `require("node:net").createServer().listen(${JSON.stringify(p)}, () => process.exit(0))`,
  ]);
}

/**
 * Stops the host lab's own libvirtd and checks that nothing answers at the host URI any more
 * (the tests that call it need a host whose libvirt the lab runs itself).
 */
function stopHostLab(): void {
  ok(labSh(["down", "host"]), "lab.sh down host (the lab's host daemon)");
  expect(
    answers(HOST_URI),
    `nothing answers at ${HOST_URI} once the host lab is down (this test needs a host whose libvirt the lab runs itself)`,
  ).to.equal(false);
}

describe("the machine the labs run on (scripts/lab.sh)", function () {
  this.timeout(600000);
  let release: () => Promise<void> = async () => undefined;
  let envBefore = "";
  let hostWasUp = false;
  let newWasUp = false;
  const tmp: string[] = [];
  const newLabDir = (): string => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), "pld-machine-"));
    tmp.push(d);
    return d;
  };

  before(async function () {
    this.timeout(1800000 + 60000);
    release = await holdLabLock(1800000);
    envBefore = ok(labSh(["env"]), "lab.sh env").stdout;
    hostWasUp = answers(HOST_URI);
    const newUri = /LAB_NEW_URI='([^']*)'/.exec(envBefore)?.[1];
    if (newUri === undefined) throw new Error(`lab.sh env printed no LAB_NEW_URI='...':\n${envBefore}`);
    newWasUp = answers(newUri);
  });

  // The host lab as the tests found it, after every test that stops it.
  afterEach(function () {
    if (hostWasUp && !answers(HOST_URI)) ok(labSh(["up", "host"]), "lab.sh up host (restoring the host lab)");
  });

  after(async () => {
    try {
      for (const d of tmp) {
        if (fs.existsSync(path.join(d, "run", "host.pid"))) labSh(["down", "host"], d);
        fs.rmSync(d, { recursive: true, force: true });
      }
      expect(ok(labSh(["env"]), "lab.sh env").stdout, "lab.sh env unchanged").to.equal(envBefore);
      const status = ok(labSh(["status"]), "lab.sh status").stdout;
      if (hostWasUp) expect(status).to.match(/^up +qemu:\/\/\/system$/m);
      if (newWasUp) expect(status).to.match(/^up +qemu\+unix:/m);
    } finally {
      await release();
    }
  });

  it("a host whose libvirt is set up and running (a libvirtd the lab did not start): up host uses it as it is, /etc byte-identical, no second daemon; down leaves it running", () => {
    expect(answers(HOST_URI), `a libvirtd answers at ${HOST_URI} (start the labs: npm run lab -- up)`).to.equal(true);
    const dir = newLabDir(); // a lab of its own: the running libvirtd is not one it started
    const etc = etcSnapshot();
    const daemons = libvirtdPids();

    const up = ok(labSh(["up", "host"], dir), "lab.sh up host");
    expect(etcChanges(etc, etcSnapshot()), "changes under /etc after up").to.deep.equal([]);
    expect(libvirtdPids(), "libvirtd processes").to.deep.equal(daemons);
    expect(up.stdout).to.include(`export LAB_HOST_URI='${HOST_URI}'`);
    expect(up.stderr).to.match(/did not start: using it as it is/);
    expect(fs.existsSync(path.join(dir, "run", "host.pid")), "no daemon recorded").to.equal(false);

    ok(labSh(["down", "host"], dir), "lab.sh down host");
    expect(answers(HOST_URI), "the host's libvirtd still answers").to.equal(true);
    expect(libvirtdPids(), "libvirtd processes").to.deep.equal(daemons);
    expect(etcChanges(etc, etcSnapshot()), "changes under /etc after down").to.deep.equal([]);
  });

  it("a host whose libvirt is set up but not running: up host fails naming how to start it, changes nothing, starts nothing", () => {
    stopHostLab();
    expect(fs.existsSync(HOST_SOCKET), `${HOST_SOCKET} is gone with the lab's daemon`).to.equal(false);
    const dir = newLabDir();
    const daemons = libvirtdPids();
    leftoverSocket(HOST_SOCKET);
    try {
      const etc = etcSnapshot();
      const up = labSh(["up", "host"], dir);
      expect(etcChanges(etc, etcSnapshot()), "changes under /etc").to.deep.equal([]);
      expect(libvirtdPids(), "no libvirtd started").to.deep.equal(daemons);
      expect(answers(HOST_URI), "still nothing answers").to.equal(false);
      expect(fs.existsSync(path.join(dir, "run", "host.pid")), "no daemon recorded").to.equal(false);
      expect(up.status, "up fails").to.not.equal(0);
      expect(up.stderr).to.include(
        `libvirt is set up on this host (the socket ${HOST_SOCKET} exists) but nothing answers at ${HOST_URI}`,
      );
      expect(up.stderr).to.match(/start it \((systemctl|service) [^()]*\) and run this again/);
    } finally {
      fs.rmSync(HOST_SOCKET, { force: true });
    }
  });

  it("a host without a libvirt set-up: the lab's libvirtd sees the lab's settings and keeps its domains in LAB_DIR; /etc is byte-identical while it runs, after a crash and restart, and after down", () => {
    stopHostLab();
    const dir = newLabDir();
    const etc = etcSnapshot();
    const daemons = libvirtdPids();

    // A descriptor of the caller, as the lab lock of `flock LOCK lab.sh up` is: the daemon must not
    // keep it (it would hold the lock for as long as it runs).
    const callerFile = path.join(dir, "caller-descriptor");
    const callerFd = fs.openSync(callerFile, "w");
    const up = ok(labSh(["up", "host"], dir, callerFd), "lab.sh up host");
    fs.closeSync(callerFd);
    expect(etcChanges(etc, etcSnapshot()), "changes under /etc after up").to.deep.equal([]);
    expect(up.stderr).to.not.match(/using it as it is/);
    expect(answers(HOST_URI)).to.equal(true);
    const tini = Number(fs.readFileSync(path.join(dir, "run", "host.pid"), "utf8"));
    expect(openFiles(tini), "files the lab's tini and libvirtd hold").to.not.include(callerFile);
    expect(fs.readFileSync(path.join(dir, "run", "host.id"), "utf8")).to.include(`start ${startTime(tini)}\n`);
    // A persistent domain that starts: stdio_handler = "file" (no virtlogd here) is in effect,
    // and its definition lands in the lab's directory, not in /etc/libvirt/qemu.
    const name = `lvd-machine-${process.pid}`;
    const xml = path.join(dir, "domain.xml");
    fs.writeFileSync(
      xml,
      `<domain type='qemu'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices><serial type='pty'/></devices></domain>`,
    );
    execFileSync("virsh", ["-q", "-c", HOST_URI, "define", xml]);
    execFileSync("virsh", ["-q", "-c", HOST_URI, "start", name]);
    execFileSync("virsh", ["-q", "-c", HOST_URI, "destroy", name]);
    expect(
      fs.existsSync(path.join(dir, "host", "etc-libvirt", "qemu", `${name}.xml`)),
      "the definition is in LAB_DIR",
    ).to.equal(true);
    expect(etcChanges(etc, etcSnapshot()), "changes under /etc while the lab's libvirtd runs").to.deep.equal([]);

    // A crash leaves the daemon's sockets behind: the next up restarts the lab's daemon.
    ok(labSh(["crash", "host"], dir), "lab.sh crash host");
    expect(answers(HOST_URI)).to.equal(false);
    ok(labSh(["up", "host"], dir), "lab.sh up host after a crash");
    expect(execFileSync("virsh", ["-q", "-c", HOST_URI, "domstate", name], { encoding: "utf8" }).trim()).to.equal(
      "shut off",
    );

    ok(labSh(["down", "host"], dir), "lab.sh down host");
    expect(answers(HOST_URI), "the lab's libvirtd is stopped").to.equal(false);
    expect(alive(tini)).to.equal(false);
    expect(libvirtdPids(), "libvirtd processes").to.deep.equal(daemons);
    expect(fs.readFileSync(path.join(dir, "manifest"), "utf8")).to.not.match(/^daemon/m);
    expect(etcChanges(etc, etcSnapshot()), "changes under /etc after down").to.deep.equal([]);
  });

  it("down and crash leave alone a process that now has the recorded pid (a pid reused after a reboot)", async () => {
    const sleeper = spawn("sleep", ["300"], { stdio: "ignore" });
    try {
      const pid = sleeper.pid!;
      const dir = newLabDir();
      const run = path.join(dir, "run");
      fs.mkdirSync(run);
      const cases: Array<{ name: string; id?: string }> = [
        // the identity of the process the lab started, which is gone; its pid now runs `sleep`
        { name: "host", id: `pid ${pid}\nstart 12345\ncmdline-sha256 ${"0".repeat(64)}\ncmdline tini -s -- unshare\n` },
        { name: "new", id: `pid ${pid}\nstart 12345\ncmdline-sha256 ${"0".repeat(64)}\ncmdline tini -s -- unshare\n` },
        // a pid file alone, as an earlier lab.sh wrote it
        { name: "host" },
        { name: "new" },
      ];
      for (const c of cases) {
        for (const cmd of ["down", "crash"]) {
          fs.writeFileSync(path.join(run, `${c.name}.pid`), `${pid}\n`);
          if (c.id) fs.writeFileSync(path.join(run, `${c.name}.id`), c.id);
          else fs.rmSync(path.join(run, `${c.name}.id`), { force: true });
          const r = labSh([cmd, c.name], dir);
          const what = `${cmd} ${c.name} (${c.id ? "identity of another process" : "pid file alone"})`;
          if (cmd === "down") expect(r.status, `${what}: ${r.stderr}`).to.equal(0);
          else expect(r.stderr, what).to.include("nothing signalled");
          expect(alive(pid), `${what}: the process with that pid is alive`).to.equal(true);
          expect(r.stderr, what).to.include(
            `stale pid file ${run}/${c.name}.pid: pid ${pid} now belongs to another process (sleep 300)`,
          );
          expect(fs.existsSync(path.join(run, `${c.name}.pid`)), `${what}: the stale pid file is removed`).to.equal(
            false,
          );
          expect(fs.existsSync(path.join(run, `${c.name}.id`)), `${what}: its identity file is removed`).to.equal(
            false,
          );
        }
      }
    } finally {
      sleeper.kill("SIGKILL");
    }
  });

  it("a pid file from before a reboot (no such process now): down, crash and up remove it with a message and signal nothing", () => {
    const dir = newLabDir();
    const run = path.join(dir, "run");
    fs.mkdirSync(run);
    for (const cmd of [
      ["down", "host"],
      ["down", "new"],
      ["crash", "host"],
      ["crash", "new"],
      ["up", "host"],
    ]) {
      const pid = unusedPid();
      fs.writeFileSync(path.join(run, `${cmd[1]}.pid`), `${pid}\n`);
      const r = labSh(cmd, dir);
      const what = cmd.join(" ");
      if (cmd[0] === "crash") expect(r.status, what).to.not.equal(0);
      else expect(r.status, `${what}: ${r.stderr}`).to.equal(0);
      expect(r.stderr, what).to.include(`stale pid file ${run}/${cmd[1]}.pid: no process ${pid} runs`);
      expect(fs.existsSync(path.join(run, `${cmd[1]}.pid`)), `${what}: the stale pid file is removed`).to.equal(false);
    }
  });
});
