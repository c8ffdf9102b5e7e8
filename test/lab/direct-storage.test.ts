/**
 * Disks, controllers and filesystems of the QEMU-direct builder (provider/qemu/storage.ts) with
 * real QEMU (the host's 7.2 and the lab chroot's 11.x), no libvirt: one domain with an xHCI
 * controller with 8 ports, lsilogic and virtio-scsi (2 queues) controllers, a qcow2 disk over a raw
 * backing image, a USB disk, a SCSI disk with a WWN and a rotation rate, and a 9p share;
 * QEMU is asked over QMP whether it has each as built. Then the same devices against libvirt
 * 12.x's own command line for the same XML (`virsh domxml-to-native`); and a q35 domain's PCIe
 * layout (pcie-root-ports) against both. Also, on the PC machine and q35: disk I/O limits
 * (`<iotune>`, set over QMP block_set_io_throttle while QEMU is paused, as libvirt does; read back
 * with query-block), an IDE disk at a written drive address, and a floppy (q35: an isa-fdc device).
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { qmpOnce } from "../../provider/backends/qemu/qmp";
import { runVirsh } from "../../provider/backends/virsh/exec";
import * as impl from "../../provider/dynamic/impl";
import { checkAndCreate } from "../support/domains";
import { argValues, directQemuLabel, makeDirectState, removeDirectState, requireLab } from "../support/lab";
import { shellWords } from "../support/shell";

const WWN = "5000c50015ea71ad";

function domainXml(dir: string, name = "storage"): string {
  return `<domain type='qemu'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
    <os><type arch='x86_64' machine='pc'>hvm</type></os>
    <devices>
      <disk type='file' device='disk'>
        <driver name='qemu' type='qcow2' discard='unmap'/>
        <source file='${dir}/top.qcow2'/>
        <backingStore type='file'><format type='raw'/><source file='${dir}/base.img'/><backingStore/></backingStore>
        <target dev='vda' bus='virtio'/>
      </disk>
      <disk type='file' device='disk'>
        <driver name='qemu' type='raw'/>
        <source file='${dir}/usb.img'/>
        <target dev='sda' bus='usb'/>
      </disk>
      <disk type='file' device='disk'>
        <driver name='qemu' type='raw'/>
        <source file='${dir}/scsi.img'/>
        <target dev='sdb' bus='scsi' rotation_rate='1'/>
        <wwn>${WWN}</wwn>
      </disk>
      <controller type='usb' index='0' model='qemu-xhci' ports='8'/>
      <controller type='scsi' index='0' model='lsilogic'/>
      <controller type='scsi' index='1' model='virtio-scsi'><driver queues='2'/></controller>
      <filesystem type='mount' accessmode='mapped'>
        <source dir='${dir}/share'/>
        <target dir='share0'/>
      </filesystem>
    </devices></domain>`;
}

/**
 * Disk I/O limits (<iotune>, set over QMP before the guest runs), an IDE disk at a written drive
 * address (the secondary bus's slave) and a floppy, on the PC machine or on q35 (an isa-fdc device).
 */
function throttleXml(dir: string, name: string, machine: "pc" | "q35"): string {
  const ide =
    machine === "pc"
      ? `<disk type='file' device='disk'>
        <driver name='qemu' type='raw'/>
        <source file='${dir}/ide.img'/>
        <target dev='hdd' bus='ide'/>
        <iotune><read_bytes_sec>3000000</read_bytes_sec><write_bytes_sec>2000000</write_bytes_sec><read_bytes_sec_max>4000000</read_bytes_sec_max><group_name>grp1</group_name></iotune>
        <address type='drive' controller='0' bus='1' target='0' unit='1'/>
      </disk>
      <disk type='file' device='disk'>
        <driver name='qemu' type='raw'/>
        <source file='${dir}/scsi.img'/>
        <target dev='sda' bus='usb'/>
        <iotune><total_iops_sec>300</total_iops_sec></iotune>
      </disk>
      <disk type='dir' device='floppy'>
        <driver name='qemu' type='fat'/>
        <source dir='${dir}/share'/>
        <target dev='fdb' bus='fdc'/>
        <readonly/>
      </disk>`
      : "";
  return `<domain type='qemu'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
    <os><type arch='x86_64' machine='${machine}'>hvm</type></os>
    <devices>
      <disk type='file' device='disk'>
        <driver name='qemu' type='raw'/>
        <source file='${dir}/usb.img'/>
        <target dev='vda' bus='virtio'/>
        <iotune><total_bytes_sec>5000000</total_bytes_sec><total_iops_sec>600</total_iops_sec><size_iops_sec>4096</size_iops_sec></iotune>
        <boot order='2'/>
      </disk>
      ${ide}
      <disk type='file' device='floppy'>
        <driver name='qemu' type='raw'/>
        <source file='${dir}/floppy.img'/>
        <target dev='fda' bus='fdc'/>
        <boot order='1'/>
      </disk>
    </devices></domain>`;
}

