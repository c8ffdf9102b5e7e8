/**
 * The virsh backend: everything the Domain resource does to libvirt, through `virsh` processes
 * with argument arrays. Several commands share one virsh process where that saves a process
 * start (`;`-separated, each command its own argv element, quoted for virsh's own parser).
 */
import { ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type {
  DomainAddress,
  DomainBackend,
  DomainRef,
  DomainState,
  LibvirtCapabilities,
  LiveDomainOps,
} from "../domain-backend";
import { hwuuidModeFor } from "../capabilities";
import { runVirsh, VirshError, VirshRunOptions } from "./exec";

/** Parses `virsh version --daemon` output. */
export function parseVersionOutput(out: string): Omit<LibvirtCapabilities, "hwuuidMode" | "hwuuidUnsupportedReason"> {
  const daemon =
    /Running against daemon:\s*([0-9.]+)/.exec(out)?.[1] ?? /Using library: libvirt ([0-9.]+)/.exec(out)?.[1] ?? "0";
  const hv = /Running hypervisor:\s*(\S+)\s+([0-9.]+)/.exec(out);
  return { libvirtVersion: daemon, hypervisor: hv?.[1] ?? "unknown", hypervisorVersion: hv?.[2] ?? "0" };
}

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
      const before = lines[i - 1];
      if (before !== undefined && /^error: Failed to /i.test(before)) excused.add(i - 1);
    }
  });
  return lines.filter((_, i) => !excused.has(i));
}

/** Every state `virsh domstate` prints. */
/**
 * Seconds between ACPI power-button presses while a graceful stop waits (virsh `shutdown`, QMP
 * `system_powerdown`): a guest that is still booting loses a press, as on real hardware.
 */
const ACPI_RETRY_SECONDS = 2;

const DOMAIN_STATES: readonly DomainState[] = [
  "running",
  "shut off",
  "paused",
  "blocked",
  "in shutdown",
  "crashed",
  "pmsuspended",
  "idle",
];

/**
 * One interactive virsh process fed over pipes: each {@link VirshSession.send} writes one line
 * of `;`-separated commands and waits (bounded) for its output, so what is sent next can depend
 * on what came back, still in one process. Outputs are cut at echoed random marks, each written
 * as two quoted halves (`echo 0123''4567`) so that the input line virsh echoes back never holds
 * the mark itself.
 */
class VirshSession {
  /** The lines sent so far. */
  public readonly sent: string[] = [];
  private readonly child: ChildProcess;
  private readonly home: string;
  private readonly timer: NodeJS.Timeout;
  private stdout = "";
  private stderr = "";
  private ended: string | undefined;
  private closed = false;
  private waiters: (() => void)[] = [];

