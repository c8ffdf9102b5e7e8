/**
 * A small QMP client over a unix socket: greeting, `qmp_capabilities`, then one command at a
 * time; events are skipped. Used by the QEMU-direct backend.
 */
import * as net from "node:net";

/** {@link QmpError}: QMP failed (connect, protocol or a command's error). */
export class QmpError extends Error {
  /** The socket path. */
  public readonly socketPath: string;
  /** Builds it. */
  constructor(message: string, socketPath: string) {
    super(message);
    this.name = "QmpError";
    this.socketPath = socketPath;
  }
}

/** An open QMP session. */
export class QmpSession {
  private buffer = "";
  private waiters: ((msg: Record<string, unknown>) => void)[] = [];
  private closed = false;

  private constructor(private readonly socket: net.Socket, private readonly path: string) {
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf("\n")) >= 0) {
        const line = this.buffer.slice(0, nl).trim();
        this.buffer = this.buffer.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as Record<string, unknown>;
        if ("event" in msg) continue;
        this.waiters.shift()?.(msg);
      }
    });
    socket.on("close", () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w({ error: { desc: "QMP connection closed" } });
    });
  }

  /** Connects and negotiates capabilities. */
  public static async connect(path: string, timeoutMs = 10000): Promise<QmpSession> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection(path);
      const t = setTimeout(() => {
        s.destroy();
        reject(new QmpError(`QMP at ${path}: no answer in ${timeoutMs} ms`, path));
      }, timeoutMs);
      s.once("connect", () => {
        clearTimeout(t);
        resolve(s);
      });
      s.once("error", (e) => {
        clearTimeout(t);
        reject(new QmpError(`QMP at ${path}: ${e.message}`, path));
      });
    });
    const session = new QmpSession(socket, path);
    await session.next(timeoutMs); // greeting
    await session.execute("qmp_capabilities");
    return session;
  }

  private next(timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new QmpError(`QMP at ${this.path}: no reply in ${timeoutMs} ms`, this.path)), timeoutMs);
      this.waiters.push((m) => {
        clearTimeout(t);
        resolve(m);
      });
    });
  }

  /** Runs a command; resolves with its `return`, rejects with its error. */
  public async execute(command: string, args?: Record<string, unknown>, timeoutMs = 10000): Promise<unknown> {
    if (this.closed) throw new QmpError(`QMP at ${this.path}: closed`, this.path);
    const reply = this.next(timeoutMs);
    this.socket.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + "\n");
    const m = await reply;
    if ("error" in m) throw new QmpError(`QMP ${command} at ${this.path}: ${(m.error as { desc?: string }).desc ?? JSON.stringify(m.error)}`, this.path);
    return m.return;
  }

  /** Closes the connection. */
  public close(): void {
    this.socket.destroy();
  }
}

/** Connects, runs one command, closes. */
export async function qmpOnce(path: string, command: string, args?: Record<string, unknown>): Promise<unknown> {
  const s = await QmpSession.connect(path);
  try {
    return await s.execute(command, args);
  } finally {
    s.close();
  }
}
