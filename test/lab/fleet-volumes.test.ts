/**
 * DomainFleet planning its images on real daemons (the SDK under Pulumi's mocks: the plan is
 * made while the program runs, against the real libvirt): over qemu+ssh:// a template disk
 * outside any pool is refused at once, naming the disk, the directory and the fix, and with
 * `definePools: true` the fleet defines and starts a dir pool for it; on a local URI the rule
 * picks volumes only when every template image is a pool volume (libvirt 9.0).
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runVirsh } from "../../provider/backends/virsh/exec";
import { poolNameFor } from "../../provider/backends/volumes";
import { DomainFleet } from "../../sdk/fleet";
import { removeDomains, RUN_PREFIX } from "../support/domains";
import { requireLab } from "../support/lab";
import { usePulumiMocks } from "../support/pulumi-mocks";
import { inChroot, requireSshLab } from "../support/remote";

async function defineTemplate(uri: string, name: string, image: string): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-fv-"));
  try {
    fs.writeFileSync(
      path.join(dir, "t.xml"),
      `<domain type='qemu'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
      <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
      <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${image}'/><target dev='vda' bus='virtio'/></disk>
      </devices></domain>`,
    );
    await runVirsh(uri, ["define", path.join(dir, "t.xml")]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function construct(name: string, args: ConstructorParameters<typeof DomainFleet>[1]): DomainFleet | Error {
  try {
    return new DomainFleet(name, args);
  } catch (e) {
    return e as Error;
  }
}

describe("DomainFleet images through libvirt's storage API, planned against real daemons", function () {
  this.timeout(180000);
  usePulumiMocks();

  describe("over qemu+ssh:// (libvirt 12.x)", () => {
    const prefix = `${RUN_PREFIX}-fv-`;
    let uri: string;
    let dir: string;
    let pool: string;
    before(async () => {
      const lab = await requireSshLab();
      uri = lab.uri;
      // A directory on the hypervisor that is no pool's, with the template's image (a user there made it).
      dir = path.posix.join(path.posix.dirname(lab.poolDir), `${prefix}dir`);
      pool = poolNameFor(dir);
      fs.mkdirSync(inChroot(lab, dir));
      execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", inChroot(lab, path.posix.join(dir, "t.qcow2")), "16M"]);
      await defineTemplate(uri, `${prefix}tmpl`, path.posix.join(dir, "t.qcow2"));
    });
    after(async () => {
      if (!uri) return;
      await removeDomains(uri, prefix);
      await runVirsh(uri, ["pool-destroy", pool]).catch(() => undefined);
      await runVirsh(uri, ["pool-undefine", pool]).catch(() => undefined);
      const lab = await requireSshLab();
      fs.rmSync(inChroot(lab, dir), { recursive: true, force: true });
    });

    it("a template disk outside any pool: refused at once naming the disk, the directory and the fix", () => {
      const e = construct("fv", { template: { name: `${prefix}tmpl`, uri }, members: 2 });
      expect(e).to.be.instanceOf(Error);
      const m = (e as Error).message;
      expect(m)
        .to.contain("/domain/devices/disk[target=vda]")
        .and.contain(`${dir}/t.qcow2 is in ${dir}, which is no storage pool's`)
        .and.contain(`pool-define-as NAME dir --target ${dir}`)
        .and.contain("definePools: true");
      expect(m.match(/target=vda/g)?.length, "one line for the disk, not one per member").to.equal(1);
    });

    it("definePools: true defines, starts and autostarts a dir pool for it; members' disks become its volumes", async () => {
      const f = construct("fv", { template: { name: `${prefix}tmpl`, uri }, members: 2, definePools: true });
      expect(f, (f as Error).message).to.be.instanceOf(DomainFleet);
      const info = (await runVirsh(uri, ["pool-info", "--pool", pool])).stdout;
      expect(info)
        .to.match(/^State:\s+running$/m)
        .and.match(/^Autostart:\s+yes$/m);
      const disks = (f as DomainFleet).plan.members.map((m) => m.disks[0]!.volume);
      expect(disks).to.deep.equal([
        { pool, name: `stack-fv-1-vda.qcow2` },
        { pool, name: `stack-fv-2-vda.qcow2` },
      ]);
      // A second run finds the pool and uses it.
      expect(
        construct("fv", { template: { name: `${prefix}tmpl`, uri }, members: 1, definePools: true }),
      ).to.be.instanceOf(DomainFleet);
    });
  });

  describe("over qemu+ssh:// (libvirt 12.x): a template disk of type='volume'", () => {
    const prefix = `${RUN_PREFIX}-fw-`;
    let lab: Awaited<ReturnType<typeof requireSshLab>>;
    before(async () => {
      lab = await requireSshLab();
      await runVirsh(lab.uri, ["vol-create-as", lab.pool, `${prefix}t.qcow2`, "16M", "--format", "qcow2"]);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-fw-"));
      try {
        fs.writeFileSync(
          path.join(dir, "t.xml"),
          `<domain type='qemu'><name>${prefix}tmpl</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
          <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
          <disk type='volume' device='disk'><driver name='qemu' type='qcow2'/><source pool='${lab.pool}' volume='${prefix}t.qcow2'/><target dev='vda' bus='virtio'/></disk>
          </devices></domain>`,
        );
        await runVirsh(lab.uri, ["define", path.join(dir, "t.xml")]);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
    after(async () => {
      if (!lab) return;
      await removeDomains(lab.uri, prefix);
      await runVirsh(lab.uri, ["vol-delete", "--pool", lab.pool, "--vol", `${prefix}t.qcow2`]).catch(() => undefined);
    });

    it("is resolved to its volume (vol-path): members' disks are overlay volumes of that pool, file disks at their paths", () => {
      const f = construct("fw", { template: { name: `${prefix}tmpl`, uri: lab.uri }, members: 1 });
      expect(f, (f as Error).message).to.be.instanceOf(DomainFleet);
      const m = (f as DomainFleet).plan.members[0]!;
      expect(m.disks[0]!.source).to.equal(path.posix.join(lab.poolDir, `${prefix}t.qcow2`));
      expect(m.disks[0]!.volume).to.deep.equal({ pool: lab.pool, name: "stack-fw-1-vda.qcow2" });
      expect(m.xml).to.contain(`<source file='${path.posix.join(lab.poolDir, "stack-fw-1-vda.qcow2")}'/>`);
    });
  });

  describe("on a local URI (libvirt 9.0): volumes only when every template image is a pool volume", () => {
    const prefix = `${RUN_PREFIX}-fl-`;
    let uri: string;
    let poolDir: string;
    let loose: string;
    before(async () => {
      const host = await requireLab("host");
      uri = host.uri;
      poolDir = path.join(host.imageDir, `${prefix}pool`);
      await runVirsh(uri, ["pool-create-as", `${prefix}pool`, "dir", "--target", poolDir, "--build"]);
      await runVirsh(uri, ["vol-create-as", `${prefix}pool`, "t.qcow2", "16M", "--format", "qcow2"]);
      await defineTemplate(uri, `${prefix}pooled`, path.join(poolDir, "t.qcow2"));
      loose = path.join(host.imageDir, `${prefix}loose.qcow2`);
      execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", loose, "16M"]);
      await defineTemplate(uri, `${prefix}files`, loose);
    });
    after(async () => {
      if (!uri) return;
      await removeDomains(uri, prefix);
      await runVirsh(uri, ["pool-destroy", `${prefix}pool`]).catch(() => undefined);
      fs.rmSync(poolDir, { recursive: true, force: true });
      fs.rmSync(loose, { force: true });
    });

    it("a template whose disk is a pool volume: members' disks are volumes of that pool", () => {
      const f = construct("fl", { template: { name: `${prefix}pooled`, uri }, members: 1 });
      expect(f, (f as Error).message).to.be.instanceOf(DomainFleet);
      expect((f as DomainFleet).plan.members[0]!.disks[0]!.volume).to.deep.equal({
        pool: `${prefix}pool`,
        name: "stack-fl-1-vda.qcow2",
      });
    });

    it("a template whose disk is in no pool: files made on this machine, as before", () => {
      const f = construct("fl", { template: { name: `${prefix}files`, uri }, members: 1 });
      expect(f, (f as Error).message).to.be.instanceOf(DomainFleet);
      expect((f as DomainFleet).plan.members[0]!.disks[0]!.volume).to.equal(undefined);
    });
  });
});
