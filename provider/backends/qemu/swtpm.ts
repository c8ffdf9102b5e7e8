/**
 * swtpm for the QEMU-direct backend: the job libvirt's qemu_tpm.c does for `<tpm><backend
 * type='emulator'>`. Before QEMU starts, swtpm is started detached on the domain's control socket
 * (`swtpm socket --ctrl type=unixio,path=SOCK --tpmstate dir=STATE --terminate --daemon [--tpm2]`),
 * and QEMU connects to that socket (provider/qemu/tpm.ts builds its side). `--terminate` makes
 * swtpm exit when QEMU's connection ends (QEMU stopped, killed or powered off); the backend still
 * waits for its end (and stops it if need be) after QEMU is gone, and before a new start, finding it
 * by its control socket. Every wait is bounded and its message names what it waited for.
 *
 * A new TPM is made first as libvirt makes it (qemuTPMEmulatorRunSetup): `swtpm_setup --tpm-state
 * STATE --vmid NAME:UUID --createek --create-ek-cert --create-platform-cert --lock-nvram
 * --not-overwrite` (endorsement key and its certificate from swtpm's local CA, platform
 * certificate); `<active_pcr_banks>` are set before every start (`--pcr-banks ... --reconfigure`),
 * the new TPM included, as libvirt does (the libvirt 12.x oracle of test/lab/direct-tpm.test.ts).
 *
 * The TPM state (the guest's keys) is the domain's persistent state: kept across stops and
 * starts. A state directory this backend made is recorded (`tpm.json`: path, device, inode, birth
 * time) and removed at undefine only while it is still that directory, and never with
 * `persistent_state='yes'`; a directory or file that already existed (`<source>`) is the user's.
 */
import { execFile, spawn } from "node:child_process";
import { promises as fs, existsSync, readFileSync, readdirSync } from "node:fs";
import * as path from "node:path";
import type { SwtpmSpec } from "../../qemu/tpm";
import { FileIdentity, fileIdentity } from "../image";
import { DirectError } from "./direct-error";

/** The swtpm binary (Debian package `swtpm`), found on PATH. */
export const SWTPM = "swtpm";

/** How long swtpm may take to daemonize, and then to show its control socket. */
export const SWTPM_START_TIMEOUT_MS = 10000;

/** The TPM manufacturing tool (Debian package `swtpm-tools`), found on PATH. */
export const SWTPM_SETUP = "swtpm_setup";

/** How long swtpm_setup may take to make a TPM (it generates the endorsement keys). */
export const SWTPM_SETUP_TIMEOUT_MS = 60000;

/** How long a swtpm may take to exit once QEMU is gone, before SIGTERM (then SIGKILL). */
const SWTPM_STOP_GRACE_MS = 5000;

/** The files of one domain's swtpm. */
export interface SwtpmFiles {
  /** swtpm's pid file (`--pid file=`). */
  readonly pid: string;
  /** swtpm's log (`--log file=`). */
  readonly log: string;
  /** The record of the state directories the backend made (`tpm.json`). */
  readonly stamps: string;
}

/** A state directory the backend made: its path and identity. */
export interface TpmStateStamp extends FileIdentity {
  readonly path: string;
}

/** The arguments swtpm is started with (an argument array: no shell). */
export function swtpmArgs(spec: SwtpmSpec, files: SwtpmFiles): string[] {
  for (const p of [spec.socketPath, spec.state.path, files.pid, files.log])
    if (p.includes(","))
      throw new DirectError(`swtpm cannot be given the path ${JSON.stringify(p)}: it holds a comma`, {
        path: spec.path,
        value: p,
        fix: "use a state directory and a TPM <source> path without commas (swtpm's options are comma-separated)",
      });
  const state =
    spec.state.type === "dir" ? `dir=${spec.state.path},mode=0600` : `backend-uri=file://${spec.state.path}`;
  return [
    "socket",
    "--ctrl",
    `type=unixio,path=${spec.socketPath},mode=0600`,
    "--tpmstate",
    state,
    "--log",
    `file=${files.log}${spec.logLevel !== undefined ? `,level=${spec.logLevel}` : ""}`,
    "--pid",
    `file=${files.pid}`,
    "--terminate",
    "--daemon",
    ...(spec.version === "2.0" ? ["--tpm2"] : []),
  ];
}

