/**
 * Storage volumes through libvirt (provider/backends/volumes.ts) on real daemons: the 12.x lab
 * over qemu+ssh://, whose pool directory exists only inside its chroot (so nothing may touch
 * the hypervisor's files directly), and libvirt 9.0 locally (a transient pool the test makes).
 * Only steps that play a user on the hypervisor write its files; the provider code never does.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { VolumeStore } from "../../provider/backends/volumes";
import { runVirsh } from "../../provider/backends/virsh/exec";
import { overlayVolumeXml, VolumeError, type VolumeStamp } from "../../provider/xml/volume";
import { RUN_PREFIX } from "../support/domains";
import { requireLab } from "../support/lab";
import { inChroot, requireSshLab } from "../support/remote";

/** One lab as the volume tests see it. */
interface VolumeLab {
  readonly uri: string;
  readonly pool: string;
  readonly poolDir: string;
  /** A directory on the hypervisor that is no pool's. */
  readonly outsideDir: string;
  /** Where a hypervisor path is on this machine (for steps that play a user on the hypervisor). */
  readonly onHypervisor: (p: string) => string;
  readonly cleanup: () => Promise<void>;
}

async function virsh(uri: string, ...args: string[]): Promise<string> {
  return (await runVirsh(uri, args)).stdout;
}

