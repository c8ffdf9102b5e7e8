/**
 * The QEMU-direct backend: domains without libvirt. The domain XML stays the source of truth; we
 * do the QEMU driver's job: build the command line (`-uuid` from hwuuid, as libvirt does), run
 * QEMU detached, and talk QMP.
 *
 * URI: `qemu-direct:///STATE_DIR[?emulator=/path/to/qemu-system-x86_64]`. Per domain,
 * `STATE_DIR/NAME/` (mode 0700) holds `domain.xml` (0600, security info included: it is the
 * domain's definition), `qemu.pid`, `qmp.sock`, `qemu.log`, `channel/` (the unix sockets of
 * virtio channels written without a path, the guest agent's: libvirt's channel directory) and a
 * lock; while QEMU starts, also the files its secrets are read from (a VNC password), removed
 * once it runs. A pid whose process is gone (QEMU killed) reads as shut off. Undefine removes
 * those files, and the directory only when nothing else is in it.
 *
 * UEFI firmware (a read-only pflash `<loader>`): the domain's NVRAM is `<nvram>`'s file, else
 * `STATE_DIR/NAME/NAME_VARS.fd` (libvirt's name). An existing file is used as it is (it is the
 * guest's variable store); a missing one is copied from `<nvram template=...>` before QEMU starts,
 * atomically and never over a file (image.ts), and recorded in `nvram.json` (its path, device,
 * inode, birth time). Undefine removes an NVRAM file only while it is still the one we made.
 * `<os firmware='efi'|'bios'>` selects the firmware from the host's QEMU firmware descriptors
 * (/etc/qemu/firmware, /usr/share/qemu/firmware: Debian's ovmf ships them) at every start, as
 * libvirt does (provider/qemu/firmware.ts); its NVRAM is made from the chosen template the same way.
 *
 * TPM (`<tpm><backend type='emulator'>`): swtpm is started before QEMU on `STATE_DIR/NAME/swtpm.sock`
 * (`swtpm.pid`, `swtpm.log`), its state in `STATE_DIR/NAME/swtpm/tpm2` (or `tpm1.2`, or `<source>`'s
 * path); it stops with QEMU, the state stays across stops and starts, and undefine removes the state
 * directory the backend made (recorded in `tpm.json`) unless `persistent_state='yes'` (swtpm.ts).
 */
import { execFile, spawn } from "node:child_process";
import { promises as fs, readFileSync, existsSync, openSync, closeSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { QemuCommand, buildQemuArgv, qemuOptEscape } from "../../qemu/argv";
import { readFirmwareDescriptors } from "./firmware-descriptors";
import { HostMemoryInfo, TASKSET, withCpuAffinity } from "../../qemu/memory-cpu";
import type { ThreadAffinity } from "../../qemu/platform";
import { applyStartupPolicies } from "../../qemu/storage";
import { parseBitmap } from "../../xml/bitmap";
import { ImageError, ImageStamp, copyImage, fileIdentity, removeImage } from "../image";
import { DomainDef } from "../../xml/domain";
import { firstChild, element, getAttr } from "../../xml/tree";
import { randomUuid } from "../../xml/uuid";
import { formatErrorMessage, LibvirtDomainError } from "../../xml/errors";
import { DirectError } from "./direct-error";

export { DirectError, DirectErrorDetails, directFix } from "./direct-error";
import { randomBytes } from "node:crypto";
import type { DomainAddress, DomainBackend, DomainRef, DomainState, LibvirtCapabilities } from "../domain-backend";
import { qmpOnce } from "./qmp";
import {
  autoGraphicsPortCount,
  autoVsockCount,
  fixedGraphicsPorts,
  freeDisplayPorts,
  freeVsockCids,
} from "./free-ports";
import { DirectLock } from "./lock";
import { removeTpmState, startSwtpm, stopSwtpm } from "./swtpm";

/** The URI scheme of the QEMU-direct backend. */
export const DIRECT_SCHEME = "qemu-direct:";

/** True for `qemu-direct://` URIs. */
export function isDirectUri(uri: string): boolean {
  return uri.startsWith(`${DIRECT_SCHEME}//`);
}

/**
 * The directory of a domain's channel sockets (`STATE_DIR/NAME/channel`: the unix sockets of
 * virtio channels written without a path), for a `qemu-direct:` URI; the preview builds with it.
 */
export function directChannelDir(uri: string, name: string): string {
  return path.join(parseDirectUri(uri).stateDir, name, "channel");
}

/** Ignores an EEXIST (a directory made before), rethrows the rest. */
function exists(e: NodeJS.ErrnoException): void {
  if (e.code !== "EEXIST") throw e;
}

/** Parses `qemu-direct:///STATE_DIR?emulator=...`. */
export function parseDirectUri(uri: string): { stateDir: string; emulator?: string } {
  const u = new URL(uri);
  if (u.protocol !== DIRECT_SCHEME || u.host !== "" || !u.pathname.startsWith("/") || u.pathname === "/") {
    throw new DirectError("is not a QEMU-direct URI with an absolute state directory", {
      path: "connection.uri",
      value: uri,
      allowed: "qemu-direct:///ABSOLUTE_STATE_DIR[?emulator=PATH]",
      fix: "write e.g. qemu-direct:///var/lib/pulumi-libvirt-domain/direct",
    });
  }
  return { stateDir: decodeURIComponent(u.pathname), emulator: u.searchParams.get("emulator") ?? undefined };
}

function run(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 60000 }, (err, stdout, stderr) =>
      resolve({ stdout, stderr, code: err ? ((err as { code?: number }).code ?? 1) : 0 }),
    );
  });
}

