/**
 * The `libvirt-domain` command reads regular files only, checking the size before reading: a
 * device (`/dev/zero` would grow without end), a FIFO (would block forever) or a directory is
 * refused at once with a clear error. Run as a process (as a user runs it) under an address-space
 * limit and a timeout, so that a regression fails the test instead of eating the machine. In the lab
 * suite because it needs `prlimit` (util-linux; the unit suite needs npm packages only).
 */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { REPO_ROOT } from "../support/paths";
import { MAX_XML_BYTES } from "../../provider/xml/tree";

const BIN = path.join(REPO_ROOT, "bin", "libvirt-domain.js");

/** Runs the CLI with at most 2 GB of address space and 20 s. */
function cli(
  args: string[],
  stdin: "ignore" | number = "ignore",
): { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number } {
  const t0 = Date.now();
  const r = spawnSync("prlimit", ["--as=2000000000", "--", process.execPath, BIN, ...args], {
    encoding: "utf8",
    timeout: 20000,
    stdio: [stdin, "pipe", "pipe"],
  });
  if (r.error && (r.error as NodeJS.ErrnoException).code === "ENOENT")
    throw new Error("prlimit (util-linux) is needed");
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}

describe("libvirt-domain CLI: regular files only, size checked before reading", function () {
  this.timeout(60000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-cli-files-"));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("identity /dev/zero: refused at once, not read", () => {
    const r = cli(["identity", "/dev/zero"]);
    expect(r.status, r.stderr).to.equal(1);
    expect(r.stderr)
      .to.match(/^error: '\/dev\/zero' is not a regular file/)
      .and.contain("a character device")
      .and.contain("fix:");
    expect(r.ms).to.be.below(10000);
  });

  it("format on a FIFO: refused at once, never blocks", () => {
    const fifo = path.join(tmp, "domain.xml");
    expect(spawnSync("mkfifo", [fifo]).status).to.equal(0);
    const r = cli(["format", fifo]);
    expect(r.signal, "not killed by the timeout").to.equal(null);
    expect(r.status, r.stderr).to.equal(1);
    expect(r.stderr).to.contain(`'${fifo}' is not a regular file`).and.contain("a FIFO");
  });

  it("qemu-argv on a directory: refused, naming it", () => {
    const r = cli(["qemu-argv", tmp]);
    expect(r.status, r.stderr).to.equal(1);
    expect(r.stderr).to.contain(`'${tmp}' is not a regular file`).and.contain("a directory");
  });

  it("diff with a device as either file: refused (exit 2, diff's error status)", () => {
    const r = cli(["diff", "/dev/zero", "/dev/null"]);
    expect(r.status, r.stderr).to.equal(2);
    expect(r.stderr).to.contain("is not a regular file");
  });

  it("preview-report on /dev/zero or a FIFO: refused at once", () => {
    const r = cli(["preview-report", "/dev/zero"]);
    expect(r.status, r.stderr).to.equal(1);
    expect(r.stderr).to.contain("'/dev/zero' is not a regular file");
    const fifo = path.join(tmp, "preview.json");
    expect(spawnSync("mkfifo", [fifo]).status).to.equal(0);
    const f = cli(["preview-report", fifo]);
    expect(f.signal).to.equal(null);
    expect(f.stderr).to.contain("is not a regular file");
  });

  it("preview-report with /dev/zero on standard input: stops at the size limit", () => {
    const fd = fs.openSync("/dev/zero", "r");
    try {
      const r = cli(["preview-report"], fd);
      expect(r.signal).to.equal(null);
      expect(r.status, r.stderr).to.equal(2);
      expect(r.stderr).to.match(/standard input is larger than \d+ bytes/);
    } finally {
      fs.closeSync(fd);
    }
  });

  it("a regular file still works, and a symlink to one", () => {
    const f = path.join(tmp, "ok.xml");
    fs.writeFileSync(f, "<domain><name>ok</name><uuid>33721861-ccee-4dc2-858c-5f1e4629771f</uuid></domain>");
    fs.symlinkSync(f, path.join(tmp, "link.xml"));
    for (const p of [f, path.join(tmp, "link.xml")]) {
      const r = cli(["identity", p]);
      expect(r.status, r.stderr).to.equal(0);
      expect(JSON.parse(r.stdout).name).to.equal("ok");
    }
  });

  it("a file that is not UTF-8 is refused as not a text document", () => {
    const f = path.join(tmp, "latin1.xml");
    fs.writeFileSync(
      f,
      Buffer.concat([Buffer.from("<domain><name>caf"), Buffer.from([0xe9]), Buffer.from("</name></domain>")]),
    );
    const r = cli(["identity", f]);
    expect(r.status, r.stderr).to.equal(1);
    expect(r.stderr).to.contain("not an XML text document").and.contain("UTF-8");
  });

  it("a file over the limit is refused before reading", () => {
    const f = path.join(tmp, "big.xml");
    fs.writeFileSync(f, "");
    fs.truncateSync(f, MAX_XML_BYTES + 1);
    const r = cli(["identity", f]);
    expect(r.status, r.stderr).to.equal(1);
    expect(r.stderr).to.contain("document too large");
  });
});