  /** Starts `virsh -q -c URI` with no command: its interactive mode, reading lines from stdin. */
  constructor(
    private readonly uri: string,
    virsh: string | undefined,
    timeoutMs: number,
  ) {
    // virsh writes its history under $XDG_CACHE_HOME on exit: a private directory, never the user's.
    this.home = mkdtempSync(join(tmpdir(), "lvd-virsh-"));
    const bin = virsh ?? process.env.VIRSH ?? "virsh";
    this.child = spawn(bin, ["-q", "-c", uri], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, LC_ALL: "C", TERM: "dumb", XDG_CACHE_HOME: this.home },
    });
    this.child.stdout!.setEncoding("utf8").on("data", (d: string) => this.wake((this.stdout += d)));
    this.child.stderr!.setEncoding("utf8").on("data", (d: string) => this.wake((this.stderr += d)));
    this.child.stdin!.on("error", () => undefined); // a virsh that died is reported by its exit
    this.child.on("error", (e: NodeJS.ErrnoException) =>
      this.end(e.code === "ENOENT" ? `virsh not found ('${bin}'): install libvirt-clients` : e.message),
    );
    // `close`: exited and every output read to its end.
    this.child.on("close", (code, signal) => {
      this.closed = true;
      this.end(`virsh exited (${code ?? signal})`);
    });
    this.timer = setTimeout(() => {
      this.end(
        `timed out after ${timeoutMs} ms waiting for virsh on ${uri} to answer ${JSON.stringify(this.sent[this.sent.length - 1] ?? "")}`,
      );
      this.child.kill("SIGKILL");
    }, timeoutMs);
  }

  private wake(_?: unknown): void {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  private end(why: string): void {
    if (this.ended === undefined) this.ended = why;
    this.wake();
  }

  private async until(done: () => boolean): Promise<void> {
    while (!done()) {
      if (this.ended !== undefined)
        throw new VirshError(
          this.uri,
          this.sent,
          null,
          this.stderr.trim() ? this.stderr : `error: ${this.ended}`,
          this.stdout,
        );
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** Sends one line; resolves with the output between `"mark"` entries, and after the last one. */
  public async send(cmds: readonly (readonly string[] | "mark")[]): Promise<string[]> {
    const marks: string[] = [];
    const text = [...cmds, "mark" as const]
      .map((c) => {
        if (c !== "mark") return c.map(virshQuote).join(" ");
        const m = randomBytes(8).toString("hex");
        marks.push(m);
        return `echo ${m.slice(0, 8)}''${m.slice(8)}`;
      })
      .join(" ; ");
    const from = this.stdout.length;
    this.sent.push(text);
    this.child.stdin!.write(`${text}\n`);
    const last = marks[marks.length - 1]!; // the closing mark, always added above
    await this.until(() => this.stdout.indexOf(last, from) >= 0);
    const parts: string[] = [];
    let at = from;
    for (const m of marks) {
      const end = this.stdout.indexOf(m, at);
      parts.push(this.stdout.slice(at, end).replace(/^(virsh # )+/gm, ""));
      at = end + m.length;
    }
    return parts;
  }

  /** Ends the session; resolves with everything virsh wrote to stderr. */
  public async quit(): Promise<string> {
    this.child.stdin!.end("quit\n");
    await this.until(() => this.closed).catch((e) => {
      if (!this.closed) throw e;
    });
    return this.stderr;
  }

  /** Stops the timer, kills virsh if it still runs, removes the private directory. */
  public close(): void {
    clearTimeout(this.timer);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    rmSync(this.home, { recursive: true, force: true });
  }
}

/** Splits `domstate` + `dumpxml` output (`start` may print before them). */
export function splitStateAndXml(out: string): { xml: string; state: DomainState } {
  const at = out.indexOf("<domain");
  const head = out.slice(0, at).trim().split("\n");
  return { state: head[head.length - 1]!.trim() as DomainState, xml: out.slice(at) }; // split() returns at least one line
}

/**
 * The virsh argument for a domain: the recorded uuid where there is one (virsh would take a bare
 * name for an id or a uuid first), else the name.
 */
export function domainArg(ref: DomainAddress): string {
  return typeof ref === "string" ? ref : ref.uuid || ref.name;
}

/** The `<uuid>` of a domain XML (the first one: the domain's own), lowercase. */
export function xmlUuid(xml: string): string | undefined {
  return /<uuid>\s*([0-9A-Fa-f-]+)\s*<\/uuid>/.exec(xml)?.[1]?.toLowerCase();
}

/** Parses `virsh list --uuid --name` (one `UUID NAME` a line) into name -> uuid. */
export function parseUuidNameList(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of out.split("\n")) {
    const [, uuid, name] =
      /^\s*([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\s+(.+?)\s*$/.exec(line) ?? [];
    if (uuid && name) m.set(name, uuid.toLowerCase());
  }
  return m;
}

/** A read waiting for its turn's batch (always by uuid). */
interface PendingRead {
  uuid: string;
  resolve: (r: { xml: string; state: DomainState } | undefined) => void;
  reject: (e: unknown) => void;
}

/** Per-process queue of reads to send together, by connection URI. */
const pendingReads = new Map<string, PendingRead[]>();

/** One libvirt connection, driven through virsh. */
export class VirshBackend implements DomainBackend {
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
    if (errors.length > 0 || (r.code !== 0 && !/^error: /m.test(r.stderr)))
      throw new VirshError(this.uri, args, r.code, errors.join("\n") || r.stderr, r.stdout);
    return r.stdout;
  }

  /** Versions and the hwuuid mode of this connection. */
  public async probe(): Promise<LibvirtCapabilities> {
    const base = parseVersionOutput(await this.run(["version", "--daemon"]));
    return { ...base, ...hwuuidModeFor(base) };
  }

  /**
   * The uuid of the domain of this name, from the name list (`list --all --uuid --name`): a name
   * that is another domain's id or uuid cannot make virsh pick that domain. Undefined when none.
   */
  public async lookupUuid(name: string): Promise<string | undefined> {
    return parseUuidNameList(await this.run(["list", "--all", "--uuid", "--name"])).get(name);
  }

  /** Whether a domain of that name exists (by name only). */
  public async exists(name: string): Promise<boolean> {
    return (await this.lookupUuid(name)) !== undefined;
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
  public async dumpxmlInactive(ref: DomainAddress): Promise<string> {
    return this.run(["dumpxml", "--inactive", "--security-info", domainArg(ref)]);
  }

  /** The uuid of the domain of this name (by name only); fails as virsh does when there is none. */
  public async domuuid(name: string): Promise<string> {
    const uuid = await this.lookupUuid(name);
    if (!uuid) throw new VirshError(this.uri, ["domuuid", name], 1, `error: failed to get domain '${name}'\n`, "");
    return uuid;
  }

  /** The power state. */
  public async domstate(ref: DomainAddress): Promise<DomainState> {
    return (await this.run(["domstate", domainArg(ref)])).trim() as DomainState;
  }

  /**
   * The inactive XML and the state; undefined when the domain is gone. Reads requested in the same
   * turn of the event loop (a refresh reads its domains concurrently) share one virsh process:
   * the domain states (three `list` commands) and every `dumpxml`, so each read costs a fraction
   * of a process. `fresh` asks for this domain alone (`domstate` + `dumpxml`). Reads go by uuid:
   * a reference without one is first looked up in the name list (one more process), and a
   * domain whose XML does not carry the uuid asked for (virsh falls back to a name lookup) is
   * not the one asked for.
   */
  public async read(
    ref: DomainAddress,
    opts: { fresh?: boolean } = {},
  ): Promise<{ xml: string; state: DomainState } | undefined> {
    let uuid = typeof ref === "string" ? undefined : ref.uuid?.toLowerCase();
    if (!uuid) {
      uuid = await this.lookupUuid(typeof ref === "string" ? ref : ref.name);
      if (!uuid) return undefined;
    } else if (!opts.fresh) {
      return this.readCoalesced(uuid);
    }
    try {
      const r = splitStateAndXml(
        await this.batch([
          ["domstate", uuid],
          ["dumpxml", "--inactive", "--security-info", uuid],
        ]),
      );
      return xmlUuid(r.xml) === uuid ? r : undefined;
    } catch (e) {
      if (VirshError.isInstance(e) && /failed to get domain|Domain not found/i.test(e.libvirtMessage)) return undefined;
      throw e;
    }
  }

  private readCoalesced(uuid: string): Promise<{ xml: string; state: DomainState } | undefined> {
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
    return new Promise((resolve, reject) => q.push({ uuid, resolve, reject }));
  }

  private async flushReads(queue: PendingRead[]): Promise<void> {
    const sep = `==pulumi-libvirt-domain-${randomBytes(8).toString("hex")}==`;
    const cmds: string[][] = [
      ["list", "--all", "--uuid"],
      ["echo", sep],
      ["list", "--uuid", "--state-running"],
      ["echo", sep],
      ["list", "--uuid", "--state-paused"],
    ];
    for (const p of queue) cmds.push(["echo", sep], ["dumpxml", "--inactive", "--security-info", p.uuid]);
    // A domain that vanished fails its own dumpxml only; its empty part says it is gone.
    const out = await this.batch(cmds, /failed to get domain|Domain not found/i);
    const parts = out.split(sep);
    const lines = (i: number) =>
      (parts[i] ?? "")
        .split("\n")
        .map((l) => l.trim().toLowerCase())
        .filter(Boolean);
    const all = new Set(lines(0));
    const running = new Set(lines(1));
    const paused = new Set(lines(2));
    queue.forEach((p, i) => {
      const part = parts[3 + i] ?? "";
      const at = part.indexOf("<domain");
      const xml = at < 0 ? "" : part.slice(at).replace(/\n+$/, "\n");
      if (!all.has(p.uuid) || at < 0 || xmlUuid(xml) !== p.uuid) {
        p.resolve(undefined);
        return;
      }
      p.resolve({ state: running.has(p.uuid) ? "running" : paused.has(p.uuid) ? "paused" : "shut off", xml });
    });
  }

  /**
   * Defines a new domain whose XML carries `uuid`, starts it when asked and reads it back, all in
   * one virsh process. Later commands address the domain by uuid, so a refused define (its name
   * taken by another domain) can never start or read that other domain. Rejects with a
   * {@link VirshError} whose `step` says what failed: `define` or `start`.
   */
  public async defineStartRead(
    xml: string,
    uuid: string,
    start: boolean,
  ): Promise<{ xml: string; state: DomainState }> {
    const dir = mkdtempSync(join(tmpdir(), "lvd-define-"));
    try {
      const file = join(dir, "domain.xml");
      writeFileSync(file, xml, { mode: 0o600 });
      const cmds = [
        ["define", "--validate", file],
        ...(start ? [["start", uuid]] : []),
        ["dumpxml", "--inactive", "--security-info", uuid],
      ];
      const args = [cmds.map((c) => c.map(virshQuote).join(" ")).join(" ; ")];
      const r = await runVirsh(this.uri, args, { ...this.opts, allowFailure: true });
      const errors = unexcusedErrors(r.stderr);
      if (errors.length) {
        // Report the first failure's cause: define's, else start's.
        const i = errors.findIndex((l) => /^error: Failed to (define|start) domain/i.test(l));
        const cause = i >= 0 && errors[i + 1] ? errors[i + 1] : errors[errors.length - 1];
        const err = new VirshError(this.uri, args, 1, `${cause}\n`, r.stdout);
        err.step = i >= 0 && /define/i.test(errors[i]!) ? "define" : "start";
        throw err;
      }
      return { state: start ? "running" : "shut off", xml: r.stdout.slice(r.stdout.indexOf("<domain")) };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Pulls the plug (if running) and undefines the domain with this uuid, in one virsh process; gone is fine. */
  public async destroyAndUndefineByUuid(uuid: string): Promise<void> {
    await this.batch(
      [
        ["destroy", uuid],
        ["undefine", "--nvram", "--managed-save", "--snapshots-metadata", uuid],
      ],
      /domain is not running|failed to get domain|Domain not found/i,
    );
  }

  /** Pulls the plug (if running) and undefines, in one virsh process. */
  public async destroyAndUndefine(ref: DomainAddress): Promise<void> {
    const name = domainArg(ref);
    await this.batch(
      [
        ["destroy", name],
        ["undefine", "--nvram", "--managed-save", "--snapshots-metadata", name],
      ],
      /domain is not running/,
    );
  }

  /**
   * Reads the domain with this uuid, lets `judge` decide, then pulls the plug and undefines it,
   * in one virsh process: an interactive virsh session over pipes, so the later commands are
   * sent only once the read was judged. A domain already gone is fine. The session keeps virsh's
   * command history in a private directory, removed afterwards (never the user's history).
   */
  public async destroyAndUndefineIf(
    ref: DomainRef & { readonly uuid: string },
    judge: (r: { xml: string; state: DomainState }) => "remove" | "gone",
  ): Promise<"removed" | "gone"> {
    const uuid = ref.uuid.toLowerCase();
    const session = new VirshSession(this.uri, this.opts.virsh, this.opts.timeoutMs ?? 120000);
    try {
      const [stateOut = "", xmlOut = ""] = await session.send([
        ["domstate", uuid],
        "mark",
        ["dumpxml", "--inactive", "--security-info", uuid],
      ]);
      const state = stateOut
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => DOMAIN_STATES.includes(l as DomainState))
        .pop() as DomainState | undefined;
      const at = xmlOut.indexOf("<domain");
      const xml = at < 0 ? "" : xmlOut.slice(at, xmlOut.lastIndexOf("</domain>") + "</domain>".length) + "\n";
      let verdict: "remove" | "gone" = "gone";
      if (state && at >= 0 && xmlUuid(xml) === uuid) verdict = judge({ xml, state }); // throws to refuse
      if (verdict === "remove")
        await session.send([
          ["destroy", uuid],
          ["undefine", "--nvram", "--managed-save", "--snapshots-metadata", uuid],
        ]);
      const stderr = await session.quit();
      const errors = unexcusedErrors(stderr, /domain is not running|failed to get domain|Domain not found/i);
      if (errors.length) throw new VirshError(this.uri, session.sent, 1, errors.join("\n"), "");
      return verdict === "remove" ? "removed" : "gone";
    } finally {
      session.close();
    }
  }

  /** Starts a defined domain. */
  public async start(ref: DomainAddress): Promise<void> {
    await this.run(["start", domainArg(ref)]);
  }

  /** Stops a domain at once (pulls the plug). */
  public async destroy(ref: DomainAddress): Promise<void> {
    const name = domainArg(ref);
    try {
      await this.run(["destroy", name]);
    } catch (e) {
      if (VirshError.isInstance(e) && /not running/i.test(e.libvirtMessage)) return;
      throw e;
    }
  }

  /**
   * Graceful stop: ACPI shutdown, wait up to `timeoutSeconds` for `shut off`, then destroy.
   * The power button is pressed again every {@link ACPI_RETRY_SECONDS} s while waiting: a press
   * before the guest OS watches its button (early in boot) is lost, and nothing tells the
   * provider when the guest is ready. Returns how it ended.
   */
  public async shutdown(ref: DomainAddress, timeoutSeconds: number): Promise<"shutdown" | "destroyed" | "not-running"> {
    const name = domainArg(ref);
    if ((await this.domstate(name)) === "shut off") return "not-running";
    if (timeoutSeconds > 0) {
      const press = async (): Promise<void> => {
        try {
          await this.run(["shutdown", name]);
        } catch (e) {
          if (!VirshError.isInstance(e)) throw e;
        }
      };
      await press();
      const deadline = Date.now() + timeoutSeconds * 1000;
      let nextPress = Date.now() + ACPI_RETRY_SECONDS * 1000;
      while (Date.now() < deadline) {
        if ((await this.domstate(name)) === "shut off") return "shutdown";
        if (Date.now() >= nextPress) {
          await press();
          nextPress = Date.now() + ACPI_RETRY_SECONDS * 1000;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    await this.destroy(name);
    return "destroyed";
  }

  /** Undefines a (stopped) domain with its NVRAM, managed save and snapshot metadata. */
  public async undefine(ref: DomainAddress): Promise<void> {
    await this.run(["undefine", "--nvram", "--managed-save", "--snapshots-metadata", domainArg(ref)]);
  }

  /** The UUID the guest sees, asked over QMP (`query-uuid`). */
  public async queryGuestUuid(ref: DomainAddress): Promise<string> {
    const out = await this.run(["qemu-monitor-command", domainArg(ref), JSON.stringify({ execute: "query-uuid" })]);
    return (JSON.parse(out) as { return: { UUID: string } }).return.UUID;
  }

  /** Live changes: this backend makes them (`--live --config`). */
  public get live(): LiveDomainOps {
    return this;
  }

  /** Runs one virsh command with a device XML written to a private 0600 file (it may hold a disk's secret). */
  private async runWithDeviceFile(args: (file: string) => readonly string[], xml: string): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), "lvd-device-"));
    try {
      const file = join(dir, "device.xml");
      writeFileSync(file, xml, { mode: 0o600 });
      await this.run(args(file));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Hot-plugs a device into the running guest and its definition (`attach-device --live --config`). */
  public async attachDeviceLive(ref: DomainRef, xml: string): Promise<void> {
    await this.runWithDeviceFile((f) => ["attach-device", domainArg(ref), f, "--live", "--config"], xml);
  }

  /** Unplugs a device from the running guest and its definition (`detach-device --live --config`). */
  public async detachDeviceLive(ref: DomainRef, xml: string): Promise<void> {
    await this.runWithDeviceFile((f) => ["detach-device", domainArg(ref), f, "--live", "--config"], xml);
  }

  /** Changes a CD-ROM's or floppy's media (`change-media --update --live --config`). */
  public async changeMediaLive(ref: DomainRef, target: string, source: string): Promise<void> {
    await this.run(["change-media", domainArg(ref), target, "--source", source, "--update", "--live", "--config"]);
  }

  /** Sets the balloon target (`setmem SIZE_KiB --live --config`). */
  public async setMemoryLive(ref: DomainRef, currentMemoryKiB: bigint): Promise<void> {
    await this.run(["setmem", domainArg(ref), `${currentMemoryKiB.toString()}KiB`, "--live", "--config"]);
  }

  /** Sets the online vCPUs (`setvcpus COUNT --live --config`). */
  public async setVcpusLive(ref: DomainRef, count: number): Promise<void> {
    await this.run(["setvcpus", domainArg(ref), String(count), "--live", "--config"]);
  }

  /** The running guest's XML (security info included). */
  public async dumpxmlLive(ref: DomainRef): Promise<string> {
    return this.run(["dumpxml", "--security-info", domainArg(ref)]);
  }

  /** libvirt serializes jobs on a domain itself: nothing to hold here. */
  public async withLock<T>(_name: string, fn: () => Promise<T>): Promise<T> {
    return fn();
  }

  /** Names of all domains (active and inactive). */
  public async listNames(): Promise<string[]> {
    return (await this.run(["list", "--all", "--name"]))
      .split("\n")
      .map((s) => s.trim())
      .filter(Boolean);
  }
}