/** Where swtpm_setup is told the state is: a directory, or `file://PATH` for a state file. */
function setupState(spec: SwtpmSpec): string {
  return spec.state.type === "dir" ? spec.state.path : `file://${spec.state.path}`;
}

/**
 * The arguments swtpm_setup makes a new TPM with (libvirt's): endorsement key and certificates,
 * NVRAM locked, never over an existing state; `vmid` is `NAME:UUID`.
 */
export function swtpmSetupArgs(spec: SwtpmSpec, vmid: string, log: string): string[] {
  return [
    ...(spec.version === "2.0" ? ["--tpm2"] : []),
    "--tpm-state",
    setupState(spec),
    "--vmid",
    vmid,
    "--logfile",
    log,
    "--createek",
    "--create-ek-cert",
    "--create-platform-cert",
    "--lock-nvram",
    "--not-overwrite",
  ];
}

/** The arguments that set the PCR banks of an existing TPM 2.0 again before a start (libvirt's `--reconfigure`). */
export function swtpmReconfigureArgs(spec: SwtpmSpec, log: string): string[] {
  return [
    "--tpm2",
    "--tpm-state",
    setupState(spec),
    "--logfile",
    log,
    "--pcr-banks",
    (spec.pcrBanks ?? []).join(","),
    "--reconfigure",
  ];
}

/** Whether the state holds a TPM already (swtpm's `tpm2-00.permall` / `tpm-00.permall`, or a non-empty state file). */
async function hasTpm(spec: SwtpmSpec): Promise<boolean> {
  if (spec.state.type === "file") return ((await fileIdentity(spec.state.path))?.sizeBytes ?? 0) > 0;
  const permall = spec.version === "2.0" ? "tpm2-00.permall" : "tpm-00.permall";
  return (await fileIdentity(path.join(spec.state.path, permall))) !== undefined;
}

/** Runs swtpm_setup (bounded by {@link SWTPM_SETUP_TIMEOUT_MS}); a failure names its log and the fix. */
function runSetup(name: string, spec: SwtpmSpec, files: SwtpmFiles, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(SWTPM_SETUP, args, { timeout: SWTPM_SETUP_TIMEOUT_MS, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
      if (!err) return resolve();
      const e = err as NodeJS.ErrnoException & { killed?: boolean };
      if (e.code === "ENOENT")
        return reject(
          new DirectError(`internal error: cannot make the TPM of ${name}: ${SWTPM_SETUP} is not on PATH`, {
            path: spec.path,
            fix: "install swtpm-tools (Debian/Ubuntu: apt-get install swtpm-tools), or remove the <tpm> device",
            cause: err,
          }),
        );
      const what = e.killed
        ? `did not finish within ${SWTPM_SETUP_TIMEOUT_MS / 1000} s and was killed`
        : `failed: ${(stderr || stdout).trim().split("\n").slice(-3).join(" ") || e.message}`;
      reject(
        new DirectError(`internal error: ${SWTPM_SETUP} ${args.join(" ")} for the TPM of ${name} ${what}`, {
          path: spec.path,
          fix: `read ${files.log}; as a user other than root, make swtpm_setup's own configuration once (swtpm_setup --create-config-files)`,
          cause: err,
        }),
      );
    });
  });
}

/**
 * The live swtpm processes serving `socketPath`: those whose command line names the socket (its
 * pid file is only a hint: swtpm removes it while it is still exiting, saving the TPM's state).
 * A zombie is dead.
 */
