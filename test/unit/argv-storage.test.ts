/**
 * Disks, controllers and filesystems on the QEMU command line (provider/qemu/storage.ts): each
 * built as libvirt 11.3 writes it (the spellings are those of libvirt's tests/qemuxmlconfdata
 * .args files), and what libvirt refuses or what needs libvirt refused, naming it.
 */
import { expect } from "chai";
import { DomainDef } from "../../provider/xml/domain";
import { deviceJson } from "../../provider/qemu/storage";
import { argv, refusal, values } from "../support/argv";

const U = "33721861-ccee-4dc2-858c-5f1e4629771f";

const doc = (devices = "", machine = "pc", os = "") =>
  DomainDef.parse(
    `<domain type='qemu'><name>d</name><uuid>${U}</uuid><memory unit='MiB'>256</memory><vcpu>1</vcpu>` +
      `<os><type arch='x86_64' machine='${machine}'>hvm</type>${os}</os><devices>${devices}</devices></domain>`,
  );

const json = (d: DomainDef, opt: string) => values(argv(d), opt).map((v) => JSON.parse(v) as Record<string, unknown>);
const device = (d: DomainDef, driver: string) => json(d, "-device").find((x) => x.driver === driver);

const disk = (inner: string, type = "file", dev = "disk") => `<disk type='${type}' device='${dev}'>${inner}</disk>`;
const FILE = "<source file='/i/a.img'/>";

