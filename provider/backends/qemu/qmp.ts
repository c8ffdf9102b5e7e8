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
import { hasBrand } from "../../xml/errors";

/** Longest QMP message we buffer, in bytes (QEMU's largest reply, query-qmp-schema, is well under 1 MiB). */
export const MAX_QMP_MESSAGE_BYTES = 16 * 1024 * 1024;
/** @default bound of every wait, in milliseconds. */
export const DEFAULT_QMP_TIMEOUT_MS = 10000;

const BRAND = "__pulumiLibvirtDomainQmpError";

/** {@link QmpError}: QMP failed (connect, protocol or a command's error). */
export class QmpError extends Error {
  /** Brand for {@link QmpError.isInstance}. */
  public readonly [BRAND] = true;
  /** The socket path. */
  public readonly socketPath: string;
  /** Builds it. */
  constructor(message: string, socketPath: string) {
    super(message);
    this.name = "QmpError";
    this.socketPath = socketPath;
  }

  /** True for any {@link QmpError}, whichever copy of this module made it. */
  public static isInstance(e: unknown): e is QmpError {
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
    socket.on("error", (e) => this.fail(`QMP at ${path}: ${e.message}`));
    socket.on("close", () => this.fail(`QMP at ${path}: connection closed`));
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
        reject(new QmpError(`QMP at ${path}: ${e.message}`, path));
      };
      const t = setTimeout(() => {
        s.off("error", onError);
        s.on("error", () => undefined);
        s.destroy();
        reject(new QmpError(`QMP at ${path}: no connection in ${timeoutMs} ms`, path));
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
        session.fail(
          `QMP at ${path}: not a QMP greeting: ${excerpt(JSON.stringify(greeting))}; is this socket a QEMU monitor?`,
        );
        throw session.failure ?? new QmpError(`QMP at ${path}: not a QMP greeting`, path);
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
      `QMP at ${this.path}: a message longer than ${this.maxMessageBytes} bytes without its newline; closed the connection`,
    );
  }

  private onLine(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      this.fail(
        `QMP at ${this.path}: the monitor sent a line that is not JSON: ${excerpt(line)}; is this socket a QEMU monitor?`,
      );
      return;
    }
    if (typeof msg !== "object" || msg === null || Array.isArray(msg)) {
      this.fail(`QMP at ${this.path}: the monitor sent a JSON value that is not a QMP message: ${excerpt(line)}`);
      return;
    }
    if ("event" in msg) return;
    const w = this.waiters.shift();
    if (!w) return; // nothing asked: not ours to answer
    clearTimeout(w.timer);
    w.resolve(msg as Record<string, unknown>);
  }

  /** Ends the session with `message`: the socket is closed and every waiter rejected. */
  private fail(message: string): void {
    if (this.failure) return;
    this.failure = new QmpError(message, this.path);
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
      const timer = setTimeout(() => this.fail(`QMP at ${this.path}: no ${what} in ${timeoutMs} ms`), timeoutMs);
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
        `QMP ${command} at ${this.path}: ${typeof err?.desc === "string" ? err.desc : JSON.stringify(m.error)}`,
        this.path,
      );
    }
    return m.return;
  }

  /** Closes the connection. */
  public close(): void {
    this.fail(`QMP at ${this.path}: closed`);
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