export function swtpmPids(socketPath: string): number[] {
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return pids;
  }
  for (const p of entries) {
    if (!/^[0-9]+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0");
      if (path.basename(argv[0] ?? "") !== SWTPM || !argv.includes(`type=unixio,path=${socketPath},mode=0600`))
        continue;
      if (/\) Z /.test(readFileSync(`/proc/${p}/stat`, "utf8"))) continue;
      pids.push(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** The pid of a live swtpm serving `socketPath`, or undefined. */
export function liveSwtpmPid(socketPath: string): number | undefined {
  return swtpmPids(socketPath)[0];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(test: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!test()) {
    if (Date.now() >= end) return false;
    await sleep(50);
  }
  return true;
}

/**
 * Stops the domain's swtpm if it still runs: it exits by itself once QEMU's connection ends
 * (`--terminate`), so it is given {@link SWTPM_STOP_GRACE_MS}, then SIGTERM, then SIGKILL.
 */
export async function stopSwtpm(files: SwtpmFiles, socketPath: string): Promise<void> {
  const live = () => swtpmPids(socketPath).length > 0;
  for (const signal of [undefined, "SIGTERM", "SIGKILL"] as const) {
    if (!live()) break;
    if (signal)
      for (const pid of swtpmPids(socketPath)) {
        try {
          process.kill(pid, signal);
        } catch {
          // already gone
        }
      }
    if (await waitUntil(() => !live(), SWTPM_STOP_GRACE_MS)) break;
  }
  const [stray] = swtpmPids(socketPath);
  if (stray !== undefined)
    throw new DirectError(`internal error: swtpm (pid ${stray}) on ${socketPath} did not exit after SIGKILL`, {
      fix: `kill it by hand (kill -9 ${stray}) and retry`,
    });
  await fs.rm(files.pid, { force: true });
  await fs.rm(socketPath, { force: true });
}

/** The state directories recorded as made by the backend. */
async function readStamps(files: SwtpmFiles): Promise<TpmStateStamp[]> {
  try {
    return JSON.parse(await fs.readFile(files.stamps, "utf8")) as TpmStateStamp[];
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new DirectError(`cannot read ${files.stamps} (the TPM state this backend made): ${(e as Error).message}`, {
      fix: "restore it, or remove it and the TPM state directories it names by hand",
      cause: e,
    });
  }
}

/** Makes a missing state directory (mode 0700) and records it as ours. */
async function prepareState(spec: SwtpmSpec, files: SwtpmFiles): Promise<void> {
  if (spec.state.type !== "dir") {
    await fs.mkdir(path.dirname(spec.state.path), { recursive: true, mode: 0o700 });
    return;
  }
  const dir = spec.state.path;
  if (await fileIdentity(dir)) return; // the guest's TPM as it is: never made anew
  await fs.mkdir(path.dirname(dir), { recursive: true, mode: 0o700 });
  await fs.mkdir(dir, { mode: 0o700 });
  const id = await fileIdentity(dir);
  if (!id)
    throw new DirectError(`cannot make the TPM state directory ${dir}`, {
      path: spec.path,
      fix: `check ${path.dirname(dir)}`,
    });
  const stamps = [...(await readStamps(files)).filter((s) => s.path !== dir), { path: dir, ...id }];
  const tmp = `${files.stamps}.tmp-${process.pid}`;
  await fs.writeFile(tmp, JSON.stringify(stamps), { mode: 0o600 });
  await fs.rename(tmp, files.stamps);
}

/**
 * Starts swtpm for one emulator TPM and returns once its control socket is there (bounded by
 * {@link SWTPM_START_TIMEOUT_MS}); a swtpm left from an earlier start is stopped first.
 * @param name the domain, for messages
 * @param vmid `NAME:UUID`, swtpm_setup's name of the TPM's machine (in its certificates)
 * @param cwd where swtpm runs (the domain's directory)
 */
export async function startSwtpm(
  name: string,
  vmid: string,
  spec: SwtpmSpec,
  files: SwtpmFiles,
  cwd: string,
): Promise<void> {
  await stopSwtpm(files, spec.socketPath);
  await prepareState(spec, files);
  // a new TPM is made as libvirt makes it; an existing one (the guest's keys) is used as it is
  if (!(await hasTpm(spec))) await runSetup(name, spec, files, swtpmSetupArgs(spec, vmid, files.log));
  // libvirt makes the TPM with swtpm_setup's default banks, then sets <active_pcr_banks> before every start
  if (spec.pcrBanks) await runSetup(name, spec, files, swtpmReconfigureArgs(spec, files.log));
  const args = swtpmArgs(spec, files);
  const seconds = `${SWTPM_START_TIMEOUT_MS / 1000} s`;
  const code: number | "timeout" = await new Promise((resolve, reject) => {
    const child = spawn(SWTPM, args, { cwd, stdio: ["ignore", "ignore", "pipe"], detached: true });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // gone
      }
      resolve("timeout");
    }, SWTPM_START_TIMEOUT_MS);
    child.on("error", (e) => {
      clearTimeout(timer);
      if ((e as NodeJS.ErrnoException).code === "ENOENT")
        reject(
          new DirectError(`internal error: cannot start the TPM of ${name}: ${SWTPM} is not on PATH`, {
            path: spec.path,
            fix: "install swtpm (Debian/Ubuntu: apt-get install swtpm), or remove the <tpm> device",
            cause: e,
          }),
        );
      else
        reject(
          new DirectError(`internal error: cannot start the TPM of ${name}: cannot run ${SWTPM}: ${e.message}`, {
            path: spec.path,
            fix: `make the ${SWTPM} on PATH an executable swtpm (Debian/Ubuntu: apt-get install --reinstall swtpm), or remove the <tpm> device`,
            cause: e,
          }),
        );
    });
    child.on("exit", (c) => {
      clearTimeout(timer);
      // the daemonizing parent exits once the sockets are set up; its stderr has swtpm's complaint
      if (c !== 0)
        reject(swtpmFailed(name, spec, files, `exited with ${c ?? "a signal"}: ${stderr.trim() || "(no message)"}`));
      else resolve(0);
    });
  });
  if (code === "timeout") throw swtpmFailed(name, spec, files, `did not daemonize within ${seconds} and was killed`);
  const up = () => liveSwtpmPid(spec.socketPath) !== undefined && existsSync(spec.socketPath);
  if (!(await waitUntil(up, SWTPM_START_TIMEOUT_MS))) {
    await stopSwtpm(files, spec.socketPath).catch(() => undefined);
    throw swtpmFailed(
      name,
      spec,
      files,
      `left no live swtpm on its control socket ${spec.socketPath} within ${seconds}`,
    );
  }
}

