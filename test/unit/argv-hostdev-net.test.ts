/**
 * The hostdev-net family of the QEMU command line (issue 12, provider/qemu/hostdev-net.ts):
 * host devices, interface back-ends and <driver> options, panic, IOMMU, vsock, USB hubs and
 * smartcards, each as libvirt writes it (the corpus .args are the oracle), and refused with the
 * element named where QEMU alone cannot do it.
 */
import { expect } from "chai";
import { DomainDef } from "../../provider/xml/domain";
import { argv, refusalOrAccepted, values } from "../support/argv";

const U = "33721861-ccee-4dc2-858c-5f1e4629771f";

const doc = (devices: string, machine = "pc", features = "") =>
  DomainDef.parse(
    `<domain type='qemu'><name>d</name><uuid>${U}</uuid><memory unit='MiB'>64</memory><vcpu>1</vcpu>` +
      `<os><type arch='x86_64' machine='${machine}'>hvm</type></os>${features}<devices>${devices}</devices></domain>`,
  );

/** The values of every occurrence of an option. */
/** The -device (or other JSON option) objects of a command line. */
const jsons = (d: DomainDef, opt = "-device") =>
  values(argv(d), opt).flatMap((v) => (v.startsWith("{") ? [JSON.parse(v) as Record<string, unknown>] : []));
const device = (d: DomainDef, driver: string) => jsons(d).filter((j) => j.driver === driver);

const refusal = refusalOrAccepted;
const refusedAt = (d: DomainDef) => {
  const e = refusal(d);
  return e === "accepted" ? e : e.path;
};

const pci = (dom: string, bus: string, slot: string, fn: string, extra = "", attrs = "") =>
  `<hostdev mode='subsystem' type='pci' managed='yes'${attrs}><source><address domain='${dom}' bus='${bus}' slot='${slot}' function='${fn}'/></source>${extra}</hostdev>`;

