/**
 * A minimal RFB (VNC) client for tests: the version handshake, the security types the server
 * offers, and VNC authentication (type 2: DES of the server's challenge, keyed by the password).
 * Node's OpenSSL 3 keeps DES in its legacy provider, so the one DES step runs in a child
 * `node --openssl-legacy-provider` (the password goes through its stdin, not its argv).
 */
import { spawnSync } from "node:child_process";
import * as net from "node:net";

/** What the server answered. */
export interface RfbResult {
  /** The server's version line, e.g. `RFB 003.008`. */
  readonly version: string;
  /** The security types offered (1 none, 2 VNC authentication, ...). */
  readonly securityTypes: number[];
  /** With a password given: the SecurityResult (0 = accepted, 1 = failed). */
  readonly authResult?: number;
}

/** VNC authentication's response: DES-ECB of the 16-byte challenge, key = password (8 bytes, zero-padded, each byte bit-reversed). */
function desResponse(challenge: Buffer, password: string): Buffer {
  const script = `const c = require("crypto"); const [pw, ch] = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const key = Buffer.alloc(8); Buffer.from(pw, "latin1").copy(key, 0, 0, 8);
    for (let i = 0; i < 8; i++) { let b = key[i], r = 0; for (let j = 0; j < 8; j++) { r = (r << 1) | (b & 1); b >>= 1; } key[i] = r; }
    const d = c.createCipheriv("des-ecb", key, null); d.setAutoPadding(false);
    process.stdout.write(Buffer.concat([d.update(Buffer.from(ch, "hex")), d.final()]).toString("hex"));`;
  const r = spawnSync(process.execPath, ["--openssl-legacy-provider", "-e", script], {
    input: JSON.stringify([password, challenge.toString("hex")]),
    encoding: "utf8",
    timeout: 10000,
  });
  if (r.status !== 0) throw new Error(`DES for VNC authentication failed: ${r.stderr}`);
  return Buffer.from(r.stdout, "hex");
}

/** Connects to a VNC server, reads what it offers and, when `password` is given, authenticates with type 2. */
export function rfbHandshake(host: string, port: number, password?: string, timeoutMs = 10000): Promise<RfbResult> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ host, port });
    let buf = Buffer.alloc(0);
    let step: "version" | "types" | "challenge" | "result" = "version";
    let version = "";
    let types: number[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`VNC server at ${host}:${port}: no answer in ${timeoutMs} ms (step ${step})`));
    }, timeoutMs);
    const done = (r: RfbResult) => {
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    s.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`VNC server at ${host}:${port}: ${e.message}`));
    });
    s.on("data", (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (step === "version") {
          if (buf.length < 12) return;
          version = buf.subarray(0, 11).toString("latin1");
          buf = buf.subarray(12);
          s.write("RFB 003.008\n");
          step = "types";
        } else if (step === "types") {
          const count = buf[0];
          if (count === undefined || buf.length < 1 + count) return;
          types = [...buf.subarray(1, 1 + count)];
          buf = buf.subarray(1 + count);
          if (password === undefined || !types.includes(2)) return done({ version, securityTypes: types });
          s.write(Buffer.from([2]));
          step = "challenge";
        } else if (step === "challenge") {
          if (buf.length < 16) return;
          s.write(desResponse(buf.subarray(0, 16), password ?? ""));
          buf = buf.subarray(16);
          step = "result";
        } else {
          if (buf.length < 4) return;
          return done({ version, securityTypes: types, authResult: buf.readUInt32BE(0) });
        }
      }
    });
  });
}
