/**
 * QEMU-direct NVRAM files (UEFI firmware) with a fake emulator that refuses to start: the NVRAM
 * is made from `<nvram template>` before QEMU runs (a copy, never over a file), recorded, and
 * removed at undefine only while it is still the file we made; a missing template is an error
 * naming the fix. The real QEMU boots OVMF in the lab suite (test/lab/efi.test.ts).
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { QemuDirectBackend } from "../../provider/backends/qemu/direct";

const xml = (name: string, nvram: string) =>
  `<domain type='qemu'><name>${name}</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type><loader readonly='yes' type='pflash'>/nonexistent/OVMF_CODE.fd</loader>${nvram}</os><devices/></domain>`;

describe("QEMU-direct NVRAM from the template (fake emulator)", function () {
  this.timeout(30000);
  let dir: string;
  let template: string;
  let b: QemuDirectBackend;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-direct-nvram-"));
    template = path.join(dir, "VARS.fd");
    fs.writeFileSync(template, Buffer.alloc(64 * 1024, 0x5a), { mode: 0o644 });
    const emulator = path.join(dir, "fake-qemu");
    fs.writeFileSync(emulator, "#!/bin/sh\necho 'fake qemu: refusing' >&2\nexit 1\n", { mode: 0o755 });
    b = new QemuDirectBackend(`qemu-direct://${dir}/state?emulator=${emulator}`, { startTimeoutMs: 5000 });
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function startFails(name: string): Promise<string> {
    try {
      await b.start(name);
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error("start should have failed");
  }

  it("makes STATE/NAME/NAME_VARS.fd from the template before QEMU starts, records it, removes it at undefine", async () => {
    await b.define(xml("d", `<nvram template='${template}'/>`));
    const nvram = path.join(dir, "state", "d", "d_VARS.fd");
    expect(fs.existsSync(nvram), "not made at define").to.equal(false);
    expect(await startFails("d")).to.contain("fake qemu: refusing");
    expect(fs.readFileSync(nvram)).to.deep.equal(fs.readFileSync(template));
    expect(fs.statSync(nvram).mode & 0o777).to.equal(0o644);
    const stamps = JSON.parse(fs.readFileSync(path.join(dir, "state", "d", "nvram.json"), "utf8")) as {
      path: string;
    }[];
    expect(stamps.map((s) => s.path)).to.deep.equal([nvram]);
    // A second start uses the file as it is (the guest's variables), never a new copy.
    fs.writeFileSync(nvram, "guest variables");
    await startFails("d");
    expect(fs.readFileSync(nvram, "utf8")).to.equal("guest variables");
    fs.writeFileSync(nvram, Buffer.alloc(64 * 1024, 0x5a)); // same inode: still ours
    await b.undefine("d");
    expect(fs.existsSync(nvram)).to.equal(false);
    expect(fs.existsSync(path.join(dir, "state", "d")), "the directory, empty, is gone").to.equal(false);
    expect(fs.readFileSync(template)).to.deep.equal(Buffer.alloc(64 * 1024, 0x5a));
  });

  it("an NVRAM path given in <nvram>: made there; a file put there after ours was removed is not ours and stays", async () => {
    const nvram = path.join(dir, "elsewhere_VARS.fd");
    await b.define(xml("e", `<nvram template='${template}'>${nvram}</nvram>`));
    await startFails("e");
    expect(fs.existsSync(nvram)).to.equal(true);
    fs.rmSync(nvram);
    fs.writeFileSync(nvram, "a user's file");
    await b.undefine("e");
    expect(fs.readFileSync(nvram, "utf8")).to.equal("a user's file");
  });

  it("an existing NVRAM file that is not ours is used and never removed", async () => {
    const nvram = path.join(dir, "users_VARS.fd");
    fs.writeFileSync(nvram, "the user's variables");
    await b.define(xml("u", `<nvram template='${template}'>${nvram}</nvram>`));
    await startFails("u");
    expect(fs.readFileSync(nvram, "utf8")).to.equal("the user's variables");
    expect(fs.existsSync(path.join(dir, "state", "u", "nvram.json"))).to.equal(false);
    await b.undefine("u");
    expect(fs.readFileSync(nvram, "utf8")).to.equal("the user's variables");
  });

  it("a missing NVRAM without a template: start fails naming the file and the fix; nothing is made", async () => {
    await b.define(xml("n", ""));
    const msg = await startFails("n");
    const nvram = path.join(dir, "state", "n", "n_VARS.fd");
    expect(msg).to.contain(nvram).and.contain("template=").and.contain("fix:");
    expect(msg).to.not.contain("fake qemu");
    expect(fs.existsSync(nvram)).to.equal(false);
  });

  it("<nvram type='file'>: the NVRAM is made at its <source file> from the template", async () => {
    const nvram = path.join(dir, "typed_VARS.fd");
    await b.define(xml("t", `<nvram type='file' template='${template}'><source file='${nvram}'/></nvram>`));
    expect(await startFails("t")).to.contain("fake qemu: refusing");
    expect(fs.readFileSync(nvram)).to.deep.equal(fs.readFileSync(template));
    await b.undefine("t");
    expect(fs.existsSync(nvram), "ours, removed").to.equal(false);
  });

  it("an NVRAM in another format than its template is refused at start (libvirt converts none); nothing is made", async () => {
    const nvram = path.join(dir, "q_VARS.qcow2");
    await b.define(xml("q", `<nvram template='${template}' templateFormat='raw' format='qcow2'>${nvram}</nvram>`));
    const msg = await startFails("q");
    expect(msg).to.contain("conversion of the nvram template to another target format is not supported");
    expect(msg).to.contain("fix:").and.not.contain("fake qemu");
    expect(fs.existsSync(nvram)).to.equal(false);
  });
});