describe("QEMU command line: disks (provider/qemu/storage.ts)", () => {
  it("a USB disk is usb-storage on the root hub at libvirt's next port, removable=false unless asked", () => {
    const d = doc(disk(`${FILE}<target dev='sda' bus='usb'/>`));
    expect(device(d, "usb-storage")).to.deep.equal({
      driver: "usb-storage",
      bus: "usb.0",
      port: "1",
      drive: "libvirt-1-storage",
      id: "usb-disk0",
      removable: false,
      bootindex: 1, // libvirt: no boot element at all boots from the first disk
    });
    const t = doc(`<input type='tablet' bus='usb'/>${disk(`${FILE}<target dev='sdb' bus='usb' removable='on'/>`)}`);
    expect(device(t, "usb-storage")).to.include({ port: "2", id: "usb-disk1", removable: true });
    expect(refusal(doc(disk("<target dev='sda' bus='usb'/>"))).path).to.equal("/domain/devices/disk[1]/source");
  });

  it("wwn as the exact 64-bit number, vendor/product, geometry, blockio, rotation rate, shareable", () => {
    const d = doc(
      disk(
        `${FILE}<target dev='sda' bus='scsi' rotation_rate='7200'/><wwn>5000c50015ea71ad</wwn>` +
          "<vendor>SEAGATE</vendor><product>ST3146707LC</product><shareable/>",
      ) +
        disk(
          `<source file='/i/b.img'/><target dev='hda' bus='ide'/><geometry cyls='16383' heads='16' secs='63' trans='lba'/>` +
            "<blockio logical_block_size='512' physical_block_size='4096'/><product>WD10EZEX</product>",
        ),
    );
    const scsi = values(argv(d), "-device").find((v) => v.includes("scsi-hd"))!;
    expect(scsi).to.include('"wwn":5764824127192592813');
    expect(JSON.parse(scsi)).to.include({
      vendor: "SEAGATE",
      product: "ST3146707LC",
      rotation_rate: 7200,
      "share-rw": true,
      driver: "scsi-hd",
    });
    expect(device(d, "ide-hd")).to.include({
      cyls: 16383,
      heads: 16,
      secs: 63,
      "bios-chs-trans": "lba",
      logical_block_size: 512,
      physical_block_size: 4096,
      model: "WD10EZEX",
    });
    // the SCSI controller libvirt adds for a SCSI disk: lsilogic
    expect(device(d, "lsi")).to.include({ id: "scsi0" });
    expect(deviceJson({ wwn: 2n ** 63n })).to.equal('{"wwn":9223372036854775808}');
  });

  it("error policies, I/O mode, discard, detect_zeroes, copy-on-read, virtio queues and options", () => {
    const d = doc(
      disk(
        "<driver name='qemu' type='qcow2' cache='none' io='native' discard='unmap' detect_zeroes='unmap' " +
          `error_policy='enospace' copy_on_read='on' queues='4' queue_size='256' iommu='on' ats='on'/>${FILE}` +
          "<target dev='vda' bus='virtio'/>",
      ),
    );
    const nodes = json(d, "-blockdev");
    expect(nodes[0]).to.include({ driver: "file", aio: "native", discard: "unmap" });
    expect(nodes[1]).to.include({ driver: "qcow2", discard: "unmap", "detect-zeroes": "unmap" });
    expect(nodes[2]).to.deep.equal({
      driver: "copy-on-read",
      "node-name": "libvirt-CoR-vda",
      file: "libvirt-1-format",
      discard: "unmap",
    });
    expect(device(d, "virtio-blk-pci")).to.include({
      drive: "libvirt-CoR-vda",
      werror: "enospc",
      "num-queues": 4,
      "queue-size": 256,
      iommu_platform: true,
      ats: true,
    });
    expect(device(d, "virtio-blk-pci")).to.not.have.property("rerror");
    // detect_zeroes='unmap' without discard='unmap' is 'on' (libvirt)
    const on = doc(disk(`<driver name='qemu' type='raw' detect_zeroes='unmap'/>${FILE}<target dev='hda' bus='ide'/>`));
    expect(json(on, "-blockdev")[0]).to.include({ "detect-zeroes": "on" });
  });

  it("qcow2 discard_no_unref and metadata cache on the format node; <boot dev> entries numbered by position", () => {
    const d = doc(
      disk(
        "<driver name='qemu' type='qcow2' discard_no_unref='on'><metadata_cache><max_size unit='KiB'>1024</max_size></metadata_cache></driver>" +
          `${FILE}<target dev='vda' bus='virtio'/>`,
      ),
      "pc",
      "<boot dev='cdrom'/><boot dev='hd'/>",
    );
    expect(json(d, "-blockdev")[1]).to.include({ driver: "qcow2", "discard-no-unref": true, "cache-size": 1048576 });
    // no cdrom: the disk is still the second boot entry (libvirt)
    expect(device(d, "virtio-blk-pci")).to.include({ bootindex: 2 });
    expect(
      refusal(
        doc(disk(`<driver name='qemu' type='raw' discard_no_unref='on'/>${FILE}<target dev='vda' bus='virtio'/>`)),
      ).path,
    ).to.equal("/domain/devices/disk[1]/driver");
  });

  it("refuses what a bus cannot carry and what libvirt refuses, naming it", () => {
    expect(refusal(doc(disk(`${FILE}<target dev='hda' bus='ide'/><vendor>X</vendor>`))).path).to.equal(
      "/domain/devices/disk[1]/vendor",
    );
    expect(
      refusal(doc(disk(`${FILE}<target dev='sda' bus='scsi'/><product>12345678901234567</product>`))).path,
    ).to.equal("/domain/devices/disk[1]/product");
    expect(
      refusal(
        doc(disk(`${FILE}<target dev='hda' bus='ide'/>`) + disk(`<source file='/i/b'/><target dev='hda' bus='ide'/>`)),
      ).path,
    ).to.equal("/domain/devices/disk[2]/target/@dev");
    expect(
      refusal(doc(disk(`<driver name='qemu' type='qcow2'/>${FILE}<target dev='hda' bus='ide'/><shareable/>`))).path,
    ).to.equal("/domain/devices/disk[1]/shareable");
    expect(
      refusal(doc(disk(`<driver name='qemu' type='raw' queues='2'/>${FILE}<target dev='hda' bus='ide'/>`))).path,
    ).to.equal("/domain/devices/disk[1]/driver/@queues");
  });

  it("network disks are QEMU's own block drivers; libvirt secrets, cookies, TLS and ssh are refused", () => {
    const d = doc(
      disk(
        "<source protocol='nbd' name='bar'><host name='example.org' port='6000'/></source><target dev='vda' bus='virtio'/>",
        "network",
      ) +
        disk(
          "<source protocol='rbd' name='pool/image'><host name='mon1' port='6321'/><host name='mon2'/><snapshot name='s'/></source><target dev='vdb' bus='virtio'/>",
          "network",
        ) +
        disk(
          "<source protocol='iscsi' name='iqn.1992-01.com.example:storage/1'><host name='example.org'/></source><target dev='vdc' bus='virtio'/>",
          "network",
        ) +
        disk(
          "<source protocol='https' name='a.iso' query='x=1'><host name='example.org'/><ssl verify='no'/></source><target dev='hdc' bus='ide'/>",
          "network",
          "cdrom",
        ),
    );
    const nodes = json(d, "-blockdev");
    expect(nodes).to.deep.include({
      driver: "nbd",
      server: { type: "inet", host: "example.org", port: "6000" },
      export: "bar",
      "node-name": "libvirt-4-storage",
      "read-only": false,
    });
    expect(nodes).to.deep.include({
      driver: "rbd",
      pool: "pool",
      image: "image",
      snapshot: "s",
      server: [
        { host: "mon1", port: "6321" },
        { host: "mon2", port: "6789" },
      ],
      "node-name": "libvirt-3-storage",
      "read-only": false,
    });
    expect(nodes).to.deep.include({
      driver: "iscsi",
      portal: "example.org:3260",
      target: "iqn.1992-01.com.example:storage",
      lun: 1,
      transport: "tcp",
      "node-name": "libvirt-2-storage",
      "read-only": false,
    });
    expect(nodes).to.deep.include({
      driver: "https",
      url: "https://example.org:443/a.iso?x=1",
      sslverify: false,
      "node-name": "libvirt-1-storage",
      "read-only": true,
    });
    const auth = refusal(
      doc(
        disk(
          "<auth username='u'><secret type='iscsi' usage='x'/></auth><source protocol='iscsi' name='iqn.x/1'><host name='h'/></source><target dev='vda' bus='virtio'/>",
          "network",
        ),
      ),
    );
    expect(auth.path).to.equal("/domain/devices/disk[1]/auth");
    expect(auth.fix).to.match(/secret driver/);
    expect(
      refusal(
        doc(
          disk("<source protocol='nbd' tls='yes'><host name='h'/></source><target dev='vda' bus='virtio'/>", "network"),
        ),
      ).path,
    ).to.equal("/domain/devices/disk[1]/source/@tls");
    expect(
      refusal(
        doc(
          disk("<source protocol='ssh' name='i'><host name='h'/></source><target dev='vda' bus='virtio'/>", "network"),
        ),
      ).path,
    ).to.equal("/domain/devices/disk[1]/source/@protocol");
  });

  it("a backing chain: read-only layers, each format node's backing the layer below, null above <backingStore/>", () => {
    const d = doc(
      disk(
        "<driver name='qemu' type='qcow2'/><source file='/i/top.qcow2'/>" +
          "<backingStore type='file'><format type='qcow2'/><source file='/i/mid.qcow2'/>" +
          "<backingStore type='block'><format type='raw'/><source dev='/dev/vg/base'/><backingStore/></backingStore>" +
          "</backingStore><target dev='vda' bus='virtio'/>",
      ) + disk(`${FILE}<target dev='vdb' bus='virtio'/>`),
    );
    expect(json(d, "-blockdev")).to.deep.equal([
      { driver: "host_device", filename: "/dev/vg/base", "node-name": "libvirt-4-storage", "read-only": true },
      {
        driver: "file",
        filename: "/i/mid.qcow2",
        "node-name": "libvirt-3-storage",
        "auto-read-only": true,
        discard: "unmap",
      },
      {
        "node-name": "libvirt-3-format",
        "read-only": true,
        driver: "qcow2",
        file: "libvirt-3-storage",
        backing: "libvirt-4-storage",
      },
      {
        driver: "file",
        filename: "/i/top.qcow2",
        "node-name": "libvirt-2-storage",
        "auto-read-only": true,
        discard: "unmap",
      },
      {
        "node-name": "libvirt-2-format",
        "read-only": false,
        driver: "qcow2",
        file: "libvirt-2-storage",
        backing: "libvirt-3-format",
      },
      { driver: "file", filename: "/i/a.img", "node-name": "libvirt-1-storage", "read-only": false },
    ]);
    expect(
      refusal(
        doc(
          disk(
            "<driver name='qemu' type='qcow2'/><source file='/t'/><backingStore type='file'><source file='/b'/></backingStore><target dev='vda' bus='virtio'/>",
          ),
        ),
      ).path,
    ).to.equal("/domain/devices/disk[1]/backingStore/format");
  });

  it("<target tray> and <mirror> produce no argument, as in libvirt", () => {
    const d = doc(
      disk(
        `${FILE}<backingStore/><mirror type='file' file='/c' job='copy'/><target dev='hdc' bus='ide' tray='open'/>`,
        "file",
        "cdrom",
      ),
    );
    expect(device(d, "ide-cd")).to.deep.equal({
      driver: "ide-cd",
      bus: "ide.1",
      unit: 0,
      drive: "libvirt-1-storage",
      id: "ide0-1-0",
    });
  });
});

