/**
 * Live changes through the Domain provider, confirmed by the guest itself: the tiny guest
 * (test/support/guest.ts) runs under each libvirt lab; updates add and remove a NIC and a disk,
 * balloon its memory (`setmem`) and bring a vCPU online (`setvcpus`), and the guest's console
 * reports each change as it happens, while the QEMU process stays the same one (no restart). A
 * live change libvirt refuses waits for a restart with libvirt's reason in `pendingChanges`.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import { VirshBackend } from "../../provider/backends/virsh/virsh-backend";
import * as impl from "../../provider/dynamic/impl";
import { checkAndCreate, removeDomains, RUN_PREFIX } from "../support/domains";
import { GuestConsole, GuestLine, guestDomainXml, guestImage } from "../support/guest";
import { requireLab } from "../support/lab";
import { qemuPid } from "../support/qemu-pid";

const NIC_MAC = "52:54:00:5d:5c:11";
const DISK_SERIAL = "lvd-live-1";
const DISK_BYTES = 32 * 1024 * 1024;

for (const which of ["new", "host"] as const) {
  const label = which === "new" ? "libvirt 12.x" : "libvirt 9.0";

  describe(`live changes through the Domain provider, confirmed by the guest (${label})`, function () {
    this.timeout(600000);
    const prefix = `${RUN_PREFIX}-live-${which}-`;
    let uri = "";
    const files: string[] = [];
    after(async () => {
      if (uri) await removeDomains(uri, prefix);
      for (const f of files) fs.rmSync(f, { force: true });
    });

    it("a NIC and a disk attached and detached, memory ballooned, a vCPU brought online: the guest sees each, same QEMU pid, no pendingRestart", async () => {
      const lab = await requireLab(which);
      uri = lab.uri;
      const img = guestImage(lab.imageDir);
      const name = `${prefix}g`;
      const run = path.join(lab.imageDir, "lvd-guest", "run");
      fs.mkdirSync(run, { recursive: true });
      const consolePath = path.join(run, `${name}.console`);
      const diskPath = path.join(run, `${name}.raw`);
      files.push(consolePath, diskPath);
      fs.rmSync(consolePath, { force: true });
      fs.writeFileSync(diskPath, "");
      fs.truncateSync(diskPath, DISK_BYTES);

      const NIC = `<interface type='user'><mac address='${NIC_MAC}'/><model type='virtio'/></interface>`;
      const DISK = `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${diskPath}'/><target dev='vdb' bus='virtio'/><serial>${DISK_SERIAL}</serial></disk>`;
      const xmlWith = (o: { currentMiB: number; cpus: number; devices?: string }) =>
        guestDomainXml({ name, image: img, consolePath, memoryMiB: 256, vcpus: 2, devicesXml: o.devices })
          .replace(
            "<memory unit='MiB'>256</memory>",
            `<memory unit='MiB'>256</memory><currentMemory unit='MiB'>${o.currentMiB}</currentMemory>`,
          )
          .replace("<vcpu>2</vcpu>", `<vcpu current='${o.cpus}'>2</vcpu>`);
      const base = { name, connection: { uri: lab.uri }, shutdownTimeoutSeconds: 0 };

      let state = await checkAndCreate({ ...base, xml: xmlWith({ currentMiB: 256, cpus: 1 }) });
      const con = new GuestConsole(consolePath);
      const first = await con.report();
      expect(first.nics).to.deep.equal([]);
      expect(first.disks).to.deep.equal([]);
      expect(first.cpus).to.equal(1);
      const pid = qemuPid(name);
      expect(pid, "QEMU runs").to.be.a("number");

      /** One update through the provider: check, diff, update; returns the new outputs. */
      const step = async (xml: string) => {
        const c = await impl.check(state.outs, { ...base, xml });
        expect(c.failures).to.deep.equal([]);
        expect((await impl.diff(name, state.outs, c.inputs)).changes).to.equal(true);
        const u = await impl.update(name, state.outs, c.inputs);
        expect(
          u.outs.pendingRestart,
          `pendingRestart; pendingChanges: ${JSON.stringify(u.outs.pendingChanges)}`,
        ).to.equal(false);
        expect(u.outs.pendingChanges).to.deep.equal([]);
        expect(u.outs.drift).to.deep.equal([]);
        expect(qemuPid(name), "the same QEMU process: no restart").to.equal(pid);
        state = { id: name, inputs: c.inputs, outs: u.outs };
        const c2 = await impl.check(state.outs, { ...base, xml });
        expect((await impl.diff(name, state.outs, c2.inputs)).changes, "no change left after the update").to.equal(
          false,
        );
      };

      // A NIC.
      let n = con.count();
      await step(xmlWith({ currentMiB: 256, cpus: 1, devices: NIC }));
      await con.waitFor(`nic-added name=eth0 mac=${NIC_MAC} driver=virtio_net`, { after: n, timeoutMs: 60000 });

      // A disk.
      n = con.count();
      await step(xmlWith({ currentMiB: 256, cpus: 1, devices: NIC + DISK }));
      const added = await con.waitFor(/^disk-added /, { after: n, timeoutMs: 60000 });
      expect(added.fields).to.deep.equal({ name: "vda", size_bytes: String(DISK_BYTES), ro: "0", serial: DISK_SERIAL });

      // A vCPU online (setvcpus).
      n = con.count();
      await step(xmlWith({ currentMiB: 256, cpus: 2, devices: NIC + DISK }));
      await con.waitFor("cpus=2", { after: n, timeoutMs: 60000 });

      // Memory ballooned down by 64 MiB (setmem): the guest's MemTotal drops.
      n = con.count();
      await step(xmlWith({ currentMiB: 192, cpus: 2, devices: NIC + DISK }));
      const target = first.memoryKiB - 56 * 1024;
      await con.waitFor(
        {
          test: (l: GuestLine) => "memory_kib" in l.fields && Number(l.fields.memory_kib) <= target,
          what: `a "memory_kib=" line at most ${target} (64 MiB in the balloon)`,
        },
        { after: n, timeoutMs: 60000 },
      );

      // The disk and the NIC unplugged.
      n = con.count();
      await step(xmlWith({ currentMiB: 192, cpus: 2 }));
      await con.waitFor("disk-removed name=vda", { after: n, timeoutMs: 60000 });
      await con.waitFor("nic-removed name=eth0", { after: n, timeoutMs: 60000 });
      expect(
        con.lines().filter((l) => l === "ready"),
        "the guest booted once",
      ).to.have.length(1);

      // A live change libvirt refuses (the disk's file does not exist): it waits for a restart,
      // with libvirt's reason; the definition has it, the running guest does not, the output says so.
      const missing = path.join(run, `${name}-missing.raw`);
      const BAD = DISK.replace(diskPath, missing).replace("vdb", "vdc");
      const c = await impl.check(state.outs, { ...base, xml: xmlWith({ currentMiB: 192, cpus: 2, devices: BAD }) });
      const u = await impl.update(name, state.outs, c.inputs);
      expect(u.outs.pendingRestart).to.equal(true);
      expect(u.outs.pendingChanges).to.have.length(1);
      expect(u.outs.pendingChanges[0]).to.match(
        /^\/domain\/devices\/disk\[target=vdc\]: libvirt refused to apply it live: .*missing\.raw/,
      );
      expect(u.outs.xml, "the definition has the disk").to.contain(missing);
      expect(qemuPid(name), "still no restart").to.equal(pid);
      await impl.remove(name, u.outs);
    });

    it("CD-ROM media changed live: the running domain and its definition hold the new image, same QEMU pid", async () => {
      const lab = await requireLab(which);
      uri = lab.uri;
      const name = `${prefix}cd`;
      const run = path.join(lab.imageDir, "lvd-guest", "run");
      fs.mkdirSync(run, { recursive: true });
      const isos = ["a", "b"].map((k) => path.join(run, `${name}-${k}.iso`));
      for (const f of isos) {
        files.push(f);
        fs.writeFileSync(f, Buffer.alloc(2048 * 16));
      }
      const xml = (iso: string) =>
        `<domain type='qemu'><name>x</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices><disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='${iso}'/><target dev='hdc' bus='ide'/><readonly/></disk></devices></domain>`;
      const base = { name, connection: { uri: lab.uri }, shutdownTimeoutSeconds: 0 };
      const a = await checkAndCreate({ ...base, xml: xml(isos[0]!) });
      const pid = qemuPid(name);
      expect(pid, "QEMU runs").to.be.a("number");
      const c = await impl.check(a.outs, { ...base, xml: xml(isos[1]!) });
      const u = await impl.update(name, a.outs, c.inputs);
      expect(u.outs.pendingRestart, JSON.stringify(u.outs.pendingChanges)).to.equal(false);
      expect(u.outs.xml, "the definition").to.contain(isos[1]).and.not.contain(isos[0]);
      const live = await new VirshBackend(lab.uri).dumpxmlLive({ name, uuid: a.outs.uuid });
      expect(live, "the running domain").to.contain(isos[1]).and.not.contain(isos[0]);
      expect(qemuPid(name), "the same QEMU process").to.equal(pid);
      const c2 = await impl.check(u.outs, { ...base, xml: xml(isos[1]!) });
      expect((await impl.diff(name, u.outs, c2.inputs)).changes).to.equal(false);
      await impl.remove(name, u.outs);
    });
  });
}
