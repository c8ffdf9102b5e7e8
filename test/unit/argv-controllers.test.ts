/**
 * The PCI bus tree on the QEMU command line (provider/qemu/controllers.ts): every x86 PCI
 * controller model, the layout of devices written without an address, and the rules libvirt
 * checks, each as libvirt 11.3 writes or refuses it (the spellings are those of libvirt's
 * tests/qemuxmlconfdata .args and .err files: pcie-switch-downstream-port, watchdog-q35-multiple,
 * q35-pci-force-address, q35-usb2, pci-expander-bus, pcie-expander-bus, pci-autoadd-addr,
 * pcie-root-port-nohotplug, q35-dmi-bad-address2, pcie-root-port-too-many, ...).
 */
import { expect } from "chai";
import { DomainDef } from "../../provider/xml/domain";
import { devices, refusal } from "../support/argv";

const U = "33721861-ccee-4dc2-858c-5f1e4629771f";

const doc = (inner = "", machine = "q35", cpu = "") =>
  DomainDef.parse(
    `<domain type='qemu'><name>d</name><uuid>${U}</uuid><memory unit='MiB'>256</memory><vcpu>2</vcpu>${cpu}<features><acpi/></features>` +
      `<os><type arch='x86_64' machine='${machine}'>hvm</type></os><devices>${inner}</devices></domain>`,
  );

const pci = (index: number, model: string, inner = "") =>
  `<controller type='pci' index='${index}' model='${model}'>${inner}</controller>`;
const addr = (bus: number, slot: number, fn = 0) =>
  `<address type='pci' domain='0x0000' bus='${bus}' slot='${slot}' function='${fn}'/>`;
const NONE = "<memballoon model='none'/>";
const buses = (d: DomainDef) => devices(d).filter((x) => String(x.id).startsWith("pci."));
const byId = (d: DomainDef, id: string) => devices(d).find((x) => x.id === id);

