/**
 * The virsh backend: everything the Domain resource does to libvirt, through `virsh` processes
 * with argument arrays. Several commands share one virsh process where that saves a process
 * start (`;`-separated, each command its own argv element, quoted for virsh's own parser).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runVirsh, VirshError, VirshRunOptions } from "./exec";

/** How the guest-visible hwuuid is carried: libvirt's `<hwuuid>` or the `<qemu:commandline>` `-uuid` passthrough. */
export type HwuuidMode = "native" | "passthrough";

/** What a connection offers. */
export interface LibvirtCapabilities {
  /** The daemon's libvirt version, e.g. `12.9.0`. */
  readonly libvirtVersion: string;
  /** The hypervisor driver name as virsh reports it (`QEMU`, `Test`, ...). */
  readonly hypervisor: string;
  /** The hypervisor version (QEMU's), e.g. `11.1.3`. */
  readonly hypervisorVersion: string;
  /** The best hwuuid mode this connection supports, or undefined when none. */
  readonly hwuuidMode: HwuuidMode | undefined;
  /** Why no hwuuid mode is available, when none is. */
  readonly hwuuidUnsupportedReason?: string;
}

/** The first libvirt release with `<hwuuid>`. */
export const HWUUID_MIN_LIBVIRT = "11.7.0";

/** Compares dotted versions numerically. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/** Parses `virsh version --daemon` output. */
export function parseVersionOutput(out: string): Omit<LibvirtCapabilities, "hwuuidMode" | "hwuuidUnsupportedReason"> {
  const daemon = /Running against daemon:\s*([0-9.]+)/.exec(out)?.[1] ?? /Using library: libvirt ([0-9.]+)/.exec(out)?.[1] ?? "0";
  const hv = /Running hypervisor:\s*(\S+)\s+([0-9.]+)/.exec(out);
  return { libvirtVersion: daemon, hypervisor: hv?.[1] ?? "unknown", hypervisorVersion: hv?.[2] ?? "0" };
}

/** Decides the hwuuid mode from the versions. */
export function hwuuidModeFor(caps: Omit<LibvirtCapabilities, "hwuuidMode" | "hwuuidUnsupportedReason">): Pick<LibvirtCapabilities, "hwuuidMode" | "hwuuidUnsupportedReason"> {
  if (compareVersions(caps.libvirtVersion, HWUUID_MIN_LIBVIRT) >= 0) return { hwuuidMode: "native" };
  if (caps.hypervisor === "QEMU") return { hwuuidMode: "passthrough" };
  return {
    hwuuidMode: undefined,
    hwuuidUnsupportedReason: `libvirt ${caps.libvirtVersion} with the ${caps.hypervisor} driver has neither <hwuuid> (libvirt >= ${HWUUID_MIN_LIBVIRT}) nor the QEMU command-line passthrough`,
  };
}

/** A domain's power state as `virsh domstate` names it. */
export type DomainState = "running" | "shut off" | "paused" | "blocked" | "in shutdown" | "crashed" | "pmsuspended" | "idle";

/**
 * Quotes one argument for virsh's own command parser (used inside `;`-joined batches). Inside
 * single quotes virsh takes every character literally (backslashes too); a quote is closed,
 * escaped and reopened.
 */