describe("QEMU command line: host devices, interfaces and small devices (hostdev-net)", () => {
  it("a PCI host device is vfio-pci with host=DDDD:BB:SS.F, slotted after the virtio disks and before the balloon", () => {
    const d = doc(pci("0x0000", "0x06", "0x12", "0x5") + "<memballoon model='virtio'/>");
    expect(device(d, "vfio-pci")).to.deep.equal([
      { driver: "vfio-pci", host: "0000:06:12.5", id: "hostdev0", bus: "pci.0", addr: "0x2" },
    ]);
    expect(device(d, "virtio-balloon-pci")[0]).to.include({ addr: "0x3" });
    // decimal source addresses, as libvirt reads them (hostdev-vfio-multidomain)
    expect(device(doc(pci("0x0021", "222", "31", "1")), "vfio-pci")[0]).to.include({ host: "0021:de:1f.1" });
  });
  it("an unassigned PCI host device is not on the command line but keeps its index", () => {
    const d = doc(
      pci("0x0005", "0x90", "0x01", "0x0") +
        pci("0x0005", "0x90", "0x01", "0x1", "<address type='unassigned'/>") +
        pci("0x0005", "0x90", "0x01", "0x2"),
    );
    expect(device(d, "vfio-pci").map((j) => [j.id, j.addr])).to.deep.equal([
      ["hostdev0", "0x2"],
      ["hostdev2", "0x3"],
    ]);
  });
  it("display and ramfb of a PCI or mediated device, <rom>, and libvirt's checks on them", () => {
    const g = "<graphics type='vnc' port='5900'/>";
    const d = doc(
      g +
        "<hostdev mode='subsystem' type='mdev' model='vfio-pci' display='on' ramfb='on'><source><address uuid='53764d0e-85a0-42b4-af5c-2046b460b1dc'/></source></hostdev>" +
        pci("0x0000", "0x06", "0x13", "0x6", "<rom bar='on' file='/etc/fake/bootrom.bin'/>"),
    );
    expect(device(d, "vfio-pci-nohotplug")[0]).to.include({
      sysfsdev: "/sys/bus/mdev/devices/53764d0e-85a0-42b4-af5c-2046b460b1dc",
      display: "on",
      ramfb: true,
    });
    expect(device(d, "vfio-pci")[0]).to.include({ rombar: 1, romfile: "/etc/fake/bootrom.bin" });
    const mdev = (attrs: string) =>
      `<hostdev mode='subsystem' type='mdev' model='vfio-pci'${attrs}><source><address uuid='53764d0e-85a0-42b4-af5c-2046b460b1dc'/></source></hostdev>`;
    expect(device(doc(mdev("")), "vfio-pci")[0]).to.include({ display: "off" });
    expect(refusedAt(doc(mdev(" display='on'")))).to.match(/hostdev\[1\]\/@display$/);
    expect(refusedAt(doc(mdev("") + mdev("")))).to.match(/hostdev\[2\]\/source$/);
    const rf = (n: string) =>
      `<hostdev mode='subsystem' type='mdev' model='vfio-pci' display='on' ramfb='on'><source><address uuid='53764d0e-85a0-42b4-af5c-2046b460b1d${n}'/></source></hostdev>`;
    expect(refusedAt(doc(g + rf("c") + rf("d")))).to.match(/hostdev\[2\]\/@ramfb$/);
  });
  it("a USB host device is usb-host on /dev/bus/usb/BBB/DDD with guest-reset, boot order and the next root port", () => {
    const d = doc(
      "<hostdev mode='subsystem' type='usb' managed='no'><source guestReset='uninitialized'><address bus='14' device='6'/></source><boot order='1'/></hostdev>" +
        "<input type='tablet' bus='usb'/>",
    );
    expect(device(d, "usb-host")).to.deep.equal([
      {
        driver: "usb-host",
        hostdevice: "/dev/bus/usb/014/006",
        id: "hostdev0",
        "guest-reset": true,
        "guest-resets-all": false,
        bootindex: 1,
        bus: "usb.0",
        port: "1",
      },
    ]);
    // USB inputs are numbered after host devices (virDomainUSBDeviceDefForeach)
    expect(device(d, "usb-tablet")[0]).to.include({ port: "2" });
    expect(
      refusedAt(
        doc(
          "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/><product id='0xbeef'/></source></hostdev>",
        ),
      ),
    ).to.match(/hostdev\[1\]\/source$/);
  });
  it("SCSI host devices are refused (sysfs lookup, iSCSI), vhost-scsi is vhost-scsi-pci with the wwpn", () => {
    expect(
      refusedAt(
        doc(
          "<hostdev mode='subsystem' type='scsi'><source><adapter name='scsi_host0'/><address bus='0' target='0' unit='0'/></source></hostdev>",
        ),
      ),
    ).to.match(/hostdev\[1\]\/@type$/);
    const v = doc(
      "<hostdev mode='subsystem' type='scsi_host' managed='no'><source protocol='vhost' wwpn='naa.5123456789abcde0'/></hostdev>",
    );
    expect(device(v, "vhost-scsi-pci")).to.deep.equal([
      { driver: "vhost-scsi-pci", wwpn: "naa.5123456789abcde0", id: "hostdev0", bus: "pci.0", addr: "0x2" },
    ]);
  });
  it("an ethernet interface is a tap QEMU opens by name, with <script>, vhost and queues", () => {
    const d = doc(
      "<interface type='ethernet'><mac address='52:54:00:e5:48:58'/><target dev='tap7' managed='no'/><model type='virtio'/>" +
        "<script path='/etc/qemu-ifup'/><driver name='vhost' queues='5'/></interface>",
    );
    expect(jsons(d, "-netdev")).to.deep.equal([
      {
        type: "tap",
        ifname: "tap7",
        script: "/etc/qemu-ifup",
        downscript: "no",
        vhost: true,
        queues: 5,
        id: "hostnet0",
      },
    ]);
    expect(device(d, "virtio-net-pci")[0]).to.include({ mq: true, vectors: 12 });
    expect(
      refusedAt(
        doc(
          "<interface type='ethernet'><source><ip address='192.168.125.1' family='ipv4' prefix='24'/></source></interface>",
        ),
      ),
    ).to.match(/interface\[1\]\/source$/);
  });
  it("network interfaces take their PCI slots before the USB controller (qemuDomainAssignDevicePCISlots, as libvirt 12 writes it)", () => {
    const d = doc("<controller type='usb' model='qemu-xhci'/><interface type='user'/><interface type='user'/>");
    expect(device(d, "rtl8139").map((j) => j.addr)).to.deep.equal(["0x2", "0x3"]);
    expect(device(d, "qemu-xhci")[0]).to.include({ addr: "0x4" });
  });
  it("mcast, udp, server and client interfaces are socket back-ends; the default NIC model is rtl8139", () => {
    const n = (type: string, inner: string) => doc(`<interface type='${type}'><source ${inner}</source></interface>`);
    expect(jsons(n("mcast", "address='192.0.0.1' port='5558'>"), "-netdev")[0]).to.deep.equal({
      type: "socket",
      mcast: "192.0.0.1:5558",
      id: "hostnet0",
    });
    expect(
      jsons(n("udp", "address='192.168.10.1' port='5555'><local address='192.168.10.1' port='5556'/>"), "-netdev")[0],
    ).to.deep.equal({ type: "socket", udp: "192.168.10.1:5555", localaddr: "192.168.10.1:5556", id: "hostnet0" });
    expect(jsons(n("server", "address='192.168.0.1' port='5558'>"), "-netdev")[0]).to.include({
      listen: "192.168.0.1:5558",
    });
    const client = n("client", "address='192.168.0.1' port='5558'>");
    expect(jsons(client, "-netdev")[0]).to.include({ connect: "192.168.0.1:5558" });
    expect(device(client, "rtl8139")).to.have.length(1);
  });
  it("a vDPA interface is a vhost-vdpa netdev QEMU opens by path, virtio by default", () => {
    const d = doc("<interface type='vdpa'><source dev='/dev/vhost-vdpa-0'/><driver queues='2'/></interface>");
    expect(jsons(d, "-netdev")).to.deep.equal([
      { type: "vhost-vdpa", vhostdev: "/dev/vhost-vdpa-0", queues: 2, id: "hostnet0" },
    ]);
    expect(device(d, "virtio-net-pci")[0]).to.include({ mq: true, vectors: 6 });
    expect(
      refusedAt(doc("<interface type='vdpa'><source dev='/dev/vhost-vdpa-0' bridge='br0'/></interface>")),
    ).to.match(/interface\[1\]\/source\/@bridge$/);
  });
  it("a vhost-user interface is a socket chardev and a vhost-user netdev, with shared memory only", () => {
    const nic =
      "<interface type='vhostuser'><source type='unix' path='/tmp/vhost0.sock' mode='server'/><model type='virtio'/></interface>";
    expect(refusedAt(doc(nic))).to.match(/interface\[1\]\/@type$/);
    const shared = DomainDef.parse(
      `<domain type='qemu'><name>d</name><uuid>${U}</uuid><memory unit='MiB'>64</memory><memoryBacking><access mode='shared'/></memoryBacking>` +
        `<vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices>${nic}</devices></domain>`,
    );
    // <memoryBacking> belongs to the memory family: built there or refused naming it
    if (refusal(shared) === "accepted") {
      expect(values(argv(shared), "-chardev")).to.include("socket,id=charnet0,path=/tmp/vhost0.sock,server=on");
      expect(jsons(shared, "-netdev")).to.deep.equal([{ type: "vhost-user", chardev: "charnet0", id: "hostnet0" }]);
    } else expect(refusedAt(shared)).to.match(/memoryBacking/);
  });
  it("a user interface's <ip> networks are net= and ipv6-prefix=", () => {
    const d = doc(
      "<interface type='user'><ip address='172.17.2.0' family='ipv4' prefix='24'/><ip address='2001:db8:ac10:fd01::' family='ipv6' prefix='64'/></interface>",
    );
    expect(jsons(d, "-netdev")).to.deep.equal([
      {
        type: "user",
        net: "172.17.2.0/24",
        "ipv6-prefix": "2001:db8:ac10:fd01::",
        "ipv6-prefixlen": 64,
        id: "hostnet0",
      },
    ]);
  });
  it("virtio-net <driver> options and offloads, <rom>, <link state='up'>; link down and bad sizes refused", () => {
    const d = doc(
      "<interface type='user'><model type='virtio'/><driver txmode='iothread' rx_queue_size='512' rss='on' rss_hash_report='on' iommu='on' packed='off'>" +
        "<host csum='off' gso='off' mrg_rxbuf='off'/><guest tso4='off' ufo='off'/></driver><rom enabled='no'/><link state='up'/></interface>",
    );
    expect(device(d, "virtio-net-pci")[0]).to.include({
      tx: "bh",
      rx_queue_size: 512,
      rss: true,
      hash: true,
      iommu_platform: true,
      packed: false,
      csum: false,
      gso: false,
      mrg_rxbuf: false,
      guest_tso4: false,
      guest_ufo: false,
      romfile: "",
    });
    expect(refusedAt(doc("<interface type='user'><link state='down'/></interface>"))).to.match(
      /interface\[1\]\/link\/@state$/,
    );
    expect(
      refusedAt(doc("<interface type='user'><model type='virtio'/><driver rx_queue_size='500'/></interface>")),
    ).to.match(/@rx_queue_size$/);
    expect(refusedAt(doc("<interface type='user'><model type='e1000'/><driver txmode='timer'/></interface>"))).to.match(
      /@txmode$/,
    );
  });
  it("network, direct and hostdev interfaces are refused naming the type", () => {
    for (const t of ["network", "direct", "hostdev"])
      expect(refusedAt(doc(`<interface type='${t}'><source network='default'/></interface>`)), t).to.match(
        /interface\[1\]\/@type$/,
      );
  });
  it("<panic>: isa is pvpanic at its ioport, pvpanic is pvpanic-pci, hyperv is hv-crash on -cpu", () => {
    expect(device(doc("<panic model='isa'><address type='isa' iobase='0x505'/></panic>"), "pvpanic")).to.deep.equal([
      { driver: "pvpanic", ioport: 1285 },
    ]);
    expect(device(doc("<panic/>"), "pvpanic")).to.deep.equal([{ driver: "pvpanic" }]);
    expect(
      device(
        doc(
          "<panic model='pvpanic'><address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/></panic>",
        ),
        "pvpanic-pci",
      ),
    ).to.deep.equal([{ driver: "pvpanic-pci", bus: "pci.0", addr: "0x4" }]);
    expect(values(argv(doc("<panic model='hyperv'/>")), "-cpu")).to.deep.equal(["qemu64,hv-crash"]);
    expect(refusedAt(doc("<panic model='s390'/>"))).to.match(/panic\[1\]\/@model$/);
  });
  it("<iommu>: intel-iommu and virtio-iommu on q35 only, virtio with ACPI", () => {
    expect(device(doc("<iommu model='intel'/>", "q35"), "intel-iommu")).to.deep.equal([
      { driver: "intel-iommu", id: "iommu0" },
    ]);
    expect(refusedAt(doc("<iommu model='intel'/>", "pc"))).to.match(/iommu\[1\]\/@model$/);
    const v =
      "<iommu model='virtio'><address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x0'/></iommu>";
    expect(device(doc(v, "q35", "<features><acpi/></features>"), "virtio-iommu")).to.deep.equal([
      { driver: "virtio-iommu", id: "iommu0", bus: "pcie.0", addr: "0x1" },
    ]);
    expect(refusedAt(doc(v, "q35"))).to.match(/iommu\[1\]\/@model$/);
    // the Intel IOMMU's <driver> options (intel-iommu-caching-mode, -eim, -aw-bits, ...)
    const intel = doc(
      "<iommu model='intel'><driver intremap='on' caching_mode='on' eim='on' iotlb='on' dma_translation='off' aw_bits='48'/></iommu>",
      "q35",
      "<features><ioapic driver='qemu'/></features>",
    );
    // the split I/O APIC (<ioapic driver='qemu'>) belongs to the features family: built there or refused naming it
    if (refusal(intel) === "accepted")
      expect(device(intel, "intel-iommu")).to.deep.equal([
        {
          driver: "intel-iommu",
          id: "iommu0",
          intremap: "on",
          "caching-mode": true,
          eim: "on",
          "device-iotlb": true,
          "dma-translation": false,
          "aw-bits": 48,
        },
      ]);
    else expect(refusedAt(intel)).to.match(/features\/ioapic/);
    expect(refusedAt(doc("<iommu model='intel'><driver intremap='on'/></iommu>", "q35"))).to.match(
      /iommu\[1\]\/driver\/@intremap$/,
    );
    expect(refusedAt(doc("<iommu model='intel'><driver eim='on'/></iommu>", "q35"))).to.match(/driver\/@eim$/);
    expect(
      device(doc("<iommu model='intel'><driver caching_mode='on' aw_bits='48'/></iommu>", "q35"), "intel-iommu"),
    ).to.deep.equal([{ driver: "intel-iommu", id: "iommu0", "caching-mode": true, "aw-bits": 48 }]);
    expect(
      refusedAt(doc("<iommu model='virtio'><driver intremap='on'/></iommu>", "q35", "<features><acpi/></features>")),
    ).to.match(/iommu\[1\]\/driver$/);
  });
  it("<vsock> with a fixed CID is vhost-vsock-pci; without a CID it is refused", () => {
    expect(device(doc("<vsock model='virtio'><cid auto='no' address='4'/></vsock>"), "vhost-vsock-pci")).to.deep.equal([
      { driver: "vhost-vsock-pci", id: "vsock0", "guest-cid": 4, bus: "pci.0", addr: "0x3" },
    ]);
    // auto='yes' takes a CID found at start (test/unit/argv-input-video.test.ts); no CID at all is refused
    expect(refusedAt(doc("<vsock><cid auto='no'/></vsock>"))).to.match(/vsock\[1\]\/cid$/);
  });
  it("<hub type='usb'> is usb-hub, at port paths behind hubs; conflicts and missing hubs refused", () => {
    const hub = (port: string) => `<hub type='usb'><address type='usb' bus='0' port='${port}'/></hub>`;
    expect(device(doc(hub("1") + hub("1.1") + hub("1.1.1")), "usb-hub").map((j) => j.port)).to.deep.equal([
      "1",
      "1.1",
      "1.1.1",
    ]);
    expect(
      refusedAt(doc(hub("1") + "<input type='mouse' bus='usb'><address type='usb' bus='0' port='1'/></input>")),
    ).to.match(/input\[1\]\/address\/@port$/);
    expect(refusedAt(doc(hub("1.2")))).to.match(/hub\[1\]\/address\/@port$/);
    expect(refusedAt(doc(hub("1") + hub("1.1") + hub("1.1.1") + hub("1.1.1.1") + hub("1.1.1.1.1")))).to.match(
      /hub\[5\]\/address\/@port$/,
    );
    expect(refusedAt(doc("<controller type='usb' model='none'/><hub type='usb'/>"))).to.match(/hub\[1\]$/);
  });
  it("<smartcard>: usb-ccid with an emulated or passthrough card", () => {
    const host = doc("<smartcard mode='host'/>");
    expect(device(host, "usb-ccid")).to.deep.equal([{ driver: "usb-ccid", id: "ccid0", bus: "usb.0", port: "1" }]);
    expect(device(host, "ccid-card-emulated")).to.deep.equal([
      { driver: "ccid-card-emulated", backend: "nss-emulated", id: "smartcard0", bus: "ccid0.0" },
    ]);
    const certs = doc(
      "<smartcard mode='host-certificates'><certificate>cert1</certificate><certificate>cert2</certificate><certificate>cert3</certificate><database>/etc/pki/nssdb/</database></smartcard>",
    );
    expect(device(certs, "ccid-card-emulated")[0]).to.include({
      backend: "certificates",
      cert1: "cert1",
      cert3: "cert3",
      db: "/etc/pki/nssdb/",
    });
    const tcp = doc(
      "<smartcard mode='passthrough' type='tcp'><source mode='bind' host='127.0.0.1' service='2001'/><protocol type='raw'/></smartcard>",
    );
    expect(values(argv(tcp), "-chardev")).to.include(
      "socket,id=charsmartcard0,host=127.0.0.1,port=2001,server=on,wait=off",
    );
    expect(device(tcp, "ccid-card-passthru")).to.deep.equal([
      { driver: "ccid-card-passthru", chardev: "charsmartcard0", id: "smartcard0", bus: "ccid0.0" },
    ]);
  });
  it("failover teams: a virtio interface with a user alias and the VF that names it (net-virtio-teaming-hostdev)", () => {
    const d = doc(
      "<interface type='user'><model type='virtio'/><teaming type='persistent'/><alias name='ua-backup0'/></interface>" +
        pci("0x0000", "0x03", "0x07", "0x1", "<teaming type='transient' persistent='ua-backup0'/>"),
    );
    expect(jsons(d, "-netdev")).to.deep.equal([{ type: "user", id: "hostua-backup0" }]);
    expect(device(d, "virtio-net-pci")[0]).to.include({ id: "ua-backup0", netdev: "hostua-backup0", failover: true });
    expect(device(d, "vfio-pci")[0]).to.include({ failover_pair_id: "ua-backup0" });
    expect(
      refusedAt(doc(pci("0x0000", "0x03", "0x07", "0x1", "<teaming type='transient' persistent='ua-none'/>"))),
    ).to.match(/teaming\/@persistent$/);
    expect(
      refusedAt(doc("<interface type='user'><model type='e1000'/><teaming type='persistent'/></interface>")),
    ).to.match(/interface\[1\]\/teaming$/);
  });
  it("a written <controller type='ccid'> is the smartcard's reader; the card's CCID address is slot 0", () => {
    const d = doc(
      "<controller type='ccid' index='0'/><smartcard mode='host'><address type='ccid' controller='0' slot='0'/></smartcard>",
    );
    expect(device(d, "usb-ccid")).to.deep.equal([{ driver: "usb-ccid", id: "ccid0", bus: "usb.0", port: "1" }]);
    expect(device(d, "ccid-card-emulated")).to.have.length(1);
    expect(
      refusedAt(doc("<smartcard mode='host'><address type='ccid' controller='0' slot='1'/></smartcard>")),
    ).to.match(/smartcard\[1\]\/address$/);
    expect(refusedAt(doc("<smartcard mode='passthrough' type='spicevmc'/>"))).to.match(/smartcard\[1\]\/@type$/);
  });
  it("<redirdev>: a tcp, unix or spicevmc chardev and usb-redir on the USB port after the inputs", () => {
    const d = doc(
      "<input type='tablet' bus='usb'/>" +
        "<redirdev bus='usb' type='tcp'><source mode='connect' host='localhost' service='4000'/><protocol type='raw'/><boot order='1'/></redirdev>" +
        "<redirdev bus='usb' type='unix'><source mode='connect' path='/tmp/connect.socket'/></redirdev>" +
        "<controller type='usb' model='qemu-xhci'/>",
    );
    expect(values(argv(d), "-chardev").filter((c) => c.includes("redir"))).to.deep.equal([
      "socket,id=charredir0,host=localhost,port=4000",
      "socket,id=charredir1,path=/tmp/connect.socket",
    ]);
    expect(device(d, "usb-tablet")[0]).to.include({ port: "1" });
    expect(device(d, "usb-redir")).to.deep.equal([
      { driver: "usb-redir", chardev: "charredir0", id: "redir0", bootindex: 1, bus: "usb.0", port: "2" },
      { driver: "usb-redir", chardev: "charredir1", id: "redir1", bus: "usb.0", port: "3" },
    ]);
    expect(refusedAt(doc("<redirdev bus='usb' type='spicevmc'/>"))).to.match(/redirdev\[1\]\/@type$/);
  });
  it("an element of the family the builder does not express is refused naming it (no silent drop)", () => {
    expect(refusedAt(doc(pci("0x0000", "0x06", "0x12", "0x5", "<acpi index='1'/>")))).to.match(/hostdev\[1\]\/acpi$/);
    expect(
      refusedAt(doc("<interface type='user'><bandwidth><inbound average='1000'/></bandwidth></interface>")),
    ).to.match(/interface\[1\]\/bandwidth$/);
    expect(refusedAt(doc("<interface type='user'><mtu size='9000'/></interface>"))).to.match(/interface\[1\]\/mtu$/);
    expect(
      refusedAt(doc("<interface type='user'><coalesce><rx><frames max='7'/></rx></coalesce></interface>")),
    ).to.match(/interface\[1\]\/coalesce$/);
    // <redirfilter> is built since the input-video family (test/unit/argv-input-video.test.ts); an unknown usbdev attribute is not
    expect(refusedAt(doc("<redirfilter><usbdev allow='yes' port='1'/></redirfilter>"))).to.match(
      /redirfilter\[1\]\/usbdev\/@port$/,
    );
  });
});