describe("QEMU command line: the PCI bus tree (provider/qemu/controllers.ts)", () => {
  it("a PCIe switch: the upstream port on a root port, downstream ports on it (port = slot, chassis = index), a device on a free downstream port", () => {
    const d = doc(
      pci(0, "pcie-root") +
        pci(1, "pcie-root-port") +
        pci(2, "pcie-switch-upstream-port") +
        pci(3, "pcie-switch-downstream-port") +
        pci(4, "pcie-switch-downstream-port", "<model name='xio3130-downstream'/><target chassis='30' port='0x27'/>") +
        NONE,
    );
    expect(buses(d)).to.deep.equal([
      { driver: "pcie-root-port", port: 8, chassis: 1, id: "pci.1", bus: "pcie.0", addr: "0x1" },
      { driver: "x3130-upstream", id: "pci.2", bus: "pci.1", addr: "0x0" },
      { driver: "xio3130-downstream", port: 0, chassis: 3, id: "pci.3", bus: "pci.2", addr: "0x0" },
      { driver: "xio3130-downstream", port: 39, chassis: 30, id: "pci.4", bus: "pci.2", addr: "0x1" },
    ]);
    // the implicit qemu-xhci takes the first free PCIe slot: downstream port 3
    expect(byId(d, "usb")).to.include({ driver: "qemu-xhci", bus: "pci.3", addr: "0x0" });
  });

  it("q35: a conventional PCI device goes behind a pcie-to-pci-bridge on a root port of its own, and a spare root port is added", () => {
    const d = doc(pci(0, "pcie-root") + "<controller type='usb' model='none'/><watchdog model='i6300esb'/>" + NONE);
    expect(buses(d)).to.deep.equal([
      { driver: "pcie-root-port", port: 8, chassis: 1, id: "pci.1", bus: "pcie.0", multifunction: true, addr: "0x1" },
      { driver: "pcie-pci-bridge", id: "pci.2", bus: "pci.1", addr: "0x0" },
      { driver: "pcie-root-port", port: 9, chassis: 3, id: "pci.3", bus: "pcie.0", addr: "0x1.0x1" },
    ]);
    expect(byId(d, "watchdog0")).to.include({ driver: "i6300esb", bus: "pci.2", addr: "0x1" });
  });

  it("q35: a dmi-to-pci-bridge at 1e, a pci-bridge behind it (chassis_nr = index), a device written onto the bridge", () => {
    const d = doc(
      pci(0, "pcie-root") +
        pci(1, "dmi-to-pci-bridge") +
        pci(2, "pci-bridge", "<target memReserve='8196'/>") +
        `<interface type='user'><mac address='52:54:00:00:00:01'/><model type='e1000'/>${addr(2, 3)}</interface>` +
        NONE,
    );
    expect(buses(d).slice(0, 2)).to.deep.equal([
      { driver: "i82801b11-bridge", id: "pci.1", bus: "pcie.0", addr: "0x1e" },
      { driver: "pci-bridge", chassis_nr: 2, "mem-reserve": 8392704, id: "pci.2", bus: "pci.1", addr: "0x0" },
    ]);
    expect(byId(d, "net0")).to.include({ driver: "e1000", bus: "pci.2", addr: "0x3" });
  });

  it("the PC machine: a device written on a bus the definition lacks gets libvirt's pci-bridge, devices fill pci.0 first", () => {
    const d = doc(`<rng model='virtio'><backend model='random'>/dev/urandom</backend>${addr(1, 4)}</rng>` + NONE, "pc");
    expect(buses(d)).to.deep.equal([{ driver: "pci-bridge", chassis_nr: 1, id: "pci.1", bus: "pci.0", addr: "0x2" }]);
    expect(byId(d, "rng0")).to.include({ bus: "pci.1", addr: "0x4" });
  });

  it("expander buses: pxb with its busNr and guest NUMA node, pxb-pcie with a root port behind it", () => {
    const numa = "<cpu><numa><cell id='0' cpus='0-1' memory='262144' unit='KiB'/></numa></cpu>";
    const pxb = doc(
      pci(0, "pci-root") + pci(1, "pci-expander-bus", "<target busNr='252'><node>0</node></target>") + NONE,
      "pc",
      numa,
    );
    expect(buses(pxb)).to.deep.equal([
      { driver: "pxb", bus_nr: 252, id: "pci.1", numa_node: 0, bus: "pci.0", addr: "0x2" },
    ]);
    // no busNr: the lowest busNr less two (qemuDomainAddressFindNewBusNr)
    const auto = doc(pci(0, "pci-root") + pci(1, "pci-expander-bus") + NONE, "pc");
    expect(byId(auto, "pci.1")).to.include({ bus_nr: 254 });
    const pcie = doc(
      pci(0, "pcie-root") +
        pci(1, "pcie-expander-bus", `<target busNr='254'/>${addr(0, 4)}`) +
        pci(2, "pcie-root-port", addr(1, 0)) +
        NONE,
    );
    expect(buses(pcie).slice(0, 2)).to.deep.equal([
      { driver: "pxb-pcie", bus_nr: 254, id: "pci.1", bus: "pcie.0", addr: "0x4" },
      { driver: "pcie-root-port", port: 0, chassis: 2, id: "pci.2", bus: "pci.1", addr: "0x0" },
    ]);
  });

  it("hotplug='off' on a root port, an ioh3420 model name, an empty PCI address laid out as none", () => {
    const d = doc(
      pci(0, "pcie-root") +
        pci(1, "pcie-root-port", "<model name='ioh3420'/><target hotplug='off'/><address type='pci'/>") +
        NONE,
    );
    expect(buses(d)).to.deep.equal([
      { driver: "ioh3420", port: 8, chassis: 1, id: "pci.1", hotplug: false, bus: "pcie.0", addr: "0x1" },
    ]);
  });

  it("q35: ICH9 USB2 controllers at 1d and 1a, companions at their functions of the same slot", () => {
    const usb2 = (i: number) =>
      ["ich9-ehci1", "ich9-uhci1", "ich9-uhci2", "ich9-uhci3"]
        .map((m) => `<controller type='usb' index='${i}' model='${m}'/>`)
        .join("");
    const d = doc(pci(0, "pcie-root") + usb2(0) + usb2(1) + NONE);
    const at = devices(d)
      .filter((x) => String(x.driver).startsWith("ich9-usb"))
      .map((x) => `${String(x.driver)}@${String(x.bus)}:${String(x.addr)}`);
    expect(at).to.deep.equal([
      "ich9-usb-ehci1@pcie.0:0x1d.0x7",
      "ich9-usb-uhci1@pcie.0:0x1d",
      "ich9-usb-uhci2@pcie.0:0x1d.0x1",
      "ich9-usb-uhci3@pcie.0:0x1d.0x2",
      "ich9-usb-ehci1@pcie.0:0x1a.0x7",
      "ich9-usb-uhci1@pcie.0:0x1a",
      "ich9-usb-uhci2@pcie.0:0x1a.0x1",
      "ich9-usb-uhci3@pcie.0:0x1a.0x2",
    ]);
  });

  it("virtio-iommu and pvpanic are integrated devices: the first free slot of the root bus", () => {
    const d = doc(pci(0, "pcie-root") + "<controller type='usb' model='none'/><iommu model='virtio'/>" + NONE);
    expect(byId(d, "iommu0")).to.include({ bus: "pcie.0", addr: "0x1" });
    // pvpanic-pci is integrated too: the first free slot of pci.0; q35's pcie.0 takes no conventional
    // PCI device libvirt could lay out there, so it needs a written address
    expect(devices(doc("<panic model='pvpanic'/>" + NONE, "pc")).find((x) => x.driver === "pvpanic-pci")).to.include({
      bus: "pci.0",
      addr: "0x2",
    });
    expect(refusal(doc("<panic model='pvpanic'/>" + NONE)).path).to.equal("/domain/devices/panic[1]");
  });

  it("refuses what libvirt refuses, naming the element: a bus that does not take the device, a duplicate index, a PCIe controller on the PC machine, a slot used twice, too many root ports", () => {
    // q35-dmi-bad-address2: a dmi-to-pci-bridge plugs into pcie-root only
    const bad = refusal(doc(pci(0, "pcie-root") + pci(1, "pcie-root-port") + pci(2, "dmi-to-pci-bridge", addr(1, 0))));
    expect(bad.path).to.equal("/domain/devices/controller[3]/address");
    expect(bad.message).to.match(/requires a controller that accepts a dmi-to-pci-bridge/);
    // pci-bridge-duplicate-index
    expect(refusal(doc(pci(0, "pcie-root") + pci(1, "pcie-root-port") + pci(1, "pcie-root-port"))).path).to.equal(
      "/domain/devices/controller[3]/@index",
    );
    expect(refusal(doc(pci(0, "pci-root") + pci(1, "pcie-root-port"), "pc")).path).to.equal(
      "/domain/devices/controller[2]/@model",
    );
    // pcie-expander-bus-bad-machine, pci-expander-bus-bad-node
    expect(refusal(doc(pci(0, "pci-root") + pci(1, "pcie-expander-bus"), "pc")).path).to.equal(
      "/domain/devices/controller[2]/@model",
    );
    expect(
      refusal(doc(pci(0, "pci-root") + pci(1, "pci-expander-bus", "<target><node>1</node></target>"), "pc")).path,
    ).to.equal("/domain/devices/controller[2]/target/node");
    const twice = `<watchdog model='i6300esb'>${addr(0, 5)}</watchdog><rng model='virtio'><backend model='random'>/dev/urandom</backend>${addr(0, 5)}</rng>`;
    expect(refusal(doc(twice, "pc")).message).to.match(/used twice/);
    // pcie-root-port-too-many: 31 slots of 8 ports, one slot the video's... none left
    const ports = Array.from({ length: 31 * 8 }, (_, i) => pci(i + 1, "pcie-root-port")).join("");
    const many = refusal(doc(pci(0, "pcie-root") + ports + NONE));
    expect(many.message).to.match(/pcie-root-port/);
  });

  it("USB controllers: model='none' disables USB (no other controller, no USB device), isapc has no PCI bus for one", () => {
    const none = "<controller type='usb' index='0' model='none'/>";
    // usb-none-other, usb-none-usbtablet, usb-controller-default-isapc
    expect(refusal(doc(none + "<controller type='usb' index='1' model='qemu-xhci'/>", "pc")).path).to.equal(
      "/domain/devices/controller[2]",
    );
    expect(refusal(doc(none + "<input type='tablet' bus='usb'/>", "pc")).path).to.equal("/domain/devices/input[1]");
    const isapc = refusal(doc("<controller type='usb' index='0'/>", "isapc"));
    expect(isapc.path).to.equal("/domain/devices/controller[1]");
    expect(isapc.message).to.match(/no PCI bus/);
    expect(devices(doc(none + NONE, "pc")).some((x) => String(x.driver).includes("usb"))).to.equal(false);
  });

  it("a virtio-scsi controller's iothreads: iothread, or iothread-vq-mapping with its queues; unknown iothreads and half-mapped queues refused", () => {
    const scsi = (driver: string) =>
      DomainDef.parse(
        `<domain type='qemu'><name>d</name><uuid>${U}</uuid><memory unit='MiB'>256</memory><vcpu>1</vcpu><iothreads>4</iothreads>` +
          `<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>` +
          `<controller type='scsi' index='0' model='virtio-scsi'>${driver}</controller>${NONE}</devices></domain>`,
      );
    expect(byId(scsi("<driver iothread='2'/>"), "scsi0")).to.include({ iothread: "iothread2" });
    // iothreads-virtio-scsi-mapping
    const mapped = byId(
      scsi(
        "<driver queues='2'><iothreads><iothread id='4'><queue id='0'/></iothread><iothread id='2'><queue id='1'/></iothread></iothreads></driver>",
      ),
      "scsi0",
    );
    expect(mapped).to.deep.include({
      num_queues: 2,
      "iothread-vq-mapping": [
        { iothread: "iothread4", vqs: [0] },
        { iothread: "iothread2", vqs: [1] },
      ],
    });
    expect(refusal(scsi("<driver iothread='5'/>")).path).to.equal("/domain/devices/controller[1]/driver/@iothread");
    expect(
      refusal(
        scsi(
          "<driver queues='2'><iothreads><iothread id='1'><queue id='0'/></iothread><iothread id='2'/></iothreads></driver>",
        ),
      ).path,
    ).to.equal("/domain/devices/controller[1]/driver/iothreads");
  });

  it("controllers written without an index get libvirt's (autoindex): the lowest unused, a USB2 companion joins the group before it", () => {
    const usb = (m: string) => `<controller type='usb' model='${m}'/>`;
    const d = doc(
      "<controller type='pci' model='pcie-root'/><controller type='pci' model='pcie-root-port'/>" +
        ["ich9-ehci1", "ich9-uhci1", "ich9-ehci1", "ich9-uhci1", "ich9-uhci1", "ich9-ehci1", "nec-xhci"]
          .map(usb)
          .join("") +
        NONE,
    );
    const usbs = devices(d)
      .filter((x) => /usb/.test(String(x.driver)))
      .map((x) => `${String(x.driver)} ${String(x.id ?? x.masterbus)}`);
    expect(usbs).to.deep.equal([
      "ich9-usb-ehci1 usb",
      "ich9-usb-uhci1 usb.0",
      "ich9-usb-ehci1 usb1",
      "ich9-usb-uhci1 usb1.0",
      "ich9-usb-uhci1 usb2.0", // a second UHCI1 after the group of index 1: a new index
      "ich9-usb-ehci1 usb2", // and the EHCI after it joins that group
      "nec-usb-xhci usb3",
    ]);
    expect(buses(d)[0]).to.include({ id: "pci.1" });
  });

  it("transitional virtio-serial and virtio-scsi controllers are their -transitional devices in a conventional PCI slot; non-transitional ones are PCIe", () => {
    const d = doc(
      pci(0, "pcie-root") +
        "<controller type='usb' model='none'/>" +
        "<controller type='virtio-serial' index='0' model='virtio-transitional'/>" +
        "<controller type='scsi' index='0' model='virtio-non-transitional'/>" +
        "<controller type='scsi' index='1' model='virtio-transitional'><driver queues='2'/></controller>" +
        NONE,
    );
    expect(byId(d, "virtio-serial0")).to.include({ driver: "virtio-serial-pci-transitional", bus: "pci.2" });
    expect(byId(d, "scsi0")).to.include({ driver: "virtio-scsi-pci-non-transitional", bus: "pci.3", addr: "0x0" });
    expect(byId(d, "scsi1")).to.include({ driver: "virtio-scsi-pci-transitional", num_queues: 2, bus: "pci.2" });
    // a model the builder does not know is refused, not dropped
    expect(refusal(doc("<controller type='virtio-serial' model='x'/>", "pc")).path).to.equal(
      "/domain/devices/controller[1]/@model",
    );
  });
});