function swtpmFailed(name: string, spec: SwtpmSpec, files: SwtpmFiles, what: string): DirectError {
  let log = "";
  try {
    log = readFileSync(files.log, "utf8").trim().split("\n").slice(-3).join(" ");
  } catch {
    // no log
  }
  return new DirectError(
    `internal error: swtpm for the TPM of ${name} (state ${spec.state.path}, socket ${spec.socketPath}) ${what}${log ? `; ${files.log}: ${log}` : ""}`,
    {
      path: spec.path,
      fix: `read ${files.log}; check that ${spec.state.path} is a TPM ${spec.version} state swtpm can use`,
    },
  );
}

/**
 * At undefine: removes the state directories the backend made while each is still the one it
 * made (same device, inode and birth time), unless `persistentState`; then the record.
 * @param defaultDir the backend's default state directory (`DOMAIN_DIR/swtpm`), removed when emptied
 */
export async function removeTpmState(files: SwtpmFiles, persistentState: boolean, defaultDir: string): Promise<void> {
  if (!persistentState)
    for (const s of await readStamps(files)) {
      const now = await fileIdentity(s.path);
      if (now && now.device === s.device && now.inode === s.inode && now.birthtimeNs === s.birthtimeNs) {
        await fs.rm(s.path, { recursive: true, force: true });
        // its parent, when it is the backend's default directory (DOMAIN_DIR/swtpm) and now empty
        if (path.dirname(s.path) === defaultDir) await fs.rmdir(defaultDir).catch(() => undefined);
      }
    }
  await fs.rm(files.stamps, { force: true });
}