/** What query-block says of one device's throttling (the fields compared). */
interface BlockInfo {
  qdev: string;
  inserted?: Record<string, unknown>;
}

/** A q35 domain: libvirt lays its PCIe devices out behind pcie-root-ports it adds. */
function q35Xml(dir: string): string {
  return `<domain type='qemu'><name>q35</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
    <os><type arch='x86_64' machine='q35'>hvm</type></os>
    <devices>
      <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${dir}/usb.img'/><target dev='vda' bus='virtio'/></disk>
      <interface type='user'><mac address='52:54:00:35:00:01'/><model type='virtio'/></interface>
    </devices></domain>`;
}

interface PciDevice {
  bus: number;
  slot: number;
  function: number;
  qdev_id: string;
  pci_bridge?: { bus: { number: number }; devices?: PciDevice[] };
}

/** Every device of a query-pci answer, bridges' devices included, by qdev id: `bus:slot.function`. */
function pciTree(devices: PciDevice[], out: Record<string, string> = {}): Record<string, string> {
  for (const d of devices) {
    if (d.qdev_id) out[d.qdev_id] = `${d.bus}:${d.slot}.${d.function}`;
    if (d.pci_bridge?.devices) pciTree(d.pci_bridge.devices, out);
  }
  return out;
}

/** The `-device` values of an argv whose driver is one of `drivers`, as parsed JSON. */
function devicesOf(argv: string[], drivers: string[]): Record<string, unknown>[] {
  return argValues(argv, "-device")
    .filter((v) => v.startsWith("{"))
    .map((v) => JSON.parse(v) as Record<string, unknown>)
    .filter((d) => drivers.includes(String(d.driver)))
    .sort((a, b) => String(a.id).localeCompare(String(b.id)));
}