/** The host's online CPUs as a list (`0-3`), for a thread pinned to no set of its own. */
function onlineHostCpus(): string {
  try {
    return readFileSync("/sys/devices/system/cpu/online", "utf8").trim();
  } catch {
    return `0-${Math.max(0, os.cpus().length - 1)}`;
  }
}

/**
 * Sets the host CPUs of QEMU's vCPU and iothread threads (`<cputune>` vcpupin, iothreadpin; the
 * others get `<vcpu cpuset>` or every online host CPU), as libvirt does once QEMU runs
 * (qemuProcessSetupVcpus, qemuProcessSetupIOThreads): the thread ids come from QMP
 * (query-cpus-fast, query-iothreads), the affinity is set by util-linux `taskset --pid`, an
 * argument array, each run bounded (60 s).
 */
async function pinThreads(name: string, qmp: string, aff: ThreadAffinity): Promise<void> {
  const online = onlineHostCpus();
  const cpus = (await qmpOnce(qmp, "query-cpus-fast")) as { "cpu-index": number; "thread-id": number }[];
  const iothreads = (await qmpOnce(qmp, "query-iothreads")) as { id: string; "thread-id": number }[];
  const threads: { what: string; path: string; tid: number | undefined; list: string }[] = [
    ...Object.entries(aff.vcpus).map(([i, list]) => ({
      what: `vCPU ${i}`,
      path: "/domain/cputune/vcpupin",
      tid: cpus.find((c) => c["cpu-index"] === Number(i))?.["thread-id"],
      list: list ?? online,
    })),
    ...Object.entries(aff.iothreads).map(([id, list]) => ({
      what: id,
      path: "/domain/cputune/iothreadpin",
      tid: iothreads.find((t) => t.id === id)?.["thread-id"],
      list: list ?? online,
    })),
  ];
  for (const t of threads) {
    if (t.tid === undefined)
      throw new DirectError(`internal error: QEMU for ${name} started, but QMP lists no thread for its ${t.what}`, {
        path: t.path,
        fix: "check the <vcpu> and <iothreads> counts, or remove the pin",
      });
    const r = await run(TASKSET, ["--pid", "--cpu-list", t.list, String(t.tid)]);
    if (r.code !== 0)
      throw new DirectError(
        `internal error: QEMU for ${name} started, but pinning its ${t.what} (thread ${t.tid}) to host CPUs ${t.list} failed: ${(r.stderr || r.stdout).trim()}`,
        {
          path: t.path,
          value: t.list,
          fix: `pin to host CPUs this host has online (${online}), and have ${TASKSET} (util-linux) on PATH`,
        },
      );
  }
}

/**
 * A failure of a step that is not a {@link DirectError} (a refused XML, a file error) as one,
 * keeping its reason, details and fix; the original is the cause.
 */
function wrapDirect(e: unknown): DirectError {
  if (LibvirtDomainError.isInstance(e))
    return new DirectError(formatErrorMessage(e.reason, { path: e.path, value: e.value, allowed: e.allowed }), {
      fix: e.fix,
      cause: e,
    });
  return new DirectError((e as Error).message, { cause: e });
}

/** @default bound of a QEMU start: QEMU must have opened its monitor and daemonized within it. */
export const DEFAULT_START_TIMEOUT_MS = 60000;

/** @default bound of each wait of a stop: for QEMU to exit after QMP `quit`, then after SIGKILL. */
export const DEFAULT_STOP_TIMEOUT_MS = 10000;

/** After QEMU daemonized: how long its pid file and monitor socket may take to show. */
const POST_DAEMONIZE_GRACE_MS = 2000;

/** What the builder checks guest memory against on this host (the QEMU-direct backend runs QEMU here). */
export function hostMemoryInfo(): HostMemoryInfo {
  return { hostNumaNodes: hostNumaNodes(), hugetlbfs: hostHugetlbfs() };
}

/**
 * The host's online NUMA nodes (`/sys/devices/system/node/online`, a bitmap such as `0-1`), as
 * libvirt reads them to check `<numatune>` nodesets; undefined where the kernel does not say
 * (QEMU then refuses a node it cannot bind to when it starts).
 */
function hostNumaNodes(): number[] | undefined {
  try {
    return parseBitmap(readFileSync("/sys/devices/system/node/online", "utf8").trim());
  } catch {
    return undefined;
  }
}

/**
 * The host's hugetlbfs mounts (`/proc/mounts`, `pagesize=` of each, else the default) and its
 * default huge page size (`Hugepagesize` of `/proc/meminfo`), as libvirt finds them; undefined
 * when the kernel says nothing (then `<hugepages>` is refused).
 */
function hostHugetlbfs(): HostMemoryInfo["hugetlbfs"] {
  try {
    const def = /^Hugepagesize:\s+(\d+) kB$/m.exec(readFileSync("/proc/meminfo", "utf8"));
    if (!def?.[1]) return undefined;
    const defaultSizeKiB = Number(def[1]);
    const unitKiB: Record<string, number> = { K: 1, M: 1024, G: 1048576 };
    const mounts = readFileSync("/proc/mounts", "utf8")
      .split("\n")
      .map((l) => l.split(" "))
      .filter((f) => f[2] === "hugetlbfs" && f[1] !== undefined)
      .map((f) => {
        const ps = /(?:^|,)pagesize=(\d+)([KMG])?/.exec(f[3] ?? "");
        const sizeKiB = ps?.[1] ? Number(ps[1]) * (unitKiB[ps[2] ?? "K"] ?? 1) : defaultSizeKiB;
        return { sizeKiB, path: f[1]!.replace(/\\040/g, " ") };
      });
    return { mounts, defaultSizeKiB };
  } catch {
    return undefined;
  }
}

