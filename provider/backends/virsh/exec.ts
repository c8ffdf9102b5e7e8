/**
 * Running `virsh`: always an argument array, never a shell. Failures become {@link VirshError}
 * with libvirt's own message kept (the `error: ...` lines virsh prints).
 */
import { execFile, spawnSync } from "node:child_process";
import { hasBrand, LibvirtDomainError } from "../../xml/errors";

/** The result of one virsh process. */
export interface VirshResult {
  readonly stdout: string;
  readonly stderr: string;
  /** The exit status (0 unless `allowFailure`). */
  readonly code: number;
}

/** Options for {@link runVirsh}. */
export interface VirshRunOptions {
  /** Kill virsh after this long. @default 120000 */
  readonly timeoutMs?: number;
  /** The virsh binary. @default `virsh` (or `$VIRSH`) */
  readonly virsh?: string;
  /** Resolve with the output and status even when virsh exits non-zero (batches judge stderr themselves). @default false */
  readonly allowFailure?: boolean;
}

const BRAND = "__pulumiLibvirtDomainVirshError";

/**
 * {@link VirshError}: virsh exited non-zero. `libvirtMessage` (also `reason`) is libvirt's text
 * without `error: `; `path` is the command and the connection (`virsh define on qemu:///system`);
 * the message is `virsh define on URI: LIBVIRT TEXT; fix: ...`.
 */
export class VirshError extends LibvirtDomainError {
  /** libvirt's message, e.g. `internal error: malformed hwuuid element`. */
  public readonly libvirtMessage: string;
  /** The connection URI. */
  public readonly uri: string;
  /** The virsh arguments after `-c URI`. */
  public readonly args: readonly string[];
  /** virsh's exit status (or the signal). */
  public readonly exitCode: number | string | null;
  /** Everything virsh wrote to stdout before failing. */
  public readonly stdout: string;
  /** For multi-step operations: the step that failed (e.g. `define`, `start`). */
  public step?: string;

  /**
   * @param uri the connection URI
   * @param args the virsh arguments after `-c URI`
   * @param exitCode virsh's exit status, or the signal that stopped it
   * @param stderr what virsh wrote to stderr (its `error: ` lines become `libvirtMessage`)
   * @param stdout what virsh wrote to stdout
   * @param fix how to fix it; @default {@link virshFix} of libvirt's message
   */
  constructor(
    uri: string,
    args: readonly string[],
    exitCode: number | string | null,
    stderr: string,
    stdout: string,
    fix?: string,
  ) {
    const msg = extractLibvirtMessage(stderr) || `virsh exited with ${exitCode}`;
    super(msg, { path: `virsh ${args[0] ?? ""} on ${uri}`, fix: fix ?? virshFix(msg, uri, args[0], exitCode) }, BRAND);
    this.libvirtMessage = msg;
    this.uri = uri;
    this.args = args;
    this.exitCode = exitCode;
    this.stdout = stdout;
  }

  /** True for any {@link VirshError}, whichever copy of this module made it. */
  public static override isInstance(e: unknown): e is VirshError {
    return hasBrand(e, BRAND);
  }
}

/**
 * How to fix a failed virsh command, from libvirt's message: what the common failures (no virsh,
 * no daemon, no such domain, a name taken, a killed virsh) need; otherwise where to read more.
 */
export function virshFix(
  libvirtMessage: string,
  uri: string,
  command: string | undefined,
  exitCode: number | string | null = 1,
): string {
  if (/virsh not found/.test(libvirtMessage))
    return "install libvirt-clients (virsh) on the machine that runs Pulumi, or set $VIRSH to its path";
  if (
    /failed to (connect|get connection)|cannot connect|no connection driver|authentication (failed|unavailable)/i.test(
      libvirtMessage,
    )
  )
    return `check that the libvirt daemon runs on that host and that the URI is right: \`virsh -c ${uri} version\` must answer`;
  if (/failed to get domain|domain not found|no domain with matching/i.test(libvirtMessage))
    return `the domain is not defined on ${uri}: check its name with \`virsh -c ${uri} list --all\`; if it was removed outside Pulumi, run \`pulumi refresh\``;
  if (/already exists/.test(libvirtMessage))
    return `the name or uuid is taken on ${uri}: choose another name, or remove the other domain first`;
  if (typeof exitCode === "string")
    return `virsh was stopped by ${exitCode} (its time limit?): check that the libvirt daemon on that host answers \`virsh -c ${uri} version\` quickly`;
  return `correct what libvirt's message names; \`virsh -c ${uri} help ${command ?? ""}\` and the libvirt daemon's log on that host say more`;
}

/** libvirt's message from virsh's stderr: the `error: ` lines, prefix removed, joined. */
export function extractLibvirtMessage(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  const errs = lines.filter((l) => l.startsWith("error: ")).map((l) => l.slice("error: ".length));
  // virsh prints "failed to ..." then the libvirt error; the last one is the cause.
  return (errs.at(-1) ?? lines.join(" ")).trim();
}

/** Runs `virsh -q -c URI ARGS...`; resolves with its output or rejects with a {@link VirshError}. */
export function runVirsh(uri: string, args: readonly string[], opts: VirshRunOptions = {}): Promise<VirshResult> {
  const bin = opts.virsh ?? process.env.VIRSH ?? "virsh";
  return new Promise((resolve, reject) => {
    execFile(
      bin,
      ["-q", "-c", uri, ...args],
      { timeout: opts.timeoutMs ?? 120000, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, LC_ALL: "C" } },
      (err, stdout, stderr) => {
        if (err) {
          if ((err as NodeJS.ErrnoException).code === "ENOENT") {
            reject(new VirshError(uri, args, null, `error: virsh not found ('${bin}')`, ""));
            return;
          }
          const code = (err as { code?: unknown }).code;
          if (opts.allowFailure && typeof code === "number") {
            resolve({ stdout, stderr, code });
            return;
          }
          reject(
            new VirshError(
              uri,
              args,
              typeof code === "number" ? code : ((err as { signal?: string }).signal ?? null),
              stderr,
              stdout,
            ),
          );
          return;
        }
        resolve({ stdout, stderr, code: 0 });
      },
    );
  });
}

/**
 * Runs `virsh -q -c URI ARGS...` synchronously (for a program that must know a template before it
 * declares resources); throws a {@link VirshError}.
 */
export function runVirshSync(uri: string, args: readonly string[], opts: VirshRunOptions = {}): string {
  const bin = opts.virsh ?? process.env.VIRSH ?? "virsh";
  const r = spawnSync(bin, ["-q", "-c", uri, ...args], {
    timeout: opts.timeoutMs ?? 120000,
    encoding: "utf8",
    env: { ...process.env, LC_ALL: "C" },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error)
    throw new VirshError(
      uri,
      args,
      null,
      `error: ${(r.error as NodeJS.ErrnoException).code === "ENOENT" ? `virsh not found ('${bin}')` : r.error.message}`,
      "",
    );
  if (r.status !== 0 || /^error: /m.test(r.stderr)) throw new VirshError(uri, args, r.status, r.stderr, r.stdout);
  return r.stdout;
}