for (const which of ["host", "new"] as const) {
  describe(`QEMU-direct storage devices, QEMU ${directQemuLabel(which)}`, function () {
    this.timeout(120000);
    let uri: string;
    let state: string;
    let images: string;
    before(() => {
      ({ uri, state } = makeDirectState(which, "storage"));
      images = fs.mkdtempSync(path.join(os.tmpdir(), `lvd-storage-img-${which}-`));
      execFileSync("qemu-img", ["create", "-q", "-f", "raw", path.join(images, "base.img"), "4M"]);
      execFileSync("qemu-img", [
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        path.join(images, "base.img"),
        "-F",
        "raw",
        path.join(images, "top.qcow2"),
      ]);
      for (const f of ["usb.img", "scsi.img", "ide.img"])
        execFileSync("qemu-img", ["create", "-q", "-f", "raw", path.join(images, f), "4M"]);
      execFileSync("qemu-img", ["create", "-q", "-f", "raw", path.join(images, "floppy.img"), "1440K"]);
      fs.mkdirSync(path.join(images, "share"));
    });
    after(async () => {
      await removeDirectState(uri, state);
      fs.rmSync(images, { recursive: true, force: true });
    });

    it("QEMU has every disk, controller and the 9p share as built (QMP)", async () => {
      const a = await checkAndCreate({
        name: "storage",
        xml: domainXml(images),
        connection: { uri },
        shutdownTimeoutSeconds: 0,
      });
      expect(a.outs.state).to.equal("running");
      const qmp = path.join(state, "storage", "qmp.sock");
      const get = (p: string, property: string) => qmpOnce(qmp, "qom-get", { path: p, property });
      // the backing chain: the qcow2 format node over its raw backing node, as written
      const nodes = (await qmpOnce(qmp, "query-named-block-nodes")) as {
        "node-name": string;
        drv: string;
        ro: boolean;
        image: { filename: string; "backing-image"?: { filename: string } };
      }[];
      const top = nodes.find((n) => n["node-name"] === "libvirt-3-format");
      expect(top?.drv).to.equal("qcow2");
      expect(top?.image["backing-image"]?.filename).to.equal(path.join(images, "base.img"));
      const base = nodes.find((n) => n["node-name"] === "libvirt-4-storage");
      expect(base?.ro, "the backing layer is read-only").to.equal(true);
      // xHCI ports, virtio-scsi queues, the USB and SCSI disks, the 9p mount tag
      expect(await get("/machine/peripheral/usb", "p2")).to.equal(8);
      expect(await get("/machine/peripheral/usb", "p3")).to.equal(8);
      expect(await get("/machine/peripheral/scsi1", "num_queues")).to.equal(2);
      expect(await get("/machine/peripheral/usb-disk0", "removable")).to.equal(false);
      expect(await get("/machine/peripheral/scsi0-0-1", "wwn")).to.equal(Number(BigInt(`0x${WWN}`)));
      expect(await get("/machine/peripheral/scsi0-0-1", "rotation_rate")).to.equal(1);
      expect(await get("/machine/peripheral/fs0", "mount_tag")).to.equal("share0");
      // the PCI slots libvirt assigns on the PC machine
      const pci = (await qmpOnce(qmp, "query-pci")) as {
        devices: { slot: number; function: number; qdev_id: string }[];
      }[];
      const slots = Object.fromEntries(
        pci[0]!.devices.filter((d) => d.qdev_id).map((d) => [d.qdev_id, `${d.slot}.${d.function}`]),
      );
      expect(slots).to.include({ fs0: "2.0", usb: "3.0", scsi0: "4.0", scsi1: "5.0", "virtio-disk0": "6.0" });
      expect(await get("/machine/peripheral/virtio-disk0", "bootindex")).to.equal(1);
      await impl.remove("storage", a.outs);
    });

    for (const machine of ["pc", "q35"] as const)
      it(`${machine}: <iotune> limits are set before the guest runs, an IDE drive address and a floppy are where written (QMP)`, async () => {
        const name = `throttle-${machine}`;
        const a = await checkAndCreate({
          name,
          xml: throttleXml(images, name, machine),
          connection: { uri },
          shutdownTimeoutSeconds: 0,
        });
        expect(a.outs.state).to.equal("running");
        const qmp = path.join(state, name, "qmp.sock");
        // started paused (-S) for the limits, then continued
        const pid = Number(fs.readFileSync(path.join(state, name, "qemu.pid"), "utf8"));
        expect(fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")).to.include("-S");
        expect(((await qmpOnce(qmp, "query-status")) as { status: string }).status).to.equal("running");
        const blocks = (await qmpOnce(qmp, "query-block")) as BlockInfo[];
        const of = (qdev: string) => blocks.find((b) => b.qdev === qdev)?.inserted ?? {};
        expect(of("/machine/peripheral/virtio-disk0/virtio-backend")).to.include({
          bps: 5000000,
          iops: 600,
          iops_size: 4096,
          bps_rd: 0,
          bps_wr: 0,
        });
        const get = (p: string, property: string) => qmpOnce(qmp, "qom-get", { path: p, property });
        if (machine === "pc") {
          expect(of("ide0-1-1")).to.include({
            bps_rd: 3000000,
            bps_wr: 2000000,
            bps_rd_max: 4000000,
            bps: 0,
            group: "grp1",
          });
          // a USB disk's limits are on the SCSI disk usb-storage makes (libvirt's qomName for it)
          expect(of("/machine/peripheral/usb-disk0/usb-disk0.0/legacy[0]")).to.include({ iops: 300, bps: 0 });
          // <address type='drive' bus='1' unit='1'>: the secondary IDE bus's slave
          expect(await get("/machine/peripheral/ide0-1-1", "unit")).to.equal(1);
          expect(await get("/machine/peripheral/ide0-1-1", "parent_bus")).to.match(/\/ide\.1$/);
          // a directory as a read-only virtual FAT floppy (vvfat)
          const fat = blocks.find((b) => b.qdev === "fdc0-0-1")?.inserted;
          expect(fat?.ro).to.equal(true);
          expect(fat?.drv).to.equal("raw");
          expect(String(fat?.file)).to.include('"driver": "vvfat"');
        }
        // the floppy: on the PC machine's built-in fdc, on q35 an isa-fdc libvirt adds; boot index A
        expect(await get("/machine/peripheral/fdc0-0-0", "unit")).to.equal(0);
        expect(blocks.some((b) => b.qdev === "fdc0-0-0" && b.inserted)).to.equal(true);
        if (machine === "q35") {
          const anon = (await qmpOnce(qmp, "qom-list", { path: "/machine/peripheral-anon" })) as { name: string }[];
          const isa: string[] = [];
          for (const c of anon.filter((x) => x.name.startsWith("device[")))
            if ((await get(`/machine/peripheral-anon/${c.name}`, "type")) === "isa-fdc") isa.push(c.name);
          expect(isa, "one isa-fdc device").to.have.length(1);
          expect(await get(`/machine/peripheral-anon/${isa[0]!}`, "bootindexA")).to.equal(1);
        }
        await impl.remove(name, a.outs);
      });

    it("the storage devices and block nodes equal what libvirt 12.x passes for the same XML", async () => {
      const lab = await requireLab("new");
      const xml = domainXml(images, "storage2");
      const a = await checkAndCreate({ name: "storage2", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      const pid = Number(fs.readFileSync(path.join(state, "storage2", "qemu.pid"), "utf8"));
      const ours = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      const file = path.join(state, "storage-native.xml");
      fs.writeFileSync(file, a.outs.xml);
      const theirs = shellWords((await runVirsh(lab.uri, ["domxml-to-native", "qemu-argv", file])).stdout.trim());
      const drivers = [
        "qemu-xhci",
        "virtio-scsi-pci",
        "lsi",
        "usb-storage",
        "scsi-hd",
        "virtio-blk-pci",
        "virtio-9p-pci",
      ];
      expect(devicesOf(ours, drivers)).to.deep.equal(devicesOf(theirs, drivers));
      const blockdevs = (argv: string[]) =>
        argValues(argv, "-blockdev")
          .map((v) => JSON.parse(v) as Record<string, unknown>)
          .sort((x, y) => String(x["node-name"]).localeCompare(String(y["node-name"])));
      expect(blockdevs(ours)).to.deep.equal(blockdevs(theirs));
      expect(argValues(ours, "-fsdev")).to.deep.equal(argValues(theirs, "-fsdev"));
      await impl.remove("storage2", a.outs);
    });

    it("q35: PCIe devices behind pcie-root-ports as libvirt 12.x lays them out, and QEMU has them there", async () => {
      const lab = await requireLab("new");
      const a = await checkAndCreate({
        name: "q35",
        xml: q35Xml(images),
        connection: { uri },
        shutdownTimeoutSeconds: 0,
      });
      const qmp = path.join(state, "q35", "qmp.sock");
      const pci = (await qmpOnce(qmp, "query-pci")) as { devices: PciDevice[] }[];
      const tree = pciTree(pci[0]!.devices);
      expect(tree).to.include({
        "pci.1": "0:1.0",
        "pci.2": "0:1.1",
        "pci.3": "0:1.2",
        "pci.4": "0:1.3",
        "pci.5": "0:1.4",
      });
      // each device on the bus of the root port libvirt gave it (QOM: its parent bus is the port's)
      const ports: Record<string, string> = { net0: "pci.1", usb: "pci.2", "virtio-disk0": "pci.3", balloon0: "pci.4" };
      for (const [id, port] of Object.entries(ports))
        expect(
          await qmpOnce(qmp, "qom-get", { path: `/machine/peripheral/${id}`, property: "parent_bus" }),
          id,
        ).to.match(new RegExp(`/${port.replace(".", "\\.")}/${port.replace(".", "\\.")}$`));
      const pid = Number(fs.readFileSync(path.join(state, "q35", "qemu.pid"), "utf8"));
      const ours = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      const file = path.join(state, "q35-native.xml");
      fs.writeFileSync(file, a.outs.xml);
      const theirs = shellWords((await runVirsh(lab.uri, ["domxml-to-native", "qemu-argv", file])).stdout.trim());
      const drivers = ["pcie-root-port", "qemu-xhci", "virtio-blk-pci", "virtio-net-pci", "virtio-balloon-pci"];
      expect(devicesOf(ours, drivers)).to.deep.equal(devicesOf(theirs, drivers));
      for (const flag of ["-global", "-watchdog-action"])
        expect(argValues(ours, flag), flag).to.deep.equal(argValues(theirs, flag));
      await impl.remove("q35", a.outs);
    });
  });
}
