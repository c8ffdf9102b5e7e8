/**
 * examples/fleet with the real Pulumi CLI over a real qemu+ssh:// connection (the 12.x lab behind
 * its sshd). The template's disk is a volume of the lab's pool, whose directory exists only
 * inside the chroot: the members' disks can only be made through libvirt's storage API. One
 * stack, few steps: up 2 members (each guest sees its own hwuuid, over QMP through the same ssh
 * URI), no change on preview, destroy leaves only the template's volume.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runVirsh } from "../../provider/backends/virsh/exec";
import { VirshBackend } from "../../provider/backends/virsh/virsh-backend";
import { domainsWithPrefix, removeDomains, RUN_PREFIX } from "../support/domains";
import { REPO_ROOT } from "../support/paths";
import { PulumiStack } from "../support/pulumi";
import { requireSshLab, type SshLab } from "../support/remote";

describe("pulumi CLI end to end: examples/fleet over qemu+ssh:// (members' disks as volumes of the lab's pool)", function () {
  this.timeout(600000);
  let lab: SshLab;
  let s: PulumiStack;
  let v: VirshBackend;
  const prefix = `${RUN_PREFIX}-fs-`;
  const template = `${prefix}tmpl`;
  const templateVolume = `${template}.qcow2`;
  const virsh = async (...args: string[]): Promise<string> => (await runVirsh(lab.uri, args)).stdout;
  const volumes = async (): Promise<string[]> =>
    (await virsh("vol-list", "--pool", lab.pool))
      .split("\n")
      .map((l) => l.trim().split(/\s+/)[0] ?? "")
      .filter((n) => n.startsWith(prefix))
      .sort();

  before(async () => {
    lab = await requireSshLab();
    v = new VirshBackend(lab.uri);
    await virsh("vol-create-as", lab.pool, templateVolume, "64M", "--format", "qcow2");
    const image = path.posix.join(lab.poolDir, templateVolume);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-fs-"));
    try {
      const xml = path.join(dir, "t.xml");
      fs.writeFileSync(
        xml,
        `<domain type='qemu'><name>${template}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
        <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${image}'/><target dev='vda' bus='virtio'/></disk>
        <interface type='user'><mac address='52:54:00:00:bc:01'/><model type='virtio'/></interface></devices></domain>`,
      );
      await virsh("define", xml);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    s = new PulumiStack(path.join(REPO_ROOT, "examples", "fleet"), "fleet-ssh", "e2e");
    s.init({
      "libvirt:uri": lab.uri,
      template,
      size: "2",
      namePattern: `${prefix}{key}`,
      shutdownTimeoutSeconds: "0",
    });
  });
  after(async () => {
    s?.run("destroy", "--yes");
    if (!lab) return;
    await removeDomains(lab.uri, prefix);
    for (const n of await volumes()) await virsh("vol-delete", "--pool", lab.pool, "--vol", n);
  });

  it("up: 2 members, each disk an overlay volume backed by the template's; each guest sees its own hwuuid over QMP", async () => {
    s.ok("up", "--yes");
    const ms = s.outputs().members as { name: string; uuid: string; guestUuid: string }[];
    expect(ms.map((m) => m.name)).to.deep.equal([`${prefix}1`, `${prefix}2`]);
    for (const m of ms) {
      expect(await v.queryGuestUuid(m.name), m.name).to.equal(m.guestUuid);
      expect(await v.domuuid(m.name)).to.equal(m.uuid);
    }
    expect(new Set(ms.map((m) => m.guestUuid)).size).to.equal(2);
    expect(await volumes()).to.deep.equal([`${prefix}1-vda.qcow2`, `${prefix}2-vda.qcow2`, templateVolume]);
    const ov = await virsh("vol-dumpxml", "--pool", lab.pool, "--vol", `${prefix}1-vda.qcow2`);
    expect(ov).to.contain(`<path>${path.posix.join(lab.poolDir, templateVolume)}</path>`);
    expect(await v.dumpxmlInactive(`${prefix}1`)).to.contain(
      `<source file='${path.posix.join(lab.poolDir, `${prefix}1-vda.qcow2`)}'/>`,
    );
    expect(fs.existsSync(lab.poolDir), "the pool's directory on this machine").to.equal(false);
  });

  it("preview --expect-no-changes passes", () => {
    s.ok("preview", "--expect-no-changes");
  });

  it("destroy leaves only the template: its domain and its volume", async () => {
    s.ok("destroy", "--yes");
    expect(await domainsWithPrefix(lab.uri, prefix)).to.deep.equal([template]);
    expect(await volumes()).to.deep.equal([templateVolume]);
  });
});