export function virshQuote(arg: string): string {
  if (/^[A-Za-z0-9_./:=,+@%-]+$/.test(arg)) return arg;
  return "'" + arg.replace(/'/g, "'\\''") + "'";
}

/**
 * virsh's `error:` lines, less those `tolerate` excuses: a tolerated cause excuses itself and
 * the "Failed to ..." line virsh prints just before it.
 */
export function unexcusedErrors(stderr: string, tolerate?: RegExp): string[] {
  const lines = stderr.split("\n").filter((l) => l.startsWith("error: "));
  const excused = new Set<number>();
  lines.forEach((l, i) => {
    if (tolerate && tolerate.test(l)) {
      excused.add(i);
      if (i > 0 && /^error: Failed to /i.test(lines[i - 1])) excused.add(i - 1);
    }
  });
  return lines.filter((_, i) => !excused.has(i));
}

/** Splits `domstate` + `dumpxml` output (`start` may print before them). */
function splitStateAndXml(out: string): { xml: string; state: DomainState } {
  const at = out.indexOf("<domain");
  const head = out.slice(0, at).trim().split("\n");
  return { state: head[head.length - 1].trim() as DomainState, xml: out.slice(at) };
}

/** A read waiting for its turn's batch. */
interface PendingRead {
  name: string;
  resolve: (r: { xml: string; state: DomainState } | undefined) => void;
  reject: (e: unknown) => void;
}

/** Per-process queue of reads to send together, by connection URI. */
const pendingReads = new Map<string, PendingRead[]>();

/** One libvirt connection, driven through virsh. */
export class VirshBackend {
  /** The libvirt URI. */
  public readonly uri: string;
  private readonly opts: VirshRunOptions;

  /** A backend for `uri`. */
  constructor(uri: string, opts: VirshRunOptions = {}) {
    this.uri = uri;
    this.opts = opts;
  }

  /** Runs one virsh command. */
  public async run(args: readonly string[]): Promise<string> {
    return (await runVirsh(this.uri, args, this.opts)).stdout;
  }

  /**
   * Runs several virsh commands in one process. virsh runs every command whatever fails and
   * exits with the last one's status, so any `error:` line on stderr fails the batch.
   */
  public async batch(commands: readonly (readonly string[])[], tolerate?: RegExp): Promise<string> {
    const args = [commands.map((c) => c.map(virshQuote).join(" ")).join(" ; ")];
    const r = await runVirsh(this.uri, args, { ...this.opts, allowFailure: true });
    const errors = unexcusedErrors(r.stderr, tolerate);
    if (errors.length > 0 || (r.code !== 0 && !/^error: /m.test(r.stderr))) throw new VirshError(this.uri, args, r.code, errors.join("\n") || r.stderr, r.stdout);
    return r.stdout;
  }

  /** Versions and the hwuuid mode of this connection. */
  public async probe(): Promise<LibvirtCapabilities> {
    const base = parseVersionOutput(await this.run(["version", "--daemon"]));
    return { ...base, ...hwuuidModeFor(base) };
  }

  /** Whether a domain of that name exists. */
  public async exists(name: string): Promise<boolean> {
    try {
      await this.run(["domuuid", name]);
      return true;
    } catch (e) {
      if (VirshError.isInstance(e) && /failed to get domain|Domain not found/i.test(e.libvirtMessage)) return false;
      throw e;
    }
  }

  /** Defines (or redefines) a domain from XML, validated against libvirt's schema so nothing is silently dropped. */
  public async define(xml: string, validate = true): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), "lvd-define-"));
    try {
      const file = join(dir, "domain.xml");
      writeFileSync(file, xml, { mode: 0o600 });
        await this.run(validate ? ["define", "--validate", file] : ["define", file]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /**
   * The inactive (persistent) XML, security info included (`--security-info`: graphics
   * passwords), so that it holds everything libvirt keeps. Every dumpxml of this backend asks
   * for it: what is compared with the desired XML must have what the desired XML states.
   */
  public async dumpxmlInactive(name: string): Promise<string> {
    return this.run(["dumpxml", "--inactive", "--security-info", name]);
  }

  /** The domain uuid. */
  public async domuuid(name: string): Promise<string> {
    return (await this.run(["domuuid", name])).trim();
  }

  /** The power state. */
  public async domstate(name: string): Promise<DomainState> {
    return (await this.run(["domstate", name])).trim() as DomainState;
  }

  /**
   * The inactive XML and the state; undefined when the domain is gone. Reads requested in the same
   * turn of the event loop (a refresh reads its domains concurrently) share one virsh process:
   * the domain states (three `list` commands) and every `dumpxml`, so each read costs a fraction
   * of a process. `fresh` asks for this domain alone (`domstate` + `dumpxml`).
   */
  public async read(name: string, opts: { fresh?: boolean } = {}): Promise<{ xml: string; state: DomainState } | undefined> {
    if (!opts.fresh) return this.readCoalesced(name);
    try {
      return splitStateAndXml(await this.batch([["domstate", name], ["dumpxml", "--inactive", "--security-info", name]]));
    } catch (e) {
      if (VirshError.isInstance(e) && /failed to get domain|Domain not found/i.test(e.libvirtMessage)) return undefined;
      throw e;
    }
  }

  private readCoalesced(name: string): Promise<{ xml: string; state: DomainState } | undefined> {
    let q = pendingReads.get(this.uri);
    if (!q) {
      const queue: PendingRead[] = [];
      q = queue;
      pendingReads.set(this.uri, queue);
      setImmediate(() => {
        pendingReads.delete(this.uri);
        this.flushReads(queue).catch((e) => queue.forEach((p) => p.reject(e)));
      });
    }
    return new Promise((resolve, reject) => q!.push({ name, resolve, reject }));
  }

  private async flushReads(queue: PendingRead[]): Promise<void> {
    const sep = `==pulumi-libvirt-domain-${randomBytes(8).toString("hex")}==`;
    const cmds: string[][] = [["list", "--all", "--name"], ["echo", sep], ["list", "--name", "--state-running"], ["echo", sep], ["list", "--name", "--state-paused"]];
    for (const p of queue) cmds.push(["echo", sep], ["dumpxml", "--inactive", "--security-info", p.name]);
    // A domain that vanished fails its own dumpxml only; its empty part says it is gone.
    const out = await this.batch(cmds, /failed to get domain|Domain not found/i);
    const parts = out.split(sep);
    const lines = (i: number) => (parts[i] ?? "").split("\n").map((l) => l.trim()).filter(Boolean);
    const all = new Set(lines(0));
    const running = new Set(lines(1));
    const paused = new Set(lines(2));
    queue.forEach((p, i) => {
      const part = parts[3 + i] ?? "";
      const at = part.indexOf("<domain");
      if (!all.has(p.name) || at < 0) {
        p.resolve(undefined);
        return;
      }
      p.resolve({ state: running.has(p.name) ? "running" : paused.has(p.name) ? "paused" : "shut off", xml: part.slice(at).replace(/\n+$/, "\n") });
    });
  }

  /**
   * Defines a new domain whose XML carries `uuid`, starts it when asked and reads it back, all in
   * one virsh process. Later commands address the domain by uuid, so a refused define (its name
   * taken by another domain) can never start or read that other domain. Rejects with a
   * {@link VirshError} whose `step` says what failed: `define` or `start`.
   */
  public async defineStartRead(xml: string, uuid: string, start: boolean): Promise<{ xml: string; state: DomainState }> {
    const dir = mkdtempSync(join(tmpdir(), "lvd-define-"));
    try {
      const file = join(dir, "domain.xml");
      writeFileSync(file, xml, { mode: 0o600 });
      const cmds = [["define", "--validate", file], ...(start ? [["start", uuid]] : []), ["dumpxml", "--inactive", "--security-info", uuid]];
      const args = [cmds.map((c) => c.map(virshQuote).join(" ")).join(" ; ")];
      const r = await runVirsh(this.uri, args, { ...this.opts, allowFailure: true });
      const errors = unexcusedErrors(r.stderr);
      if (errors.length) {
        // Report the first failure's cause: define's, else start's.
        const i = errors.findIndex((l) => /^error: Failed to (define|start) domain/i.test(l));
        const cause = i >= 0 && errors[i + 1] ? errors[i + 1] : errors[errors.length - 1];
        const err = new VirshError(this.uri, args, 1, `${cause}\n`, r.stdout);
        err.step = i >= 0 && /define/i.test(errors[i]) ? "define" : "start";
        throw err;
      }
      return { state: start ? "running" : "shut off", xml: r.stdout.slice(r.stdout.indexOf("<domain")) };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Pulls the plug (if running) and undefines the domain with this uuid, in one virsh process; gone is fine. */
  public async destroyAndUndefineByUuid(uuid: string): Promise<void> {
    await this.batch([["destroy", uuid], ["undefine", "--nvram", "--managed-save", "--snapshots-metadata", uuid]], /domain is not running|failed to get domain|Domain not found/i);
  }

  /** Pulls the plug (if running) and undefines, in one virsh process. */
  public async destroyAndUndefine(name: string): Promise<void> {
    await this.batch([["destroy", name], ["undefine", "--nvram", "--managed-save", "--snapshots-metadata", name]], /domain is not running/);
  }

  /** Starts a defined domain. */
  public async start(name: string): Promise<void> {
    await this.run(["start", name]);
  }

  /** Stops a domain at once (pulls the plug). */
  public async destroy(name: string): Promise<void> {
    try {
      await this.run(["destroy", name]);
    } catch (e) {
      if (VirshError.isInstance(e) && /not running/i.test(e.libvirtMessage)) return;
      throw e;
    }
  }

  /**
   * Graceful stop: ACPI shutdown, wait up to `timeoutSeconds` for `shut off`, then destroy.
   * Returns how it ended.
   */
  public async shutdown(name: string, timeoutSeconds: number): Promise<"shutdown" | "destroyed" | "not-running"> {
    if ((await this.domstate(name)) === "shut off") return "not-running";
    if (timeoutSeconds > 0) {
      try {
        await this.run(["shutdown", name]);
      } catch (e) {
        if (!VirshError.isInstance(e)) throw e;
      }
      const deadline = Date.now() + timeoutSeconds * 1000;
      while (Date.now() < deadline) {
        if ((await this.domstate(name)) === "shut off") return "shutdown";
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    await this.destroy(name);
    return "destroyed";
  }

  /** Undefines a (stopped) domain with its NVRAM, managed save and snapshot metadata. */
  public async undefine(name: string): Promise<void> {
    await this.run(["undefine", "--nvram", "--managed-save", "--snapshots-metadata", name]);
  }

  /** The UUID the guest sees, asked over QMP (`query-uuid`). */
  public async queryGuestUuid(name: string): Promise<string> {
    const out = await this.run(["qemu-monitor-command", name, JSON.stringify({ execute: "query-uuid" })]);
    return (JSON.parse(out) as { return: { UUID: string } }).return.UUID;
  }

  /** libvirt serializes jobs on a domain itself: nothing to hold here. */
  public async withLock<T>(_name: string, fn: () => Promise<T>): Promise<T> {
    return fn();
  }

  /** Names of all domains (active and inactive). */
  public async listNames(): Promise<string[]> {
    return (await this.run(["list", "--all", "--name"])).split("\n").map((s) => s.trim()).filter(Boolean);
  }
}
