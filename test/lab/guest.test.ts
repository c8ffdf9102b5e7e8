/**
 * The tiny guest (scripts/guest.sh): a real guest OS whose own reading of its hardware
 * (/sys/class/dmi/id, the vmgenid in guest memory, /sys/class/net, /sys/block, MemTotal, online
 * CPUs) reaches the test through its serial console. Booted under plain QEMU 7.2 and 11.x and
 * through both libvirt labs.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runVirsh } from "../../provider/backends/virsh/exec";
import { RUN_PREFIX } from "../support/domains";
import {
  GuestConsole,
  guestDomainXml,
  guestImage,
  GuestImage,
  GuestLine,
  GuestQemu,
  startGuestQemu,
} from "../support/guest";
import { labQemu, requireLab } from "../support/lab";
import { REPO_ROOT } from "../support/paths";

const UUID = "5d5b0f1d-128b-4517-8e65-b258a8734c1d";
const SERIAL = "LVD serial 42";
const GENID = "8f2d1c3e-4b5a-4697-a8b9-c0d1e2f3a4b5";
const MAC = "52:54:00:5d:5b:01";
const DISK_SERIAL = "lvd-disk-1";
const DISK_BYTES = 64 * 1024 * 1024;

/** Waits (bounded) for QEMU to exit; returns the seconds it took. */
async function exitWithin(g: GuestQemu, seconds: number, after: string): Promise<number> {
  const t0 = performance.now();
  const code = await Promise.race([
    g.exited,
    new Promise<"timeout">((r) => setTimeout(() => r("timeout"), seconds * 1000)),
  ]);
  if (code === "timeout")
    throw new Error(
      `QEMU did not exit within ${seconds} s of ${after}; console ${g.console.path}:\n${g.console.text().slice(-600)}`,
    );
  expect(code, `QEMU's exit code; stderr: ${g.stderr()}`).to.equal(0);
  return (performance.now() - t0) / 1000;
}

