/**
 * A small QMP client over a unix socket: greeting, `qmp_capabilities`, then one command at a
 * time; events are skipped. Used by the QEMU-direct backend.
 *
 * Every fault is a {@link QmpError} naming the socket, never an exception thrown from a socket
 * callback: a line that is not JSON, a greeting that is not QMP's, a message longer than
 * {@link MAX_QMP_MESSAGE_BYTES}, a closed connection. Every wait (connect, greeting, reply) has
 * a bound and names what it waited for. A session that failed or timed out is closed at once: a
 * late reply could otherwise be taken for the next command's.
 */
import * as net from "node:net";
import { hasBrand, LibvirtDomainError } from "../../xml/errors";

/** Longest QMP message we buffer, in bytes (QEMU's largest reply, query-qmp-schema, is well under 1 MiB). */
export const MAX_QMP_MESSAGE_BYTES = 16 * 1024 * 1024;
/** @default bound of every wait, in milliseconds. */
export const DEFAULT_QMP_TIMEOUT_MS = 10000;

const BRAND = "__pulumiLibvirtDomainQmpError";

/** How to fix a QMP fault where the socket is not (or no longer) a working QEMU monitor. */
const FIX_NOT_A_MONITOR =
  "check that the path is a running QEMU's QMP socket (QEMU's -qmp unix:PATH,server=on); a shut-off domain has none";
/** How to fix a QMP fault where QEMU did not answer in time. */
const FIX_NO_ANSWER = "check that QEMU is running and not paused or overloaded (see its log), then try again";

/**
 * {@link QmpError}: QMP failed (connect, protocol or a command's error). `path` is
 * `QMP at SOCKET` (or `QMP COMMAND at SOCKET` for a command QEMU refused); the message is
 * `QMP at SOCKET: REASON; fix: FIX`.
 */
export class QmpError extends LibvirtDomainError {
  /** The socket path. */
  public readonly socketPath: string;
  /** The command QEMU refused, when it was a command's error. */
  public readonly command?: string;

  /**
   * @param reason what went wrong, without the socket
   * @param socketPath the monitor socket
   * @param fix how to fix it
   * @param command the QMP command, when QEMU refused it
   */
  constructor(reason: string, socketPath: string, fix: string, command?: string) {
    super(reason, { path: `QMP${command ? ` ${command}` : ""} at ${socketPath}`, fix }, BRAND);
    this.socketPath = socketPath;
    this.command = command;
  }

  /** True for any {@link QmpError}, whichever copy of this module made it. */
  public static override isInstance(e: unknown): e is QmpError {
    return hasBrand(e, BRAND);
  }
}

interface Waiter {
  resolve(msg: Record<string, unknown>): void;
  reject(e: QmpError): void;
  timer: NodeJS.Timeout;
}

function excerpt(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);
}

/** An open QMP session. */
export class QmpSession {
  private chunks: Buffer[] = [];
  private chunkBytes = 0;
  private waiters: Waiter[] = [];
  private failure: QmpError | undefined;