describe("QEMU command line: controllers (provider/qemu/storage.ts)", () => {
  it("xHCI ports as p2/p3; ICH9 EHCI with its UHCI companions in one slot; companions need their EHCI", () => {
    expect(device(doc("<controller type='usb' index='0' model='qemu-xhci' ports='8'/>"), "qemu-xhci")).to.deep.equal({
      driver: "qemu-xhci",
      id: "usb",
      p2: 8,
      p3: 8,
      bus: "pci.0",
      addr: "0x2",
    });
    const d = doc(
      "<controller type='usb' index='0' model='ich9-ehci1'/><controller type='usb' index='0' model='ich9-uhci1'/>" +
        "<controller type='usb' index='0' model='ich9-uhci2'/>",
    );
    expect(device(d, "ich9-usb-ehci1")).to.deep.equal({
      driver: "ich9-usb-ehci1",
      id: "usb",
      bus: "pci.0",
      addr: "0x2.0x7",
    });
    expect(device(d, "ich9-usb-uhci1")).to.deep.equal({
      driver: "ich9-usb-uhci1",
      masterbus: "usb.0",
      firstport: 0,
      bus: "pci.0",
      addr: "0x2",
      multifunction: true,
    });
    expect(device(d, "ich9-usb-uhci2")).to.include({ firstport: 2, addr: "0x2.0x1" });
    expect(refusal(doc("<controller type='usb' index='0' model='ich9-uhci2'/>")).message).to.match(/no master USB/);
    expect(refusal(doc("<controller type='usb' index='0' model='piix3-uhci' ports='4'/>")).path).to.equal(
      "/domain/devices/controller[1]/@ports",
    );
  });

  it("virtio-scsi <driver> and virtio options, virtio-serial ports and vectors, model auto is lsilogic", () => {
    const d = doc(
      "<controller type='scsi' index='0' model='virtio-scsi'><driver queues='8' cmd_per_lun='50' max_sectors='512' ioeventfd='on' packed='on'/></controller>" +
        "<controller type='virtio-serial' index='0' ports='16' vectors='4'/><controller type='scsi' index='1' model='auto'/>",
    );
    expect(device(d, "virtio-scsi-pci")).to.include({
      num_queues: 8,
      cmd_per_lun: 50,
      max_sectors: 512,
      ioeventfd: true,
      packed: true,
    });
    expect(device(d, "virtio-serial-pci")).to.include({ max_ports: 16, vectors: 4 });
    expect(device(d, "lsi")).to.include({ id: "scsi1" });
    const sas = doc(
      `<controller type='scsi' index='0' model='lsisas1078'/>${disk(`${FILE}<target dev='sda' bus='scsi'/>`)}`,
    );
    expect(device(sas, "megasas")).to.include({ id: "scsi0" });
    expect(device(sas, "scsi-hd")).to.include({ bus: "scsi0.0", channel: 0, "scsi-id": 0, lun: 0 });
    expect(
      refusal(doc("<controller type='virtio-serial' index='0'><driver iothread='1'/></controller>")).path,
    ).to.equal("/domain/devices/controller[1]/driver/@iothread");
  });

  it("the PC machine's pci-root <target hotplug> as PIIX4_PM.acpi-root-pci-hotplug; a <target> elsewhere refused", () => {
    const d = doc("<controller type='pci' index='0' model='pci-root'><target hotplug='off'/></controller>");
    expect(values(argv(d), "-global")).to.include("PIIX4_PM.acpi-root-pci-hotplug=off");
    expect(
      refusal(doc("<controller type='usb' index='0' model='qemu-xhci'><target chassis='1'/></controller>")).path,
    ).to.equal("/domain/devices/controller[1]/target");
  });

  it("PCI slots in libvirt's order: network interfaces before the device controllers", () => {
    const d = doc(
      "<controller type='usb' index='0' model='qemu-xhci'/><interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/></interface>",
    );
    expect(device(d, "virtio-net-pci")).to.include({ addr: "0x2" });
    expect(device(d, "qemu-xhci")).to.include({ addr: "0x3" });
  });
});