describe("the tiny guest", function () {
  this.timeout(600000);
  let image: GuestImage;
  const running: GuestQemu[] = [];
  let work: string;

  before(() => {
    image = guestImage(); // builds once (downloads Debian's kernel package), cached after
    work = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-guest-"));
  });
  after(async () => {
    for (const g of running) await g.kill();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it("scripts/guest.sh build is cached: a second run builds nothing and prints the same paths", () => {
    const stamp = (f: string) => `${fs.statSync(f).ino}@${fs.statSync(f).mtimeMs}`;
    const before = [stamp(image.kernel), stamp(image.initrd)];
    const out = execFileSync("bash", [path.join(REPO_ROOT, "scripts", "guest.sh"), "build"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    expect([stamp(image.kernel), stamp(image.initrd)], "the files, untouched").to.deep.equal(before);
    expect(out).to.contain(`export GUEST_KERNEL='${image.kernel}'`);
    expect(out).to.contain(`export GUEST_INITRD='${image.initrd}'`);
    expect(fs.statSync(image.initrd).size, "initramfs bytes").to.be.below(4 * 1024 * 1024);
    const lock = fs.readFileSync(path.join(path.dirname(image.kernel), "guest.lock"), "utf8");
    expect(lock).to.match(/^linux-image-\S+-amd64 \S+ [0-9a-f]{64} \S+\.deb https?:\/\/\S+$/m);
    expect(lock).to.match(/^busybox-static \S+ [0-9a-f]{64} /m);
  });

  for (const which of ["host", "new"] as const) {
    const label = which === "host" ? "QEMU 7.2 (host)" : "QEMU 11.x (lab chroot)";

    describe(`under plain ${label}`, function () {
      let qemu: string;
      before(() => {
        qemu = labQemu(which);
      });

      it("the guest reads QEMU's -uuid, the SMBIOS serial, the vmgenid, a virtio NIC and disk; system_powerdown powers it off in seconds", async () => {
        const dir = path.join(work, `${which}-identity`);
        fs.mkdirSync(dir, { recursive: true });
        const disk = path.join(dir, "disk.raw");
        fs.writeFileSync(disk, "");
        fs.truncateSync(disk, DISK_BYTES);
        const g = startGuestQemu({
          qemu,
          image,
          dir,
          args: [
            "-uuid",
            UUID,
            "-smbios",
            `type=1,serial=${SERIAL}`,
            "-device",
            `vmgenid,guid=${GENID}`,
            "-netdev",
            "user,id=n0,restrict=on",
            "-device",
            `virtio-net-pci,netdev=n0,mac=${MAC}`,
            "-blockdev",
            `driver=file,node-name=f0,filename=${disk}`,
            "-blockdev",
            "driver=raw,node-name=d0,file=f0",
            "-device",
            `virtio-blk-pci,drive=d0,serial=${DISK_SERIAL}`,
          ],
        });
        running.push(g);
        const r = await g.console.report();
        expect(r.productUuid).to.equal(UUID);
        expect(r.productSerial).to.equal(SERIAL);
        expect(r.vmgenid).to.equal(GENID);
        expect(r.vmgenidVia).to.equal("acpi");
        expect(r.nics).to.deep.equal([{ name: "eth0", mac: MAC, driver: "virtio_net" }]);
        expect(r.disks).to.deep.equal([{ name: "vda", size_bytes: String(DISK_BYTES), ro: "0", serial: DISK_SERIAL }]);
        expect(r.cpus).to.equal(1);
        expect(r.memoryKiB).to.be.within(150 * 1024, 256 * 1024);

        const before = g.console.count();
        const q = await g.qmp();
        await q.execute("system_powerdown");
        q.close();
        await g.console.waitFor("poweroff acpi", { after: before, timeoutMs: 30000 });
        await exitWithin(g, 30, "system_powerdown");
      });

      it("the guest reports hot-plugged and unplugged NICs, disks and CPUs, and memory changes, as they happen", async () => {
        const dir = path.join(work, `${which}-hotplug`);
        fs.mkdirSync(dir, { recursive: true });
        const disk = path.join(dir, "hot.raw");
        fs.writeFileSync(disk, "");
        fs.truncateSync(disk, 32 * 1024 * 1024);
        const g = startGuestQemu({
          qemu,
          image,
          dir,
          memory: "256,slots=2,maxmem=1G",
          args: ["-smp", "1,maxcpus=2", "-device", "virtio-balloon-pci,id=balloon0"],
        });
        running.push(g);
        const r = await g.console.report();
        expect(r.nics).to.deep.equal([]);
        expect(r.disks).to.deep.equal([]);
        const q = await g.qmp();
        try {
          let n = g.console.count();
          await q.execute("netdev_add", { type: "user", id: "n1" });
          await q.execute("device_add", {
            driver: "virtio-net-pci",
            id: "nic1",
            netdev: "n1",
            mac: "52:54:00:5d:5b:02",
          });
          await g.console.waitFor("nic-added name=eth0 mac=52:54:00:5d:5b:02 driver=virtio_net", {
            after: n,
            timeoutMs: 30000,
          });

          n = g.console.count();
          await q.execute("blockdev-add", {
            driver: "raw",
            "node-name": "hot0",
            file: { driver: "file", filename: disk },
          });
          await q.execute("device_add", { driver: "virtio-blk-pci", id: "disk1", drive: "hot0", serial: "hot 1" });
          const added = await g.console.waitFor(/^disk-added /, { after: n, timeoutMs: 30000 });
          expect(added.fields).to.deep.equal({
            name: "vda",
            size_bytes: String(32 * 1024 * 1024),
            ro: "0",
            serial: "hot 1",
          });

          n = g.console.count();
          await q.execute("device_del", { id: "disk1" });
          await g.console.waitFor("disk-removed name=vda", { after: n, timeoutMs: 30000 });
          n = g.console.count();
          await q.execute("device_del", { id: "nic1" });
          await g.console.waitFor("nic-removed name=eth0", { after: n, timeoutMs: 30000 });

          n = g.console.count();
          await q.execute("object-add", { "qom-type": "memory-backend-ram", id: "mem1", size: 128 * 1024 * 1024 });
          await q.execute("device_add", { driver: "pc-dimm", id: "dimm1", memdev: "mem1" });
          const grown = Number(
            (await g.console.waitFor(/^memory_kib=/, { after: n, timeoutMs: 30000 })).fields.memory_kib,
          );
          expect(grown - r.memoryKiB, "MemTotal growth after a 128 MiB DIMM, KiB").to.be.within(120 * 1024, 128 * 1024);

          // The balloon inflates in steps; a poll may see one on the way: wait for the end.
          n = g.console.count();
          await q.execute("balloon", { value: 320 * 1024 * 1024 }); // 384 MiB of RAM now: take 64 back
          const target = grown - 64 * 1024;
          await g.console.waitFor(
            {
              test: (l: GuestLine) => "memory_kib" in l.fields && Number(l.fields.memory_kib) <= target,
              what: `a "memory_kib=" line at most ${target} (64 MiB in the balloon)`,
            },
            { after: n, timeoutMs: 30000 },
          );

          // CPUs last: QEMU 7.2 aborts ("double free or corruption") on a pc-dimm device_add
          // after a vCPU was unplugged.
          n = g.console.count();
          await q.execute("device_add", {
            driver: "qemu64-x86_64-cpu",
            id: "cpu1",
            "socket-id": 0,
            "core-id": 1,
            "thread-id": 0,
          });
          await g.console.waitFor("cpus=2", { after: n, timeoutMs: 30000 });
          n = g.console.count();
          await q.execute("device_del", { id: "cpu1" });
          await g.console.waitFor("cpus=1", { after: n, timeoutMs: 30000 });
        } finally {
          q.close();
        }
        await g.kill();
      });
    });
  }

  for (const which of ["host", "new"] as const) {
    const label =
      which === "host" ? "libvirt 9.0 (passthrough: <qemu:commandline> -uuid)" : "libvirt 12.x (native <hwuuid>)";

    it(`through ${label}: the guest reads the hwuuid, not the domain uuid; virsh shutdown powers it off`, async () => {
      const lab = await requireLab(which);
      const img = guestImage(lab.imageDir); // libvirt's QEMU (in the 12.x lab: in its chroot) sees only the image dir
      const name = `${RUN_PREFIX}-guest-${which}`;
      const uuid = randomUUID();
      const hwuuid = randomUUID();
      const consolePath = path.join(lab.imageDir, "lvd-guest", "run", `${name}.console`);
      fs.mkdirSync(path.dirname(consolePath), { recursive: true });
      fs.rmSync(consolePath, { force: true });
      const xml = guestDomainXml({
        name,
        uuid,
        image: img,
        consolePath,
        ...(which === "new"
          ? { hwuuid }
          : {
              tailXml: `  <qemu:commandline><qemu:arg value='-uuid'/><qemu:arg value='${hwuuid}'/></qemu:commandline>`,
            }),
      });
      const xmlPath = path.join(work, `${name}.xml`);
      fs.writeFileSync(xmlPath, xml);
      await runVirsh(lab.uri, ["define", "--validate", xmlPath]);
      try {
        await runVirsh(lab.uri, ["start", name]);
        const con = new GuestConsole(consolePath);
        const r = await con.report();
        expect(r.productUuid).to.equal(hwuuid);
        expect(r.productUuid).to.not.equal(uuid);
        expect((await runVirsh(lab.uri, ["domuuid", name])).stdout.trim()).to.equal(uuid);

        const before = con.count();
        await runVirsh(lab.uri, ["shutdown", name, "--mode", "acpi"]);
        await con.waitFor("poweroff acpi", { after: before, timeoutMs: 30000 });
        const end = Date.now() + 30000;
        let state = "";
        while (Date.now() < end) {
          state = (await runVirsh(lab.uri, ["domstate", name])).stdout.trim();
          if (state === "shut off") break;
          await new Promise((res) => setTimeout(res, 200));
        }
        expect(state, `state of ${name} 30 s after the guest printed its poweroff line`).to.equal("shut off");
      } finally {
        await runVirsh(lab.uri, ["destroy", name], { allowFailure: true });
        await runVirsh(lab.uri, ["undefine", name], { allowFailure: true });
        fs.rmSync(consolePath, { force: true });
      }
    });
  }
});