  private constructor(
    private readonly socket: net.Socket,
    private readonly path: string,
    private readonly maxMessageBytes: number,
  ) {
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (e) => this.fail(e.message, FIX_NOT_A_MONITOR));
    socket.on("close", () => this.fail("connection closed", "QEMU closed its monitor (did it exit? see its log)"));
  }

  /**
   * Connects and negotiates capabilities; each step waits at most `timeoutMs`. On any failure
   * the socket is closed before the error is thrown.
   */
  public static async connect(
    path: string,
    timeoutMs = DEFAULT_QMP_TIMEOUT_MS,
    maxMessageBytes = MAX_QMP_MESSAGE_BYTES,
  ): Promise<QmpSession> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection(path);
      const onError = (e: Error) => {
        clearTimeout(t);
        s.destroy();
        reject(new QmpError(e.message, path, FIX_NOT_A_MONITOR));
      };
      const t = setTimeout(() => {
        s.off("error", onError);
        s.on("error", () => undefined);
        s.destroy();
        reject(new QmpError(`no connection in ${timeoutMs} ms`, path, FIX_NO_ANSWER));
      }, timeoutMs);
      s.once("error", onError);
      s.once("connect", () => {
        clearTimeout(t);
        s.off("error", onError);
        resolve(s);
      });
    });
    const session = new QmpSession(socket, path, maxMessageBytes);
    try {
      const greeting = await session.next(timeoutMs, "greeting");
      if (typeof greeting.QMP !== "object" || greeting.QMP === null) {
        session.fail(`not a QMP greeting: ${excerpt(JSON.stringify(greeting))}`, FIX_NOT_A_MONITOR);
        throw session.failure ?? new QmpError("not a QMP greeting", path, FIX_NOT_A_MONITOR);
      }
      await session.execute("qmp_capabilities", undefined, timeoutMs);
    } catch (e) {
      session.close();
      throw e;
    }
    return session;
  }

  private onData(chunk: Buffer): void {
    let start = 0;
    while (!this.failure) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      if (this.chunkBytes + (nl - start) > this.maxMessageBytes) return this.tooLong();
      const line = Buffer.concat([...this.chunks, chunk.subarray(start, nl)])
        .toString("utf8")
        .trim();
      this.chunks = [];
      this.chunkBytes = 0;
      start = nl + 1;
      if (line) this.onLine(line);
    }
    if (this.failure || start >= chunk.length) return;
    const rest = chunk.subarray(start);
    this.chunks.push(rest);
    this.chunkBytes += rest.length;
    if (this.chunkBytes > this.maxMessageBytes) this.tooLong();
  }

  private tooLong(): void {
    this.fail(
      `a message longer than ${this.maxMessageBytes} bytes without its newline; closed the connection`,
      FIX_NOT_A_MONITOR,
    );
  }

  private onLine(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      this.fail(`the monitor sent a line that is not JSON: ${excerpt(line)}`, FIX_NOT_A_MONITOR);
      return;
    }
    if (typeof msg !== "object" || msg === null || Array.isArray(msg)) {
      this.fail(`the monitor sent a JSON value that is not a QMP message: ${excerpt(line)}`, FIX_NOT_A_MONITOR);
      return;
    }
    if ("event" in msg) return;
    const w = this.waiters.shift();
    if (!w) return; // nothing asked: not ours to answer
    clearTimeout(w.timer);
    w.resolve(msg as Record<string, unknown>);
  }

  /** Ends the session with a {@link QmpError} (`reason`, `fix`): the socket is closed and every waiter rejected. */
  private fail(reason: string, fix: string): void {
    if (this.failure) return;
    this.failure = new QmpError(reason, this.path, fix);
    this.socket.destroy();
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(this.failure);
    }
  }

  private next(timeoutMs: number, what: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      // A missed reply leaves the session out of step: it is closed, not reused.
      const timer = setTimeout(() => this.fail(`no ${what} in ${timeoutMs} ms`, FIX_NO_ANSWER), timeoutMs);
      this.waiters.push({ resolve, reject, timer });
    });
  }

  /** Runs a command; resolves with its `return`, rejects with its error. Waits at most `timeoutMs`. */
  public async execute(
    command: string,
    args?: Record<string, unknown>,
    timeoutMs = DEFAULT_QMP_TIMEOUT_MS,
  ): Promise<unknown> {
    if (this.failure) throw this.failure;
    const reply = this.next(timeoutMs, `reply to ${command}`);
    this.socket.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + "\n");
    const m = await reply;
    if ("error" in m) {
      const err = m.error as { desc?: unknown } | null;
      throw new QmpError(
        typeof err?.desc === "string" ? err.desc : JSON.stringify(m.error),
        this.path,
        `QEMU refused ${command}: check the command and its arguments against the QMP reference of this QEMU version`,
        command,
      );
    }
    return m.return;
  }

  /** Closes the connection. */
  public close(): void {
    this.fail("closed", "open a new session (QmpSession.connect): a closed one is not reused");
  }
}

/** Connects, runs one command, closes; every step waits at most `timeoutMs`. */
export async function qmpOnce(
  path: string,
  command: string,
  args?: Record<string, unknown>,
  timeoutMs = DEFAULT_QMP_TIMEOUT_MS,
): Promise<unknown> {
  const s = await QmpSession.connect(path, timeoutMs);
  try {
    return await s.execute(command, args, timeoutMs);
  } finally {
    s.close();
  }
}
