/**
 * The QMP client against a fake QMP server on a unix socket: every protocol fault is a QmpError
 * naming the socket (never a crash of the process), every wait is bounded, and the socket is
 * closed whenever the session cannot go on.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { QmpError, QmpSession, qmpOnce } from "../../provider/backends/qemu/qmp";
import { rejection } from "../support/async";

/** The fix of a QMP wait that ran out. */
const NO_ANSWER_FIX = "check that QEMU is running and not paused or overloaded (see its log), then try again";

const GREETING =
  JSON.stringify({ QMP: { version: { qemu: { major: 9, minor: 2, micro: 0 } }, capabilities: [] } }) + "\n";

/** A fake QMP server: `onLine` answers each line the client sends. */
class FakeQmp {
  public readonly server: net.Server;
  public readonly sockets: net.Socket[] = [];
  public readonly closed: Promise<void>;
  private closedResolve!: () => void;
  constructor(
    public readonly socketPath: string,
    onConnect: (s: net.Socket) => void,
    onLine: (s: net.Socket, msg: Record<string, unknown>) => void = () => undefined,
  ) {
    this.closed = new Promise((r) => (this.closedResolve = r));
    this.server = net.createServer((s) => {
      this.sockets.push(s);
      s.on("close", () => this.closedResolve());
      s.on("error", () => undefined);
      let buf = "";
      s.on("data", (d) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.trim()) onLine(s, JSON.parse(line));
        }
      });
      onConnect(s);
    });
  }
  listen(): Promise<void> {
    return new Promise((r) => this.server.listen(this.socketPath, r));
  }
  stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** Answers qmp_capabilities with {} and everything else with `reply(msg)`. */
function answering(reply: (s: net.Socket, msg: Record<string, unknown>) => void) {
  return (s: net.Socket, msg: Record<string, unknown>) => {
    if (msg.execute === "qmp_capabilities") s.write(JSON.stringify({ return: {} }) + "\n");
    else reply(s, msg);
  };
}

function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms)),
  ]);
}