/** Options of a {@link QemuDirectBackend}. */
export interface QemuDirectOptions {
  /** How long `start` waits for QEMU to open its monitor and daemonize. @default {@link DEFAULT_START_TIMEOUT_MS} */
  readonly startTimeoutMs?: number;
  /** How long a stop waits for QEMU to exit after QMP `quit`, and again after SIGKILL. @default {@link DEFAULT_STOP_TIMEOUT_MS} */
  readonly stopTimeoutMs?: number;
}

/** SIGKILL to a process group (a detached child leads its own), else to the process. */
function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** The last lines of a log, on one line, for an error message. */
function logTail(file: string): string {
  try {
    return readFileSync(file, "utf8").trim().split("\n").slice(-3).join(" ") || "(empty)";
  } catch {
    return "(no log)";
  }
}

/** QEMU without libvirt. */
export class QemuDirectBackend implements DomainBackend {
  /** The connection URI. */
  public readonly uri: string;
  private readonly stateDir: string;
  private readonly emulator?: string;
  private readonly startTimeoutMs: number;
  private readonly stopTimeoutMs: number;

  /** A backend for `qemu-direct:///STATE_DIR`. */
  constructor(uri: string, options: QemuDirectOptions = {}) {
    this.uri = uri;
    const p = parseDirectUri(uri);
    this.stateDir = p.stateDir;
    this.emulator = p.emulator;
    this.startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    this.stopTimeoutMs = options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
  }