/** Runs `f`, returns what it threw (fails the test when it throws nothing). */
async function thrown(f: () => Promise<unknown>): Promise<Error> {
  try {
    await f();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected an error, got none");
}

const LABS: Record<string, (prefix: string) => Promise<VolumeLab>> = {
  "libvirt 12.x over qemu+ssh:// (pool directory only inside the chroot)": async (prefix) => {
    const ssh = await requireSshLab();
    const newLab = await requireLab("new");
    return {
      uri: ssh.uri,
      pool: ssh.pool,
      poolDir: ssh.poolDir,
      outsideDir: newLab.imageDir,
      onHypervisor: (p) => inChroot(ssh, p),
      cleanup: async () => {
        const names = (await virsh(ssh.uri, "vol-list", "--pool", ssh.pool))
          .split("\n")
          .map((l) => l.trim().split(/\s+/)[0] ?? "");
        for (const n of names)
          if (n.startsWith(prefix)) await virsh(ssh.uri, "vol-delete", "--pool", ssh.pool, "--vol", n);
      },
    };
  },
  "libvirt 9.0, local": async (prefix) => {
    const host = await requireLab("host");
    const pool = `${prefix}pool`;
    const poolDir = path.join(host.imageDir, `${prefix}pool`);
    await virsh(host.uri, "pool-create-as", pool, "dir", "--target", poolDir, "--build");
    return {
      uri: host.uri,
      pool,
      poolDir,
      outsideDir: host.imageDir,
      onHypervisor: (p) => p,
      cleanup: async () => {
        await virsh(host.uri, "pool-destroy", pool).catch(() => undefined);
        fs.rmSync(poolDir, { recursive: true, force: true });
      },
    };
  },
};

for (const [labName, open] of Object.entries(LABS)) {
  describe(`storage volumes: ${labName}`, function () {
    this.timeout(180000);
    const prefix = `${RUN_PREFIX}-v${labName.startsWith("libvirt 12") ? "s" : "h"}-`;
    let lab: VolumeLab;
    let store: VolumeStore;
    const base = `${prefix}base.qcow2`;
    const basePath = (): string => path.posix.join(lab.poolDir, base);

    before(async () => {
      lab = await open(prefix);
      store = new VolumeStore(lab.uri);
      await virsh(lab.uri, "vol-create-as", lab.pool, base, "16M", "--format", "qcow2");
    });
    after(async () => lab?.cleanup());

    if (labName.includes("ssh")) {
      it("the pool's directory is not on this machine: only the hypervisor (inside the chroot) has it", () => {
        expect(fs.existsSync(lab.poolDir), `${lab.poolDir} on this machine`).to.equal(false);
        expect(fs.existsSync(lab.onHypervisor(basePath())), "the template volume, seen from the host's side").to.equal(
          true,
        );
      });
    }

    it("resolves a disk's file path to its pool and volume", async () => {
      const v = await store.resolvePath(basePath());
      expect(v.pool).to.equal(lab.pool);
      expect(v.poolUuid).to.match(/^[0-9a-f-]{36}$/);
      expect(v.name).to.equal(base);
      expect(v.path).to.equal(basePath());
      expect(v.format).to.equal("qcow2");
      expect(v.capacityBytes).to.equal(String(16 * 1024 * 1024));
    });

    it("an overlay: a qcow2 volume whose backing store is the template's volume, recorded as ours; never made over an existing one", async () => {
      const tpl = await store.resolvePath(basePath());
      const s = await store.createOverlay({ pool: lab.pool, name: `${prefix}ov.qcow2` }, tpl);
      expect(s.backingPath).to.equal(basePath());
      expect(s.backingFormat).to.equal("qcow2");
      expect(s.format).to.equal("qcow2");
      expect(s.capacityBytes).to.equal(tpl.capacityBytes);
      const xml = await virsh(lab.uri, "vol-dumpxml", "--pool", lab.pool, "--vol", s.name);
      expect(xml).to.contain(`<path>${basePath()}</path>`);
      expect(xml).to.contain(`<mode>0600</mode>`);
      expect((await store.judge(s)).verdict).to.equal("ours");

      const again = await thrown(() => store.createOverlay({ pool: lab.pool, name: s.name }, tpl));
      expect(VolumeError.isInstance(again), again.message).to.equal(true);
      expect(again.message).to.contain("already exists").and.contain("fix: ");
      expect((await store.judge(s)).verdict, "the existing volume untouched").to.equal("ours");

      expect(await store.deleteVolume(s)).to.equal(true);
      expect(await store.volume(lab.pool, s.name)).to.equal(undefined);
      expect(await store.deleteVolume(s), "gone already").to.equal(false);
    });

    it("never over a file libvirt has not listed yet: the create is refused and the file keeps its bytes", async () => {
      const name = `${prefix}unlisted.qcow2`;
      const file = lab.onHypervisor(path.posix.join(lab.poolDir, name));
      fs.writeFileSync(file, "a user's data\n"); // a user on the hypervisor
      const e = await thrown(async () =>
        store.createOverlay({ pool: lab.pool, name }, await store.resolvePath(basePath())),
      );
      expect(VolumeError.isInstance(e), e.message).to.equal(true);
      expect(e.message).to.contain("already exists");
      expect(fs.readFileSync(file, "utf8")).to.equal("a user's data\n");
    });

    it("a copy (vol-create-from, libvirt's clone): the data copied on the hypervisor, no backing store; deleted while ours", async () => {
      const tpl = await store.resolvePath(basePath());
      const s = await store.cloneVolume({ pool: lab.pool, name: `${prefix}copy.qcow2` }, tpl);
      expect(s.backingPath).to.equal(undefined);
      expect(s.format).to.equal("qcow2");
      expect(s.capacityBytes).to.equal(tpl.capacityBytes);
      expect((await store.judge(s)).verdict).to.equal("ours");
      expect(await store.deleteVolume(s)).to.equal(true);
      expect(await store.volume(lab.pool, s.name)).to.equal(undefined);
    });

    it("a volume put in place of ours (deleted and re-created by someone else, same shape) is never deleted: 3 rounds", async () => {
      const tpl = await store.resolvePath(basePath());
      const name = `${prefix}swap.qcow2`;
      for (let round = 0; round < 3; round++) {
        const ours: VolumeStamp = await store.createOverlay({ pool: lab.pool, name }, tpl);
        // Someone else: delete ours, create theirs with the same name, format, capacity and backing.
        await virsh(lab.uri, "vol-delete", "--pool", lab.pool, "--vol", name);
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-vol-test-"));
        const xmlFile = path.join(dir, "v.xml");
        fs.writeFileSync(
          xmlFile,
          overlayVolumeXml({ name, capacityBytes: tpl.capacityBytes, backingPath: tpl.path, backingFormat: "qcow2" }),
        );
        await virsh(lab.uri, "vol-create", "--pool", lab.pool, "--file", xmlFile);
        fs.rmSync(dir, { recursive: true, force: true });

        const j = await store.judge(ours);
        expect(j.verdict, `round ${round}: ${j.differences.join("; ")}`).to.not.equal("ours");
        const e = await thrown(() => store.deleteVolume(ours));
        expect(VolumeError.isInstance(e), e.message).to.equal(true);
        expect(e.message).to.contain("left alone").and.contain("fix: ");
        expect(await store.volume(lab.pool, name), `round ${round}: theirs still there`).to.not.equal(undefined);
        await virsh(lab.uri, "vol-delete", "--pool", lab.pool, "--vol", name);
      }
    });

    it("a replacement of another capacity is 'other': refused even when written volumes are accepted", async () => {
      const tpl = await store.resolvePath(basePath());
      const name = `${prefix}resized.qcow2`;
      const ours = await store.createOverlay({ pool: lab.pool, name }, tpl);
      await virsh(lab.uri, "vol-delete", "--pool", lab.pool, "--vol", name);
      await virsh(lab.uri, "vol-create-as", lab.pool, name, "32M", "--format", "qcow2");
      const j = await store.judge(ours);
      expect(j.verdict).to.equal("other");
      expect(j.differences.join()).to.contain("capacity");
      const e = await thrown(() => store.deleteVolume(ours, { acceptWritten: true }));
      expect(e.message).to.contain("not the volume this provider made");
      expect(await store.volume(lab.pool, name)).to.not.equal(undefined);
    });

    it("a volume written since we made it is 'written': refused by default naming the fix, deleted with acceptWritten", async () => {
      const tpl = await store.resolvePath(basePath());
      const s = await store.cloneVolume({ pool: lab.pool, name: `${prefix}written.raw` }, tpl, { format: "raw" });
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-vol-test-"));
      const data = path.join(dir, "data");
      fs.writeFileSync(data, Buffer.alloc(4096, 0x5a));
      await new Promise((r) => setTimeout(r, 20));
      await virsh(lab.uri, "vol-upload", "--pool", lab.pool, "--vol", s.name, "--file", data);
      fs.rmSync(dir, { recursive: true, force: true });
      const j = await store.judge(s);
      expect(j.verdict).to.equal("written");
      const e = await thrown(() => store.deleteVolume(s));
      expect(VolumeError.isInstance(e)).to.equal(true);
      expect(e.message).to.contain("written since it was made").and.contain(`vol-delete --pool ${lab.pool} ${s.name}`);
      expect(await store.volume(lab.pool, s.name)).to.not.equal(undefined);
      expect(await store.deleteVolume(s, { acceptWritten: true })).to.equal(true);
      expect(await store.volume(lab.pool, s.name)).to.equal(undefined);
    });

    it("a disk outside any pool is refused, naming the pool to define", async () => {
      const file = path.posix.join(lab.outsideDir, `${prefix}loose.qcow2`);
      execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", lab.onHypervisor(file), "1M"]);
      try {
        const e = await thrown(() => store.resolvePath(file));
        expect(VolumeError.isInstance(e), e.message).to.equal(true);
        expect(e.message)
          .to.contain("the file is in no storage pool")
          .and.contain(`pool-define-as NAME dir --target ${lab.outsideDir}`)
          .and.contain("pool-start NAME");
      } finally {
        fs.rmSync(lab.onHypervisor(file), { force: true });
      }
    });

    it("a file put in the pool's directory behind libvirt's back is found (the pool is refreshed)", async () => {
      const name = `${prefix}unseen.qcow2`;
      const file = path.posix.join(lab.poolDir, name);
      execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", lab.onHypervisor(file), "2M"]); // a user on the hypervisor
      const v = await store.resolvePath(file);
      expect(v.pool).to.equal(lab.pool);
      expect(v.name).to.equal(name);
      expect(v.format).to.equal("qcow2");
      expect(v.capacityBytes).to.equal(String(2 * 1024 * 1024));
    });

    it("a disk in the directory of a pool that is not running is refused, naming pool-start", async () => {
      const pool = `${prefix}idle`;
      const dir = path.posix.join(path.posix.dirname(lab.poolDir), `${prefix}idle`);
      await virsh(lab.uri, "pool-define-as", pool, "dir", "--target", dir);
      try {
        const e = await thrown(() => store.resolvePath(path.posix.join(dir, "disk.qcow2")));
        expect(VolumeError.isInstance(e), e.message).to.equal(true);
        expect(e.message).to.contain("the file's pool is not running").and.contain(`pool-start ${pool}`);
      } finally {
        await virsh(lab.uri, "pool-undefine", pool);
      }
    });
  });
}