describe("QEMU command line: filesystems (provider/qemu/storage.ts)", () => {
  it("9p over virtio-9p-pci with -fsdev local, as libvirt writes it; virtiofs and others refused with the reason", () => {
    const d = doc(
      "<filesystem type='mount' accessmode='mapped' fmode='644'><driver type='path' wrpolicy='immediate'/>" +
        "<source dir='/export/a,b'/><target dir='tag'/><readonly/></filesystem>",
    );
    expect(values(argv(d), "-fsdev")).to.deep.equal([
      "local,security_model=mapped,writeout=immediate,fmode=0644,id=fsdev-fs0,path=/export/a,,b,readonly=on",
    ]);
    expect(device(d, "virtio-9p-pci")).to.deep.equal({
      driver: "virtio-9p-pci",
      id: "fs0",
      fsdev: "fsdev-fs0",
      mount_tag: "tag",
      bus: "pci.0",
      addr: "0x2",
    });
    const vfs = refusal(
      doc("<filesystem type='mount'><driver type='virtiofs'/><source dir='/e'/><target dir='t'/></filesystem>"),
    );
    expect(vfs.path).to.equal("/domain/devices/filesystem[1]/driver/@type");
    expect(vfs.fix).to.match(/virtiofsd/);
    expect(refusal(doc("<filesystem type='mount'><source dir='/e'/></filesystem>")).path).to.equal(
      "/domain/devices/filesystem[1]/target/@dir",
    );
  });
});

