/**
 * The real Pulumi CLI on the QEMU-direct backend (no libvirt; the lab chroot's QEMU 11.x):
 * examples/quickstart up -> preview -> destroy, and examples/fleet up -> destroy from a template
 * defined in the direct backend's state directory.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { QemuDirectBackend } from "../../provider/backends/qemu/direct";
import { listFiles } from "../support/domains";
import { labQemu } from "../support/lab";
import { REPO_ROOT } from "../support/paths";
import { PulumiStack } from "../support/pulumi";

const H = "5d5b0f1d-128b-4517-8e65-b258a8734c1d";

describe("pulumi CLI end to end on the QEMU-direct backend (no libvirt) — each case its own stack, in any order", function () {
  this.timeout(600000);
  let stateDir: string;
  let imageDir: string;
  let uri: string;
  before(() => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-e2e-direct-"));
    imageDir = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-e2e-direct-img-"));
    uri = `qemu-direct://${stateDir}?emulator=${encodeURIComponent(labQemu("new"))}`;
  });
  after(async () => {
    const b = new QemuDirectBackend(uri);
    for (const n of await b.listNames()) await b.destroy(n).catch(() => undefined);
    fs.rmSync(stateDir, { recursive: true, force: true });
    fs.rmSync(imageDir, { recursive: true, force: true });
  });

  it("examples/quickstart: up, the guest sees the hwuuid, no changes on preview, destroy leaves nothing", async () => {
    const s = new PulumiStack(path.join(REPO_ROOT, "examples", "quickstart"), "quickstart-direct", "e2e");
    s.init({ "libvirt:uri": uri, name: "qs-direct", shutdownTimeoutSeconds: "0" });
    try {
      s.ok("up", "--yes");
      const out = s.outputs();
      expect(out.hwuuidMode).to.equal("native");
      expect(out.state).to.equal("running");
      expect(await new QemuDirectBackend(uri).queryGuestUuid("qs-direct")).to.equal(H);
      s.ok("preview", "--expect-no-changes");
      s.ok("destroy", "--yes");
      expect(fs.readdirSync(stateDir).filter((f) => !f.startsWith("."))).to.deep.equal([]);
    } finally {
      s.run("destroy", "--yes");
    }
  });

  it("examples/fleet: two members cloned from a direct template, each guest with its own hwuuid; destroy removes them and their overlays", async () => {
    const b = new QemuDirectBackend(uri);
    const image = path.join(imageDir, "tmpl.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", image, "64M"]);
    await b.define(`<domain type='qemu'><name>tmpl</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>
      <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${image}'/><target dev='vda' bus='virtio'/></disk>
      <interface type='user'><model type='virtio'/></interface><serial type='pty'/></devices></domain>`);
    const before = listFiles(imageDir);
    const s = new PulumiStack(path.join(REPO_ROOT, "examples", "fleet"), "fleet-direct", "e2e");
    s.init({ "libvirt:uri": uri, template: "tmpl", size: "2", namePattern: "fd-{key}", shutdownTimeoutSeconds: "0" });
    try {
      s.ok("up", "--yes");
      const members = s.outputs().members as { name: string; guestUuid: string }[];
      expect(members.map((m) => m.name)).to.deep.equal(["fd-1", "fd-2"]);
      for (const m of members) expect(await b.queryGuestUuid(m.name)).to.equal(m.guestUuid);
      expect(members[0]!.guestUuid).to.not.equal(members[1]!.guestUuid);
      s.ok("destroy", "--yes");
      expect(await b.listNames()).to.deep.equal(["tmpl"]);
      expect(listFiles(imageDir)).to.deep.equal(before);
    } finally {
      s.run("destroy", "--yes");
    }
  });
});