describe("QMP client (fake QMP server on a unix socket)", function () {
  this.timeout(20000);
  let dir: string;
  let sock: string;
  let fake: FakeQmp | undefined;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-qmp-"));
    sock = path.join(dir, "qmp.sock");
  });
  afterEach(async () => {
    await fake?.stop();
    fake = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("greeting, capabilities, a command; events are skipped", async () => {
    fake = new FakeQmp(
      sock,
      (s) => s.write(GREETING),
      answering((s) => {
        s.write(JSON.stringify({ event: "RESUME", data: {} }) + "\n");
        s.write(JSON.stringify({ return: { UUID: "5d5b0f1d-128b-4517-8e65-b258a8734c1d" } }) + "\n");
      }),
    );
    await fake.listen();
    expect(await qmpOnce(sock, "query-uuid")).to.deep.equal({ UUID: "5d5b0f1d-128b-4517-8e65-b258a8734c1d" });
  });

  it("a command's error is a QmpError with QEMU's text", async () => {
    fake = new FakeQmp(
      sock,
      (s) => s.write(GREETING),
      answering((s) => s.write(JSON.stringify({ error: { class: "GenericError", desc: "no such thing" } }) + "\n")),
    );
    await fake.listen();
    const e = await rejection(qmpOnce(sock, "query-nothing"));
    expect(QmpError.isInstance(e), e.stack).to.equal(true);
    expect(e.message).to.equal(
      `QMP query-nothing at ${sock}: no such thing; fix: QEMU refused query-nothing: check the command and its arguments against the QMP reference of this QEMU version`,
    );
  });

  it("a line that is not JSON is a QmpError naming the socket, not a crash; the socket is closed", async () => {
    fake = new FakeQmp(
      sock,
      (s) => s.write(GREETING),
      answering((s) => s.write("this is not json\n")),
    );
    await fake.listen();
    const e = await rejection(qmpOnce(sock, "query-status"));
    expect(QmpError.isInstance(e), e.stack).to.equal(true);
    expect(e.message).to.contain(sock).and.contain("not JSON").and.contain("this is not json");
    await within(2000, fake.closed, "closing the socket");
  });

  it("a non-JSON greeting is a QmpError, and so is a JSON greeting that is not QMP's", async () => {
    fake = new FakeQmp(sock, (s) => s.write("<html>\n"));
    await fake.listen();
    expect((await rejection(QmpSession.connect(sock, 2000))).message).to.contain("not JSON");
    await fake.stop();
    fake = new FakeQmp(sock, (s) => s.write(JSON.stringify({ hello: 1 }) + "\n"));
    await fake.listen();
    expect((await rejection(QmpSession.connect(sock, 2000))).message).to.contain("not a QMP greeting");
  });

  it("no greeting: a bounded QmpError naming what it waited for, and the socket is closed", async () => {
    fake = new FakeQmp(sock, () => undefined);
    await fake.listen();
    const t0 = Date.now();
    const e = await rejection(QmpSession.connect(sock, 300));
    expect(QmpError.isInstance(e)).to.equal(true);
    expect(e.message).to.equal(`QMP at ${sock}: no greeting in 300 ms; fix: ${NO_ANSWER_FIX}`);
    expect(Date.now() - t0).to.be.below(3000);
    await within(2000, fake.closed, "closing the socket after the greeting timeout");
  });

  it("no reply to a command: a bounded QmpError naming the command, and the socket is closed", async () => {
    fake = new FakeQmp(
      sock,
      (s) => s.write(GREETING),
      answering(() => undefined),
    );
    await fake.listen();
    const s = await QmpSession.connect(sock, 2000);
    const e = await rejection(s.execute("query-status", undefined, 300));
    expect(e.message).to.equal(`QMP at ${sock}: no reply to query-status in 300 ms; fix: ${NO_ANSWER_FIX}`);
    await within(2000, fake.closed, "closing the socket after the reply timeout");
    expect((await rejection(s.execute("query-status"))).message).to.contain(sock);
  });

  it("an over-long line is refused with a QmpError, not buffered without limit", async () => {
    fake = new FakeQmp(
      sock,
      (s) => s.write(GREETING),
      answering((s) => s.write("x".repeat(64 * 1024))),
    );
    await fake.listen();
    const s = await QmpSession.connect(sock, 2000, 16 * 1024);
    const e = await rejection(s.execute("query-status"));
    expect(QmpError.isInstance(e)).to.equal(true);
    expect(e.message).to.contain(sock).and.contain("longer than 16384 bytes");
    await within(2000, fake.closed, "closing the socket");
  });

  it("an over-long line with its newline is refused too", async () => {
    fake = new FakeQmp(
      sock,
      (s) => s.write(GREETING),
      answering((s) => s.write(JSON.stringify({ return: "y".repeat(32 * 1024) }) + "\n")),
    );
    await fake.listen();
    const s = await QmpSession.connect(sock, 2000, 16 * 1024);
    expect((await rejection(s.execute("query-status"))).message).to.contain("longer than 16384 bytes");
  });

  it("the server closing mid-command is a QmpError", async () => {
    fake = new FakeQmp(
      sock,
      (s) => s.write(GREETING),
      answering((s) => s.destroy()),
    );
    await fake.listen();
    const e = await rejection(qmpOnce(sock, "query-status"));
    expect(QmpError.isInstance(e)).to.equal(true);
    expect(e.message).to.contain(sock).and.contain("closed");
  });

  it("nothing listening: a QmpError naming the socket", async () => {
    const e = await rejection(QmpSession.connect(path.join(dir, "nobody.sock"), 1000));
    expect(QmpError.isInstance(e)).to.equal(true);
    expect(e.message).to.contain("nobody.sock");
  });
});
