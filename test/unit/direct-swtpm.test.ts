/**
 * swtpm for the QEMU-direct backend (provider/backends/qemu/swtpm.ts) without a real swtpm: the
 * arguments it is started with (an argument array, libvirt's options), and a host without swtpm or
 * with a swtpm that refuses: the start fails naming swtpm, its message and the fix, before QEMU
 * runs. The real swtpm with QEMU 7.2 and 11.x is test/lab/direct-tpm.test.ts.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { QemuDirectBackend } from "../../provider/backends/qemu/direct";
import { swtpmArgs, swtpmReconfigureArgs, swtpmSetupArgs } from "../../provider/backends/qemu/swtpm";
import { SwtpmSpec } from "../../provider/qemu/tpm";

const files = { pid: "/s/d/swtpm.pid", log: "/s/d/swtpm.log", stamps: "/s/d/tpm.json" };
const spec = (over: Partial<SwtpmSpec> = {}): SwtpmSpec => ({
  path: "/domain/devices/tpm[1]",
  version: "2.0",
  socketPath: "/s/d/swtpm.sock",
  state: { type: "dir", path: "/s/d/swtpm/tpm2", written: false },
  persistentState: false,
  ...over,
});

describe("QEMU-direct swtpm (fakes)", function () {
  this.timeout(30000);

  it("swtpm's arguments: control socket, state, log, pid file, --terminate --daemon, --tpm2 for TPM 2.0", () => {
    expect(swtpmArgs(spec(), files)).to.deep.equal([
      "socket",
      "--ctrl",
      "type=unixio,path=/s/d/swtpm.sock,mode=0600",
      "--tpmstate",
      "dir=/s/d/swtpm/tpm2,mode=0600",
      "--log",
      "file=/s/d/swtpm.log",
      "--pid",
      "file=/s/d/swtpm.pid",
      "--terminate",
      "--daemon",
      "--tpm2",
    ]);
    const v12 = swtpmArgs(spec({ version: "1.2", state: { type: "file", path: "/keys/d.state" }, logLevel: 3 }), files);
    expect(v12).to.not.include("--tpm2");
    expect(v12).to.include("backend-uri=file:///keys/d.state");
    expect(v12).to.include("file=/s/d/swtpm.log,level=3");
  });

  it("swtpm_setup makes a new TPM with libvirt's arguments, and sets <active_pcr_banks> with --reconfigure", () => {
    expect(swtpmSetupArgs(spec(), "d:33721861-ccee-4dc2-858c-5f1e4629771f", files.log)).to.deep.equal([
      "--tpm2",
      "--tpm-state",
      "/s/d/swtpm/tpm2",
      "--vmid",
      "d:33721861-ccee-4dc2-858c-5f1e4629771f",
      "--logfile",
      "/s/d/swtpm.log",
      "--createek",
      "--create-ek-cert",
      "--create-platform-cert",
      "--lock-nvram",
      "--not-overwrite",
    ]);
    expect(swtpmSetupArgs(spec({ version: "1.2", state: { type: "file", path: "/k/s" } }), "d:u", "/l")).to.include(
      "file:///k/s",
    );
    expect(swtpmReconfigureArgs(spec({ pcrBanks: ["sha256", "sha384"] }), "/l")).to.deep.equal([
      "--tpm2",
      "--tpm-state",
      "/s/d/swtpm/tpm2",
      "--logfile",
      "/l",
      "--pcr-banks",
      "sha256,sha384",
      "--reconfigure",
    ]);
  });

  it("a path with a comma (swtpm's option separator) is refused naming it", () => {
    expect(() => swtpmArgs(spec({ state: { type: "dir", path: "/a,b", written: true } }), files)).to.throw(
      /comma.*fix: use a state directory/s,
    );
  });

  describe("start", () => {
    let dir: string;
    let b: QemuDirectBackend;
    const savedPath = process.env.PATH;
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-direct-swtpm-"));
      const emulator = path.join(dir, "fake-qemu");
      fs.writeFileSync(emulator, `#!/bin/sh\necho started > ${dir}/qemu-ran\nexit 1\n`, { mode: 0o755 });
      b = new QemuDirectBackend(`qemu-direct://${dir}/state?emulator=${emulator}`, { startTimeoutMs: 5000 });
    });
    afterEach(() => {
      process.env.PATH = savedPath;
      fs.rmSync(dir, { recursive: true, force: true });
    });
    const xml =
      "<domain type='qemu'><name>d</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os><devices><tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm></devices></domain>";

    async function startFails(): Promise<string> {
      try {
        await b.start("d");
      } catch (e) {
        return (e as Error).message;
      }
      throw new Error("start should have failed");
    }

    /** A directory holding fake `swtpm_setup` (succeeds) and, with `swtpm`, a fake swtpm; PATH is it alone. */
    function fakes(swtpm?: string): void {
      const bin = path.join(dir, "bin");
      fs.mkdirSync(bin);
      fs.writeFileSync(path.join(bin, "swtpm_setup"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
      if (swtpm) fs.writeFileSync(path.join(bin, "swtpm"), swtpm, { mode: 0o755 });
      process.env.PATH = bin;
    }

    it("without swtpm_setup or swtpm on PATH the start fails naming the one missing and how to install it; QEMU is not started", async () => {
      await b.define(xml);
      process.env.PATH = path.join(dir, "empty");
      const m = await startFails();
      expect(m).to.contain("swtpm_setup is not on PATH");
      expect(m).to.contain("/domain/devices/tpm[1]");
      expect(m).to.match(/fix: install swtpm-tools/);
      fakes();
      const m2 = await startFails();
      expect(m2).to.contain("swtpm is not on PATH");
      expect(m2).to.match(/fix: install swtpm/);
      expect(fs.existsSync(path.join(dir, "qemu-ran"))).to.equal(false);
    });

    it("a swtpm on PATH that cannot be run (not executable): an error naming swtpm with a fix, not a bare spawn error", async () => {
      await b.define(xml);
      fakes("#!/bin/sh\nexit 0\n");
      fs.chmodSync(path.join(dir, "bin", "swtpm"), 0o644);
      const m = await startFails();
      expect(m).to.contain("cannot start the TPM of d").and.contain("swtpm").and.contain("fix:");
      expect(fs.existsSync(path.join(dir, "qemu-ran"))).to.equal(false);
    });

    it("a swtpm that refuses: its message, the state and the socket are named; QEMU is not started", async () => {
      await b.define(xml);
      fakes("#!/bin/sh\necho 'swtpm: cannot do that' >&2\nexit 1\n");
      const m = await startFails();
      expect(m).to.contain("swtpm: cannot do that");
      expect(m).to.contain(path.join(dir, "state", "d", "swtpm.sock"));
      expect(m).to.contain(path.join(dir, "state", "d", "swtpm", "tpm2"));
      expect(fs.existsSync(path.join(dir, "qemu-ran"))).to.equal(false);
      // the state directory it made is the domain's, removed with it
      await b.undefine("d");
      expect(fs.existsSync(path.join(dir, "state", "d"))).to.equal(false);
    });
  });
});