describe("QEMU command line: the q35 PCIe layout (provider/qemu/argv.ts assignPciSlots)", () => {
  it("a pcie-root-port for each PCIe device and one spare, the implicit qemu-xhci and iTCO watchdog, as libvirt", () => {
    const d = doc(
      disk(`<driver name='qemu' type='raw'/>${FILE}<target dev='vda' bus='virtio'/>`) +
        "<interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/></interface>",
      "q35",
    );
    const ports = json(d, "-device").filter((x) => x.driver === "pcie-root-port");
    expect(ports).to.deep.equal([
      { driver: "pcie-root-port", port: 8, chassis: 1, id: "pci.1", bus: "pcie.0", multifunction: true, addr: "0x1" },
      { driver: "pcie-root-port", port: 9, chassis: 2, id: "pci.2", bus: "pcie.0", addr: "0x1.0x1" },
      { driver: "pcie-root-port", port: 10, chassis: 3, id: "pci.3", bus: "pcie.0", addr: "0x1.0x2" },
      { driver: "pcie-root-port", port: 11, chassis: 4, id: "pci.4", bus: "pcie.0", addr: "0x1.0x3" },
      { driver: "pcie-root-port", port: 12, chassis: 5, id: "pci.5", bus: "pcie.0", addr: "0x1.0x4" },
    ]);
    // libvirt's order: interfaces, controllers (the implicit qemu-xhci), virtio disks, the balloon
    expect(device(d, "virtio-net-pci")).to.include({ bus: "pci.1", addr: "0x0" });
    expect(device(d, "qemu-xhci")).to.deep.equal({ driver: "qemu-xhci", id: "usb", bus: "pci.2", addr: "0x0" });
    expect(device(d, "virtio-blk-pci")).to.include({ bus: "pci.3", addr: "0x0" });
    expect(device(d, "virtio-balloon-pci")).to.include({ bus: "pci.4", addr: "0x0" });
    const a = argv(d);
    expect(values(a, "-global")).to.include("ICH9-LPC.noreboot=off");
    expect(values(a, "-watchdog-action")).to.deep.equal(["reset"]);
  });
});

describe("QEMU command line: written pcie-root-ports on q35", () => {
  it("written ports are built (model name, target chassis/port, address); devices take free ones or sit on their written bus", () => {
    const d = doc(
      "<controller type='pci' index='0' model='pcie-root'/>" +
        "<controller type='pci' index='1' model='pcie-root-port'/>" +
        "<controller type='pci' index='2' model='pcie-root-port'><model name='ioh3420'/><target chassis='7' port='0x20'/>" +
        "<address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/></controller>" +
        "<memballoon model='virtio'><address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x0'/></memballoon>",
      "q35",
    );
    expect(json(d, "-device").filter((x) => String(x.id).startsWith("pci."))).to.deep.equal([
      { driver: "pcie-root-port", port: 8, chassis: 1, id: "pci.1", bus: "pcie.0", addr: "0x1" },
      { driver: "ioh3420", port: 32, chassis: 7, id: "pci.2", bus: "pcie.0", addr: "0x4" },
      // every port taken, but the definition states its PCI controllers: libvirt adds no spare
      // (qemuDomainAssignPCIAddresses adds one only when no controller beyond the root is written)
    ]);
    // the implicit qemu-xhci takes the free port 1; the balloon is on its written port 2
    expect(device(d, "qemu-xhci")).to.include({ bus: "pci.1", addr: "0x0" });
    expect(device(d, "virtio-balloon-pci")).to.include({ bus: "pci.2", addr: "0x0" });
    expect(
      refusal(doc("<controller type='usb' index='0' model='qemu-xhci'><model name='x'/></controller>")).path,
    ).to.equal("/domain/devices/controller[1]/model");
  });
});