  private dir(name: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(name) || name.includes(".."))
      throw new DirectError(`invalid domain name ${JSON.stringify(name)}`, {
        fix: "use a name of letters, digits and . _ + - (starting with a letter or digit) without '..': it names a directory",
      });
    return path.join(this.stateDir, name);
  }
  private files(name: string) {
    const d = this.dir(name);
    return {
      dir: d,
      xml: path.join(d, "domain.xml"),
      pid: path.join(d, "qemu.pid"),
      qmp: path.join(d, "qmp.sock"),
      log: path.join(d, "qemu.log"),
      nvramStamps: path.join(d, "nvram.json"),
      // the unix sockets of virtio channels without a path (the guest agent's), as libvirt's channel directory
      channels: path.join(d, "channel"),
      // <tpm><backend type='emulator'>: swtpm's socket, pid file, log, default state directory, record (swtpm.ts)
      swtpm: { pid: path.join(d, "swtpm.pid"), log: path.join(d, "swtpm.log"), stamps: path.join(d, "tpm.json") },
      swtpmSock: path.join(d, "swtpm.sock"),
      tpmStateDir: path.join(d, "swtpm"),
    };
  }

  /** Runs `fn` holding the domain's lock (two operations on one domain never race). */
  public async withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    await fs.mkdir(this.stateDir, { recursive: true });
    const lock = new DirectLock(path.join(this.stateDir, `.${name}.lock`));
    await lock.acquire();
    try {
      return await fn();
    } finally {
      await lock.release();
    }
  }

  /** The QEMU binary's version; hwuuid is always native here (we build `-uuid` ourselves). */
  public async probe(): Promise<LibvirtCapabilities> {
    const bin = this.emulator ?? "qemu-system-x86_64";
    const r = await run(bin, ["--version"]);
    const v = /version ([0-9.]+)/.exec(r.stdout)?.[1];
    if (r.code !== 0 || !v)
      throw new DirectError(`cannot run ${bin} --version: ${(r.stderr || r.stdout).trim() || `exit ${r.code}`}`, {
        fix: "install QEMU (qemu-system-x86_64) on the machine that runs Pulumi, or name its binary with ?emulator=PATH in the URI",
      });
    return { libvirtVersion: "none (QEMU direct)", hypervisor: "QEMU", hypervisorVersion: v, hwuuidMode: "native" };
  }

  /** Whether the domain is defined. */
  public async exists(name: string): Promise<boolean> {
    return existsSync(this.files(name).xml);
  }

  /**
   * The name of the domain `ref` addresses. Domains live under their name here (no ids), but a
   * recorded uuid must still be the stored one: otherwise the domain is not the one asked for.
   */
  private async nameOf(ref: DomainAddress): Promise<string> {
    if (typeof ref === "string") return ref;
    if (ref.uuid !== undefined && (await this.storedUuid(ref.name)) !== ref.uuid.toLowerCase())
      throw new DirectError(`failed to get domain '${ref.uuid}'`);
    return ref.name;
  }

  private async storedUuid(name: string): Promise<string | undefined> {
    const f = this.files(name).xml;
    if (!existsSync(f)) return undefined;
    return DomainDef.parse(await fs.readFile(f, "utf8"))
      .childText("uuid")
      ?.toLowerCase();
  }

  /**
   * Defines or redefines. Like libvirt: a missing `<uuid>` gets a new one (an existing domain
   * keeps its own), interfaces without a MAC get one, and the command line must be buildable.
   */
  public async define(xml: string): Promise<void> {
    const def = DomainDef.parse(xml);
    const name = def.name;
    if (!name) throw new DirectError("missing name information", { fix: "give the domain a <name>" });
    const f = this.files(name);
    let current: DomainDef | undefined;
    if (existsSync(f.xml)) current = DomainDef.parse(readFileSync(f.xml, "utf8"));
    const given = def.childText("uuid");
    const have = current?.childText("uuid");
    // As libvirt: a definition without a uuid may not take a name in use.
    if (have && given !== have)
      throw new DirectError(`operation failed: domain '${name}' already exists with uuid ${have}`, {
        fix: `choose another name, or keep the existing domain's <uuid>${have}</uuid>`,
      });
    if (!given) def.setChildText("uuid", have ?? randomUuid());
    assignMacs(def, current);
    // refuses what QEMU cannot be told, and <numatune> nodes this host does not have
    buildQemuArgv(def, {
      qmpSocketPath: f.qmp,
      pidFilePath: f.pid,
      emulator: this.emulator,
      firmware: readFirmwareDescriptors(),
      channelTargetDir: f.channels, // a unix channel without a path (the guest agent's): its socket there
      swtpmSocketPath: f.swtpmSock,
      tpmStateDir: f.tpmStateDir,
      ...hostMemoryInfo(),
    });
    await fs.mkdir(f.dir, { recursive: true, mode: 0o700 });
    const tmp = `${f.xml}.tmp-${process.pid}`;
    await fs.writeFile(tmp, def.format(), { mode: 0o600 });
    await fs.rename(tmp, f.xml);
  }

  /** The domain's definition as stored in `STATE_DIR/NAME/domain.xml` (security info included). */
  public async dumpxmlInactive(ref: DomainAddress): Promise<string> {
    const name = await this.nameOf(ref);
    try {
      return await fs.readFile(this.files(name).xml, "utf8");
    } catch {
      throw new DirectError(`failed to get domain '${name}'`);
    }
  }

  /** The domain's libvirt uuid, from its stored definition. */
  public async domuuid(name: string): Promise<string> {
    return DomainDef.parse(await this.dumpxmlInactive(name)).childText("uuid") ?? "";
  }

  /** The pid of this domain's live QEMU, or undefined (a stale pid file reads as not running). */
  private livePid(name: string): number | undefined {
    const f = this.files(name);
    let pid: number;
    try {
      pid = Number(readFileSync(f.pid, "utf8").trim());
    } catch {
      return undefined;
    }
    if (!Number.isInteger(pid) || pid <= 1) return undefined;
    try {
      // Our QEMU, not a recycled pid: its command line names our QMP socket.
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (!cmdline.includes(f.qmp)) return undefined;
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      if (/\) Z /.test(stat)) return undefined; // a zombie is dead
      return pid;
    } catch {
      return undefined;
    }
  }

  /** `running`, `paused` or `shut off`. */
  public async domstate(ref: DomainAddress): Promise<DomainState> {
    const name = await this.nameOf(ref);
    if (!(await this.exists(name))) throw new DirectError(`failed to get domain '${name}'`);
    if (this.livePid(name) === undefined) return "shut off";
    try {
      const st = (await qmpOnce(this.files(name).qmp, "query-status")) as { status: string };
      return st.status === "paused" || st.status === "prelaunch" ? "paused" : "running";
    } catch {
      return "running";
    }
  }

  /** XML and state, or undefined when not defined (or, with a uuid, when the stored one differs). */
  public async read(ref: DomainAddress): Promise<{ xml: string; state: DomainState } | undefined> {
    const name = typeof ref === "string" ? ref : ref.name;
    if (!(await this.exists(name))) return undefined;
    const xml = await this.dumpxmlInactive(name);
    if (
      typeof ref !== "string" &&
      ref.uuid !== undefined &&
      DomainDef.parse(xml).childText("uuid")?.toLowerCase() !== ref.uuid.toLowerCase()
    )
      return undefined;
    return { xml, state: await this.domstate(name) };
  }

  /**
   * Starts QEMU detached (`-daemonize`), after the swtpm of an emulator TPM; its errors come back
   * as the message. A swtpm started for a QEMU that then failed is stopped again.
   */
  public async start(ref: DomainAddress): Promise<void> {
    const name = await this.nameOf(ref);
    try {
      await this.startQemu(name);
    } catch (e) {
      if (this.livePid(name) === undefined) await this.stopTpm(name).catch(() => undefined);
      throw e;
    }
  }

  /** Stops the domain's swtpm, if one runs (swtpm.ts: it exits by itself once QEMU is gone). */
  private async stopTpm(name: string): Promise<void> {
    const f = this.files(name);
    await stopSwtpm(f.swtpm, f.swtpmSock);
  }

  private async startQemu(name: string): Promise<void> {
    const f = this.files(name);
    if (this.livePid(name) !== undefined) {
      // A QEMU whose guest never ran (prelaunch: started paused with -S, its start interrupted before
      // `cont`; we hold the domain's lock, so no start is under way) is one that start left half set
      // up: it is stopped and started anew. Any other live QEMU is the running domain.
      const status = await qmpOnce(f.qmp, "query-status").then(
        (r) => (r as { status?: string }).status,
        () => undefined,
      );
      if (status !== "prelaunch") throw new DirectError(`Requested operation is not valid: domain is already running`);
      await this.destroy(name);
    }
    const def = DomainDef.parse(await this.dumpxmlInactive(name));
    // <source startupPolicy='optional'> with its image missing: left out or empty, as libvirt does
    applyStartupPolicies(def, (file) => existsSync(file));
    await fs.rm(f.pid, { force: true });
    await fs.rm(f.qmp, { force: true });
    const opts = {
      qmpSocketPath: f.qmp,
      pidFilePath: f.pid,
      emulator: this.emulator,
      daemonize: true,
      secretDir: f.dir,
      nvramDir: f.dir,
      memoryBackingDir: f.dir, // file-backed RAM: QEMU makes an unlinked file here, nothing is left
      firmware: readFirmwareDescriptors(),
      channelTargetDir: f.channels, // a unix channel without a path (the guest agent's): QEMU listens on DIR/TARGET-NAME
      swtpmSocketPath: f.swtpmSock,
      tpmStateDir: f.tpmStateDir,
      // SPICE autoport, never a port another graphics of the domain names (free-ports.ts)
      graphicsPorts: await freeDisplayPorts(autoGraphicsPortCount(def), fixedGraphicsPorts(def)),
      vsockCids: await freeVsockCids(autoVsockCount(def)), // <cid auto='yes'/> (free-ports.ts)
      ...hostMemoryInfo(),
    };
    const built = buildQemuArgv(def, opts);
    // I/O limits, balloon target, thread pins are set before the guest runs, as libvirt does: QEMU
    // starts paused (-S) and is continued once they are set
    const paused =
      (built.blockThrottles ?? []).length > 0 ||
      built.balloonTargetBytes !== undefined ||
      built.threadAffinity !== undefined ||
      built.balloonStatsPeriodSeconds !== undefined;
    const cmd = paused ? buildQemuArgv(def, { ...opts, startPaused: true }) : built;
    await this.prepareNvram(name, cmd);
    if (cmd.argv.some((a) => a.includes(`path=${qemuOptEscape(f.channels)}/`))) {
      await fs.mkdir(f.channels, { mode: 0o700 }).catch(exists);
      if (!(await fs.lstat(f.channels)).isDirectory())
        throw new DirectError(`operation failed: ${f.channels} (the channel sockets of ${name}) is not a directory`, {
          fix: `remove ${f.channels} (a link or file someone put there), then start again`,
        });
    }
    // <tpm><backend type='emulator'>: swtpm runs before QEMU connects to it (swtpm.ts)
    for (const spec of cmd.swtpm)
      await startSwtpm(name, `${name}:${def.childText("uuid") ?? ""}`, spec, f.swtpm, f.dir);
    // Secrets (a VNC password) reach QEMU through files only it and we can read; QEMU reads them
    // while it starts, so they are removed as soon as the daemonized QEMU is up (or failed).
    const logFd = openSync(f.log, "a", 0o600);
    // With -daemonize, QEMU's first process exits once the monitor socket is open and the pid
    // file written: that exit is what we wait for, at most startTimeoutMs.
    const deadline = Date.now() + this.startTimeoutMs;
    const seconds = `${this.startTimeoutMs / 1000} s`;
    try {
      for (const s of cmd.secretFiles) {
        await fs.rm(s.path, { force: true });
        await fs.writeFile(s.path, s.data, { mode: 0o600, flag: "wx" });
      }
      // <vcpu cpuset>: the affinity libvirt sets before exec, set by taskset before it execs QEMU
      const [emulator, ...args] = withCpuAffinity(cmd.argv, cmd.cpuAffinity);
      if (emulator === undefined)
        throw new DirectError(`internal error: the QEMU command line for ${name} is empty (no emulator)`, {
          fix: "report this bug (buildQemuArgv puts the emulator first)",
        });
      const code: number | "timeout" = await new Promise((resolve, reject) => {
        // Its own process group, so that a QEMU that hangs can be killed with all it started.
        const child = spawn(emulator, args, {
          cwd: f.dir,
          env: { ...process.env, ...cmd.env },
          stdio: ["ignore", logFd, logFd],
          detached: true,
        });
        const timer = setTimeout(() => {
          killGroup(child.pid);
          resolve("timeout");
        }, this.startTimeoutMs);
        child.on("error", (e) => {
          clearTimeout(timer);
          if (emulator === TASKSET && (e as NodeJS.ErrnoException).code === "ENOENT")
            reject(
              new DirectError(
                `internal error: cannot start ${name} on host CPUs ${cmd.cpuAffinity}: ${TASKSET} (util-linux) is not on PATH`,
                {
                  path: "/domain/vcpu/@cpuset",
                  fix: `install util-linux (it provides ${TASKSET}), or remove cpuset from <vcpu>`,
                  cause: e,
                },
              ),
            );
          else
            reject(
              new DirectError(`internal error: cannot run the emulator ${emulator} to start ${name}: ${e.message}`, {
                fix: "install QEMU (qemu-system-x86_64) on this host, or name an executable QEMU binary with ?emulator=PATH in the URI",
                cause: e,
              }),
            );
        });
        child.on("exit", (c) => {
          clearTimeout(timer);
          resolve(c ?? 1);
        });
      });
      if (code === "timeout") {
        const stray = this.livePid(name);
        if (stray !== undefined) killGroup(stray);
        throw new DirectError(
          `internal error: QEMU for ${name} did not open its monitor socket ${f.qmp} within ${seconds} (it never daemonized) and was killed; see ${f.log}: ${logTail(f.log)}`,
          { fix: `read ${f.log} for what QEMU waited on; on a slow host raise the start bound (startTimeoutMs)` },
        );
      }
      if (code !== 0) {
        // through taskset, a host CPU set with no usable CPU fails before QEMU runs
        const what =
          cmd.cpuAffinity === undefined ? "QEMU" : `QEMU (started by ${TASKSET} --cpu-list ${cmd.cpuAffinity})`;
        const tail = logTail(f.log);
        const tpm = cmd.swtpm[0];
        throw new DirectError(`internal error: ${what} exited with ${code} while starting ${name}: ${tail}`, {
          fix:
            // QEMU's TPM emulator backend failed on swtpm: its own log says why (a damaged or foreign state)
            tpm && /tpm-emulator/.test(tail)
              ? `read swtpm's log ${f.swtpm.log}: the TPM state ${tpm.state.path} may be damaged or of another TPM version than ${tpm.version}`
              : cmd.cpuAffinity === undefined
                ? `correct what QEMU's message (from ${f.log}) names in the domain XML`
                : `correct what the message (from ${f.log}) names in the domain XML; <vcpu cpuset> must name host CPUs that are online`,
        });
      }
    } finally {
      closeSync(logFd);
      for (const s of cmd.secretFiles) await fs.rm(s.path, { force: true });
    }
    // Both exist once the daemonizing process has exited; a short grace covers a slow file system.
    const graceMs = Math.max(0, Math.min(deadline - Date.now(), POST_DAEMONIZE_GRACE_MS));
    const graceEnd = Date.now() + graceMs;
    while (this.livePid(name) === undefined || !existsSync(f.qmp)) {
      if (Date.now() >= graceEnd) {
        throw new DirectError(
          `internal error: QEMU for ${name} exited 0 but left no live QEMU with its pid file ${f.pid} and monitor socket ${f.qmp} (waited ${graceMs / 1000} s more); see ${f.log}: ${logTail(f.log)}`,
          { fix: `read ${f.log}: QEMU stopped right after it daemonized` },
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    try {
      await this.setUpLaunched(name, cmd, paused);
    } catch (e) {
      // libvirt stops a QEMU whose setup after launch failed (qemuProcessStop): none is left paused
      // and never continued, without its limits or pins, or running while its start is reported failed
      const err = DirectError.isInstance(e) ? e : wrapDirect(e);
      let stopped = "QEMU was stopped again";
      try {
        await this.destroy(name);
        const stray = this.livePid(name);
        if (stray !== undefined) stopped = `stopping QEMU (pid ${stray}) failed: it still runs; kill it by hand`;
      } catch (s) {
        stopped = `stopping QEMU again failed too: ${(s as Error).message}`;
      }
      throw new DirectError(`${err.reason}; ${stopped}`, {
        path: err.path,
        value: err.value,
        allowed: err.allowed,
        fix: err.fix,
        cause: e,
      });
    }
  }

  /**
   * What libvirt sets over QMP once QEMU runs and before the guest does: the disks' I/O limits, the
   * balloon target, the threads' host CPUs, the balloon statistics period; then `cont` of a QEMU
   * started paused. A failure throws; the caller stops QEMU.
   */
  private async setUpLaunched(name: string, cmd: QemuCommand, paused: boolean): Promise<void> {
    const f = this.files(name);
    // <iotune>: the disks' I/O limits libvirt sets over QMP once QEMU runs (qemuProcessSetupDiskThrottling)
    for (const t of cmd.blockThrottles ?? []) {
      try {
        await qmpOnce(f.qmp, "block_set_io_throttle", { ...t.args });
      } catch (e) {
        throw new DirectError(
          `internal error: QEMU for ${name} started, but setting the I/O limits (<iotune>) of ${t.path} failed: ${(e as Error).message}`,
          {
            path: `${t.path}/iotune`,
            fix: "correct the <iotune> limits QEMU's message names, or remove <iotune>",
            cause: e,
          },
        );
      }
    }
    // <currentMemory> below <memory>: the balloon target libvirt sets over QMP once QEMU runs
    if (cmd.balloonTargetBytes !== undefined) {
      try {
        await qmpOnce(f.qmp, "balloon", { value: cmd.balloonTargetBytes });
      } catch (e) {
        throw new DirectError(
          `internal error: QEMU for ${name} started, but setting its balloon target (<currentMemory>) to ${cmd.balloonTargetBytes} bytes failed: ${(e as Error).message}`,
          {
            path: "/domain/currentMemory",
            fix: "check the <memballoon> device, or make <currentMemory> equal to <memory>",
            cause: e,
          },
        );
      }
    }
    // <cputune> vcpupin/iothreadpin: each thread's host CPUs, set once QEMU runs as libvirt sets them
    if (cmd.threadAffinity !== undefined) await pinThreads(name, f.qmp, cmd.threadAffinity);
    // <memballoon><stats period>: the statistics polling period libvirt sets over QMP once QEMU runs
    if (cmd.balloonStatsPeriodSeconds !== undefined) {
      try {
        await qmpOnce(f.qmp, "qom-set", {
          path: "/machine/peripheral/balloon0",
          property: "guest-stats-polling-interval",
          value: cmd.balloonStatsPeriodSeconds,
        });
      } catch (e) {
        throw new DirectError(
          `internal error: QEMU for ${name} started, but setting its balloon statistics period (<memballoon><stats period>) to ${cmd.balloonStatsPeriodSeconds} s failed: ${(e as Error).message}`,
          {
            path: "/domain/devices/memballoon[1]/stats/@period",
            fix: "check the <memballoon model='virtio'> device, or remove <stats>",
            cause: e,
          },
        );
      }
    }
    // the guest runs only now, with all of the above set (libvirt continues its -S QEMU last)
    if (paused)
      try {
        await qmpOnce(f.qmp, "cont");
      } catch (e) {
        throw new DirectError(
          `internal error: QEMU for ${name} started paused (-S) for its set-up, but continuing it (QMP cont) failed: ${(e as Error).message}`,
          { fix: `read ${f.log}, then start the domain again`, cause: e },
        );
      }
  }

  /** The NVRAM stamps recorded for `name` (files this backend made); empty when none. */
  private async nvramStamps(name: string): Promise<ImageStamp[]> {
    try {
      return JSON.parse(await fs.readFile(this.files(name).nvramStamps, "utf8")) as ImageStamp[];
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw new DirectError(
        `cannot read ${this.files(name).nvramStamps} (the NVRAM files this backend made for ${name}): ${(e as Error).message}`,
        { fix: "restore it, or remove it and the NVRAM files it names by hand", cause: e },
      );
    }
  }

  /**
   * A read-only pflash loader needs its NVRAM file before QEMU starts: an existing one is used;
   * a missing one is copied from the `<nvram template>` (never over a file) and its stamp
   * recorded, so that undefine removes it only while it is still ours.
   */
  private async prepareNvram(name: string, cmd: QemuCommand): Promise<void> {
    const f = this.files(name);
    const nv = cmd.firmwareNvram;
    if (!nv) return;
    const target = nv.path;
    if (await fileIdentity(target)) return;
    if (nv.template && nv.templateFormat !== undefined && nv.templateFormat !== nv.format)
      throw new DirectError(
        `Operation not supported: conversion of the nvram template to another target format is not supported (${nv.template} is ${nv.templateFormat}, the NVRAM ${target} of ${name} ${nv.format})`,
        {
          path: "/domain/os/nvram/@format",
          value: nv.format,
          fix: `write <nvram format='${nv.templateFormat}'>, or create ${target} yourself`,
        },
      );
    if (!nv.template)
      throw new DirectError(
        `operation failed: the NVRAM file ${target} of ${name} does not exist and <nvram> names no template to make it from`,
        {
          path: "/domain/os/nvram/@template",
          fix: `write <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'> (the variables that match the loader), or create ${target}`,
        },
      );
    let stamp: ImageStamp;
    try {
      stamp = await copyImage(target, nv.template);
    } catch (e) {
      if (ImageError.isInstance(e))
        throw new DirectError(
          `operation failed: cannot make the NVRAM ${target} of ${name} from the template ${nv.template}: ${e.reason}`,
          { path: "/domain/os/nvram", fix: e.fix ?? `check ${nv.template} and ${path.dirname(target)}`, cause: e },
        );
      throw e;
    }
    try {
      const stamps = [...(await this.nvramStamps(name)).filter((s) => s.path !== target), stamp];
      const tmp = `${f.nvramStamps}.tmp-${process.pid}`;
      await fs.writeFile(tmp, JSON.stringify(stamps), { mode: 0o600 });
      await fs.rename(tmp, f.nvramStamps);
    } catch (e) {
      await removeImage(stamp).catch(() => undefined);
      throw new DirectError(
        `operation failed: cannot record the NVRAM ${target} of ${name} in ${f.nvramStamps}: ${(e as Error).message}; it was removed again`,
        { fix: `check that ${f.dir} is writable`, cause: e },
      );
    }
  }

  /** Defines, starts if asked, reads back. */
  public async defineStartRead(
    xml: string,
    _uuid: string,
    start: boolean,
  ): Promise<{ xml: string; state: DomainState }> {
    const step = async (name: string, f: () => Promise<void>) => {
      try {
        await f();
      } catch (e) {
        const err = DirectError.isInstance(e) ? e : wrapDirect(e);
        err.step = name;
        throw err;
      }
    };
    await step("define", () => this.define(xml));
    const name = DomainDef.parse(xml).name!;
    if (start) await step("start", () => this.start(name));
    return (await this.read(name))!;
  }

  /** Stops and undefines, if the domain still has this uuid. */
  public async destroyAndUndefineByUuid(uuid: string, name: string): Promise<void> {
    if (!(await this.exists(name)) || (await this.domuuid(name)) !== uuid) return;
    await this.destroyAndUndefine(name);
  }

  /** Stops at once (if running) and undefines. */
  public async destroyAndUndefine(ref: DomainAddress): Promise<void> {
    const name = await this.nameOf(ref);
    await this.destroy(name);
    await this.undefine(name);
  }

  /** Reads the domain with this uuid, lets `judge` decide (it throws to refuse), then stops and undefines it (the caller holds the lock). */
  public async destroyAndUndefineIf(
    ref: DomainRef & { readonly uuid: string },
    judge: (r: { xml: string; state: DomainState }) => "remove" | "gone",
  ): Promise<"removed" | "gone"> {
    const r = await this.read(ref);
    if (!r || judge(r) === "gone") return "gone";
    await this.destroyAndUndefine(ref);
    return "removed";
  }

  /** Stops at once: QMP `quit`, else SIGKILL. */
  public async destroy(ref: DomainAddress): Promise<void> {
    const name = await this.nameOf(ref);
    const pid = this.livePid(name);
    if (pid === undefined) return;
    const kill = () => {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    };
    await qmpOnce(this.files(name).qmp, "quit").catch(kill);
    if (!(await this.waitGone(name, this.stopTimeoutMs))) {
      kill();
      // its pid file stays while it lives: removing it would read a live QEMU as shut off (and a start would run a second one)
      if (!(await this.waitGone(name, this.stopTimeoutMs)))
        throw new DirectError(
          `internal error: QEMU for ${name} (pid ${pid}) did not exit within ${this.stopTimeoutMs / 1000} s of QMP quit and ${this.stopTimeoutMs / 1000} s of SIGKILL`,
          {
            fix: `it is hung in the kernel (see /proc/${pid}/stack and /proc/${pid}/wchan: often a storage it waits on); once it has exited, retry`,
          },
        );
    }
    await fs.rm(this.files(name).pid, { force: true });
    await this.stopTpm(name);
  }

  private async waitGone(name: string, ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (this.livePid(name) === undefined) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return this.livePid(name) === undefined;
  }

  /**
   * Graceful stop: QMP `system_powerdown`, pressed again every 2 s (a guest still booting loses
   * a press, and nothing tells the provider when it is ready), wait up to the timeout, then `quit`.
   */
  public async shutdown(ref: DomainAddress, timeoutSeconds: number): Promise<"shutdown" | "destroyed" | "not-running"> {
    const name = await this.nameOf(ref);
    if (this.livePid(name) === undefined) return "not-running";
    if (timeoutSeconds > 0) {
      const deadline = Date.now() + timeoutSeconds * 1000;
      while (Date.now() < deadline) {
        await qmpOnce(this.files(name).qmp, "system_powerdown").catch(() => undefined);
        if (await this.waitGone(name, Math.min(2000, Math.max(0, deadline - Date.now())))) {
          await fs.rm(this.files(name).pid, { force: true });
          await this.stopTpm(name);
          return "shutdown";
        }
      }
    }
    await this.destroy(name);
    return "destroyed";
  }

  /**
   * Removes the domain: the files this backend wrote (XML, pid, socket, log, a define's leftover
   * temporary XML, the NVRAM files it made while each is still the one it made), then the
   * directory if nothing else is in it; the domain's swtpm files and the TPM state it made (not with
   * `persistent_state='yes'`). Anything else there (a user's disk image, a serial log
   * the XML names, an NVRAM file someone else put at the path) stays, and so does the directory
   * holding it.
   */
  public async undefine(ref: DomainAddress): Promise<void> {
    const name = await this.nameOf(ref);
    if (this.livePid(name) !== undefined)
      throw new DirectError(`Requested operation is not valid: cannot undefine a running domain`);
    if (!(await this.exists(name))) throw new DirectError(`failed to get domain '${name}'`);
    const f = this.files(name);
    for (const s of await this.nvramStamps(name)) await removeImage(s);
    // the TPM state the backend made, unless <backend persistent_state='yes'> (swtpm.ts)
    const tpm = DomainDef.parse(await fs.readFile(f.xml, "utf8")).deviceElements("tpm")[0];
    await this.stopTpm(name);
    await removeTpmState(
      f.swtpm,
      getAttr(tpm && firstChild(tpm, "backend"), "persistent_state") === "yes",
      f.tpmStateDir,
    );
    const leftovers = (await fs.readdir(f.dir))
      .filter((e) => /^(domain\.xml|nvram\.json|tpm\.json)\.tmp-[0-9]+$/.test(e))
      .map((e) => path.join(f.dir, e));
    for (const file of [f.pid, f.qmp, f.log, f.nvramStamps, f.swtpm.pid, f.swtpm.log, f.swtpmSock, ...leftovers, f.xml])
      await fs.rm(file, { force: true });
    // the channel sockets QEMU left (it removes them when it quits; not when killed), and their directory
    // (only a real directory: never through a link to someone else's)
    if ((await fs.lstat(f.channels).catch(() => undefined))?.isDirectory()) {
      const sockets = await fs.readdir(f.channels, { withFileTypes: true }).catch(() => []);
      for (const e of sockets) if (e.isSocket()) await fs.rm(path.join(f.channels, e.name), { force: true });
      await fs.rmdir(f.channels).catch(() => undefined);
    }
    await fs.rmdir(f.dir).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "ENOTEMPTY" && e.code !== "EEXIST" && e.code !== "ENOENT") throw e;
    });
  }

  /** QMP `query-uuid`. */
  public async queryGuestUuid(ref: DomainAddress): Promise<string> {
    const name = await this.nameOf(ref);
    if (this.livePid(name) === undefined)
      throw new DirectError(`Requested operation is not valid: domain is not running`);
    return ((await qmpOnce(this.files(name).qmp, "query-uuid")) as { UUID: string }).UUID;
  }

  /** The stored XML and whether QEMU runs, synchronously (a program reading a template). */
  public readSync(name: string): { xml: string; state: DomainState } | undefined {
    const f = this.files(name);
    if (!existsSync(f.xml)) return undefined;
    return { xml: readFileSync(f.xml, "utf8"), state: this.livePid(name) === undefined ? "shut off" : "running" };
  }

  /** Defined domains. */
  public async listNames(): Promise<string[]> {
    const entries = await fs.readdir(this.stateDir, { withFileTypes: true }).catch(() => []);
    return entries
      .filter((e) => e.isDirectory() && existsSync(path.join(this.stateDir, e.name, "domain.xml")))
      .map((e) => e.name)
      .sort();
  }
}

/** Gives interfaces without a MAC one: the current definition's, else a random 52:54:00 one. */
function assignMacs(def: DomainDef, current: DomainDef | undefined): void {
  const old = current ? current.deviceElements("interface").map((n) => getAttr(firstChild(n, "mac"), "address")) : [];
  def.deviceElements("interface").forEach((nic, i) => {
    if (getAttr(firstChild(nic, "mac"), "address")) return;
    const mac = old[i] ?? `52:54:00:${[...randomBytes(3)].map((b) => b.toString(16).padStart(2, "0")).join(":")}`;
    nic.children.unshift(element("mac", { address: mac }));
  });
}
