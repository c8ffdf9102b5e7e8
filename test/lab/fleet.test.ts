/**
 * Fleet cloning on real libvirt (12.x): a template with a 1 GiB image, five members planned by
 * the fleet planner and made by the DomainDisk and Domain providers, wired as DomainFleet wires
 * them. Each member's guest UUID is read over QMP; the template image's checksum must not change.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { VirshBackend } from "../../provider/backends/virsh/virsh-backend";
import * as disk from "../../provider/dynamic/disk";
import * as impl from "../../provider/dynamic/impl";
import { MemberPlan, planFleet } from "../../provider/fleet/plan";
import { checkAndCreate, domainsWithPrefix, removeDomains, RUN_PREFIX } from "../support/domains";
import { Lab, requireLab } from "../support/lab";
import { sha256File } from "../support/files";

const H = "5d5b0f1d-128b-4517-8e65-b258a8734c1d";

/** What DomainFleet does for one member: its disks, then its Domain. */
async function applyMember(m: MemberPlan, uri: string, digest: string) {
  const disks: Record<string, unknown>[] = [];
  for (const d of m.disks.filter((x) => x.mode !== "share")) {
    const c = await disk.check(
      {},
      { path: d.path, source: d.source, sourceFormat: d.sourceFormat, mode: d.mode, replaceTrigger: digest },
    );
    expect(c.failures).to.deep.equal([]);
    disks.push((await disk.create(c.inputs)).outs);
  }
  const dom = await checkAndCreate({
    name: m.name,
    xml: m.xml,
    hwuuid: m.hwuuid,
    connection: { uri },
    shutdownTimeoutSeconds: 0,
    replaceTrigger: digest,
  });
  return { disks, dom };
}

describe("fleet of 5 from a template with a 1 GiB image (new lab)", function () {
  this.timeout(600000);
  let lab: Lab;
  const prefix = `${RUN_PREFIX}-f-`;
  let image: string;
  let checksum: string;
  let roDir: string;
  before(async () => {
    lab = await requireLab("new");
    image = path.join(lab.imageDir, `${prefix}tmpl.qcow2`);
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", image, "1G"]);
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -q -P 0x5a 0 1G", image]);
    checksum = sha256File(image);
    const v = new VirshBackend(lab.uri);
    await v.define(`<domain type='qemu'><name>${prefix}tmpl</name><hwuuid>${H}</hwuuid><memory unit='MiB'>64</memory><vcpu>1</vcpu>
      <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
      <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${image}'/><target dev='vda' bus='virtio'/><serial>TMPL-ROOT</serial></disk>
      <interface type='user'><mac address='52:54:00:00:aa:01'/><model type='virtio'/></interface><serial type='pty'/></devices></domain>`);
    roDir = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-ro-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", roDir]);
  });
  after(async () => {
    if (roDir) {
      execFileSync("umount", [roDir]);
      fs.rmdirSync(roDir);
    }
    if (!lab) return;
    await removeDomains(lab.uri, prefix);
    for (const f of fs.readdirSync(lab.imageDir)) if (f.startsWith(prefix)) fs.rmSync(path.join(lab.imageDir, f));
  });

  it("makes 5 members: each guest sees its planned hwuuid, each has its own uuid; overlays are small; destroy removes them; the template image is unchanged", async () => {
    const v = new VirshBackend(lab.uri);
    const plan = planFleet({
      fleetName: `${prefix}web`,
      project: "lab",
      stack: "test",
      keys: ["1", "2", "3", "4", "5"],
      hwuuidPolicy: { kind: "derive" },
      templateXml: await v.dumpxmlInactive(`${prefix}tmpl`),
    });
    expect(plan.refusals).to.deep.equal([]);
    const made = await Promise.all(plan.members.map((m) => applyMember(m, lab.uri, plan.templateDigest)));
    const templateUuid = await v.domuuid(`${prefix}tmpl`);
    const uuids = new Set<string>();
    for (const [i, m] of plan.members.entries()) {
      expect(await v.queryGuestUuid(m.name), m.name).to.equal(m.hwuuid);
      const u = await v.domuuid(m.name);
      expect(u).to.not.equal(templateUuid);
      uuids.add(u);
      expect(made[i]!.disks[0]!.sizeBytes, "an overlay, not a copy").to.be.below(16 * 1024 * 1024);
      expect(made[i]!.dom.outs.macAddresses).to.deep.equal(m.macs);
    }
    expect(uuids.size).to.equal(5);
    expect(new Set(plan.members.map((m) => m.hwuuid)).size).to.equal(5);
    expect(await v.domstate(`${prefix}tmpl`)).to.equal("shut off");
    for (const [i, m] of plan.members.entries()) {
      await impl.remove(m.name, made[i]!.dom.outs);
      for (const d of made[i]!.disks) await disk.remove(d.path as string, d);
    }
    expect(fs.readdirSync(lab.imageDir).filter((f) => f.startsWith(`${prefix}web`))).to.deep.equal([]);
    expect(await domainsWithPrefix(lab.uri, `${prefix}web`)).to.deep.equal([]);
    expect(sha256File(image), "template image unchanged").to.equal(checksum);
  });

  it("a member whose disk directory is unwritable fails, leaves no debris, and the others stay intact", async () => {
    const v = new VirshBackend(lab.uri);
    const plan = planFleet({
      fleetName: `${prefix}db`,
      project: "lab",
      stack: "test",
      keys: ["1", "2", "3"],
      hwuuidPolicy: { kind: "derive" },
      templateXml: await v.dumpxmlInactive(`${prefix}tmpl`),
    });
    const [first, second, third] = plan.members;
    if (!first || !second || !third) throw new Error(`planFleet gave ${plan.members.length} members for 3 keys`);
    // Member 2's images go to a read-only file system.
    const bad: MemberPlan = {
      ...second,
      disks: second.disks.map((d) => ({ ...d, path: path.join(roDir, path.basename(d.path)) })),
    };
    const results = await Promise.allSettled(
      [first, bad, third].map((m) => applyMember(m, lab.uri, plan.templateDigest)),
    );
    expect(results.map((r) => r.status)).to.deep.equal(["fulfilled", "rejected", "fulfilled"]);
    const err = (results[1] as PromiseRejectedResult).reason as Error;
    expect(err.message).to.match(/^path: cannot write .*read-only file system.*Fix: check that/i);
    expect(fs.readdirSync(roDir)).to.deep.equal([]);
    expect(await v.exists(bad.name)).to.equal(false);
    for (const m of [first, third]) expect(await v.queryGuestUuid(m.name)).to.equal(m.hwuuid);
    for (const r of results) {
      if (r.status !== "fulfilled") continue;
      await impl.remove(r.value.dom.id, r.value.dom.outs);
      for (const d of r.value.disks) await disk.remove(d.path as string, d);
    }
    expect(sha256File(image), "template image unchanged").to.equal(checksum);
  });
});
