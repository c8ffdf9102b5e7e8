/**
 * The semantic diff knows what libvirt itself normalizes (issue 12), one small XML pair per
 * class, without the corpus: each `same` pair is libvirt's normalization of the desired XML (no
 * change), each `differs` pair a real change the same rule must still report.
 */
import { expect } from "chai";
import { DomainDef } from "../../provider/xml/domain";
import { diffDomains } from "../../provider/diff/semantic";
import { canonicalBitmap, parseBitmap } from "../../provider/xml/bitmap";
import { scaledBytes } from "../../provider/xml/units";

const dom = (devices: string, top = "", attrs = "") =>
  `<domain type='kvm'${attrs}><name>d</name><memory unit='KiB'>65536</memory><vcpu>4</vcpu>${top}` +
  `<os><type arch='x86_64' machine='q35'>hvm</type></os><devices>${devices}</devices></domain>`;

const paths = (desired: string, actual: string) =>
  diffDomains(DomainDef.parse(desired), DomainDef.parse(actual)).changes.map((c) => `${c.kind} ${c.path}`);

interface Case {
  cls: string;
  desired: string;
  actual: string;
  /** A desired XML that really differs from `actual`, and the change it must give. */
  differs?: [string, string[]];
}

const QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0";
const disk = (inner: string, attrs = "") =>
  `<disk type='file' device='cdrom'${attrs}><source file='/i/a.iso'/>${inner}</disk>`;

const CASES: Case[] = [
  {
    cls: "default-dropped: video primary='no', disk cache='default', tray='closed', chardev protocol raw",
    desired: dom(
      `<video><model type='virtio' primary='yes'/></video><video><model type='virtio' primary='no'/></video>` +
        disk(`<driver name='qemu' cache='default'/><target dev='sda' bus='sata' tray='closed'/>`) +
        `<serial type='tcp'><source mode='connect' host='h' service='1'/><protocol type='raw'/></serial>`,
    ),
    actual: dom(
      `<video><model type='virtio' primary='yes'/></video><video><model type='virtio'/></video>` +
        disk(`<driver name='qemu'/><target dev='sda' bus='sata'/>`) +
        `<serial type='tcp'><source mode='connect' host='h' service='1'/></serial>`,
    ),
    differs: [
      dom(
        `<video><model type='virtio' primary='yes'/></video><video><model type='virtio'/></video>` +
          disk(`<driver name='qemu' cache='none'/><target dev='sda' bus='sata'/>`) +
          `<serial type='tcp'><source mode='connect' host='h' service='1'/></serial>`,
      ),
      ["add /domain/devices/disk[target=sda]/driver/@cache"],
    ],
  },
  {
    cls: "default-dropped (conditional): snapshot='no' of a readonly disk, fallback of a host-model CPU, memtune unlimited",
    desired: dom(
      disk(`<target dev='sda' bus='sata'/><readonly/>`, " snapshot='no'"),
      "<memtune><hard_limit unit='KiB'>9007199254740991</hard_limit></memtune><cpu mode='host-model'><model fallback='allow'/></cpu>",
    ),
    actual: dom(disk(`<target dev='sda' bus='sata'/><readonly/>`), "<cpu mode='host-model'/>"),
    differs: [
      dom(disk(`<target dev='sda' bus='sata'/>`, " snapshot='no'"), "<cpu mode='host-model'/>").replace(
        "<readonly/>",
        "",
      ),
      ["add /domain/devices/disk[target=sda]/@snapshot"],
    ],
  },
  {
    cls: "bootmenu timeout dropped when the menu is disabled",
    desired: dom("", "").replace("</os>", "<bootmenu enable='no' timeout='3000'/></os>"),
    actual: dom("", "").replace("</os>", "<bootmenu enable='no'/></os>"),
    differs: [
      dom("").replace("</os>", "<bootmenu enable='yes' timeout='3000'/></os>"),
      ["modify /domain/os/bootmenu/@enable", "add /domain/os/bootmenu/@timeout"],
    ],
  },
  {
    cls: "runtime-state: channel state, generated channel path, source index, disk mirror",
    desired: dom(
      `<channel type='unix'><source mode='bind' path='/var/lib/libvirt/qemu/channel/target/domain-1-d/org.qemu.guest_agent.0'/>` +
        `<target type='virtio' name='org.qemu.guest_agent.0' state='connected'/></channel>` +
        `<disk type='file' device='disk'><source file='/i/a.qcow2' index='2'/><mirror type='file' job='copy'><source file='/i/b'/></mirror><target dev='vda' bus='virtio'/></disk>`,
    ),
    actual: dom(
      `<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel><disk type='file' device='disk'><source file='/i/a.qcow2'/><target dev='vda' bus='virtio'/></disk>`,
    ),
    differs: [
      dom(
        `<channel type='unix'><source mode='bind' path='/srv/ga.sock'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel><disk type='file' device='disk'><source file='/i/a.qcow2'/><target dev='vda' bus='virtio'/></disk>`,
      ),
      ["add /domain/devices/channel[name=org.qemu.guest_agent.0]/source"],
    ],
  },
  {
    cls: "units: every scaled integer (memtune, hugepage size, pcihole64, metadata_cache bytes)",
    desired: dom(
      `<controller type='pci' index='0' model='pci-root'><pcihole64 unit='GiB'>1</pcihole64></controller>`,
      "<memtune><soft_limit unit='bytes'>1048576</soft_limit></memtune><memoryBacking><hugepages><page size='2' unit='M'/></hugepages></memoryBacking>",
    ),
    actual: dom(
      `<controller type='pci' index='0' model='pci-root'><pcihole64 unit='KiB'>1048576</pcihole64></controller>`,
      "<memtune><soft_limit unit='KiB'>1024</soft_limit></memtune><memoryBacking><hugepages><page size='2048' unit='KiB'/></hugepages></memoryBacking>",
    ),
    differs: [
      dom(
        `<controller type='pci' index='0' model='pci-root'><pcihole64 unit='GiB'>2</pcihole64></controller>`,
        "<memtune><soft_limit unit='KiB'>1024</soft_limit></memtune><memoryBacking><hugepages><page size='2048' unit='KiB'/></hugepages></memoryBacking>",
      ),
      ["modify /domain/devices/controller[type=pci,index=0]/pcihole64"],
    ],
  },
  {
    cls: "namespaces by URI: ns0:commandline and a default-namespace <commandline> are qemu:commandline",
    desired: dom("", "", ` xmlns:ns0='${QEMU_NS}'`).replace(
      "</domain>",
      "<ns0:commandline><ns0:arg value='-uuid'/><ns0:arg value='x'/></ns0:commandline></domain>",
    ),
    actual: dom("", "", ` xmlns:qemu='${QEMU_NS}'`).replace(
      "</domain>",
      "<qemu:commandline><qemu:arg value='-uuid'/><qemu:arg value='x'/></qemu:commandline></domain>",
    ),
    differs: [
      dom("").replace(
        "</domain>",
        `<commandline xmlns='${QEMU_NS}'><arg value='-uuid'/><arg value='y'/></commandline></domain>`,
      ),
      ["modify /domain/qemu:commandline"],
    ],
  },
  {
    cls: "NUMA cells and sibling distances by id, a cell without id at its position",
    desired: dom(
      "",
      "<cpu><numa><cell id='1' cpus='2-3' memory='1024'><distances><sibling id='1' value='10'/><sibling id='0' value='21'/></distances></cell><cell id='0' cpus='0-1' memory='1024'/></numa></cpu>",
    ),
    actual: dom(
      "",
      "<cpu><numa><cell id='0' cpus='0-1' memory='1024' unit='KiB'/><cell id='1' cpus='2-3' memory='1' unit='MiB'><distances><sibling id='0' value='21'/><sibling id='1' value='10'/></distances></cell></numa></cpu>",
    ),
    differs: [
      dom("", "<cpu><numa><cell cpus='0-1' memory='1024'/><cell cpus='2' memory='1024'/></numa></cpu>"),
      ["modify /domain/cpu/numa/cell[id=1]/@cpus"],
    ],
  },
  {
    cls: "controllers: the index libvirt assigns, USB2 companions by model",
    desired: dom(
      `<controller type='usb' model='ich9-ehci1'/><controller type='usb' model='ich9-uhci1'/><controller type='usb' model='ich9-uhci2'/><controller type='sata'/><controller type='sata'/>`,
    ),
    actual: dom(
      `<controller type='sata' index='0'/><controller type='sata' index='1'/><controller type='usb' index='0' model='ich9-uhci2'/><controller type='usb' index='0' model='ich9-uhci1'/><controller type='usb' index='0' model='ich9-ehci1'/>`,
    ),
    differs: [
      dom(
        `<controller type='usb' index='0' model='ich9-ehci1'/><controller type='usb' index='0' model='ich9-uhci3'/><controller type='sata'/><controller type='sata'/>`,
      ),
      ["add /domain/devices/controller[type=usb,index=0,model=ich9-uhci3]"],
    ],
  },
  {
    cls: "the primary video first",
    desired: dom(`<video><model type='virtio' heads='1'/></video><video><model type='qxl' primary='yes'/></video>`),
    actual: dom(`<video><model type='qxl' primary='yes'/></video><video><model type='virtio' heads='1'/></video>`),
    differs: [
      dom(`<video><model type='virtio' heads='2'/></video><video><model type='qxl' primary='yes'/></video>`),
      ["modify /domain/devices/video[2]/model/@heads"],
    ],
  },
  {
    cls: "bitmaps as sets (cpuset, nodeset)",
    desired: dom("", "<numatune><memnode cellid='0' mode='strict' nodeset='0-2,^1'/></numatune>").replace(
      "<vcpu>4</vcpu>",
      "<vcpu cpuset='3,0-1'>4</vcpu>",
    ),
    actual: dom("", "<numatune><memnode cellid='0' mode='strict' nodeset='0,2'/></numatune>").replace(
      "<vcpu>4</vcpu>",
      "<vcpu cpuset='0-1,3'>4</vcpu>",
    ),
    differs: [
      dom("", "<numatune><memnode cellid='0' mode='strict' nodeset='0-2'/></numatune>").replace(
        "<vcpu>4</vcpu>",
        "<vcpu cpuset='0-1,3'>4</vcpu>",
      ),
      ["modify /domain/numatune/memnode/@nodeset"],
    ],
  },
  {
    cls: "scheduler per thread: vcpus='2-3' is two elements",
    desired: dom(
      "",
      "<cputune><vcpusched vcpus='2-3' scheduler='fifo' priority='1'/><vcpusched vcpus='0' scheduler='idle'/></cputune>",
    ),
    actual: dom(
      "",
      "<cputune><vcpusched vcpus='0' scheduler='idle'/><vcpusched vcpus='2' scheduler='fifo' priority='1'/><vcpusched vcpus='3' scheduler='fifo' priority='1'/></cputune>",
    ),
    differs: [
      dom(
        "",
        "<cputune><vcpusched vcpus='2-3' scheduler='fifo' priority='2'/><vcpusched vcpus='0' scheduler='idle'/></cputune>",
      ),
      ["modify /domain/cputune/vcpusched[vcpu=2]", "modify /domain/cputune/vcpusched[vcpu=3]"],
    ],
  },
  {
    cls: "the <serial> libvirt derives from <console>",
    desired: dom(`<console type='pty'><target port='0'/></console>`),
    actual: dom(
      `<serial type='pty'><target type='isa-serial' port='0'><model name='isa-serial'/></target></serial><console type='pty'><target type='serial' port='0'/></console>`,
    ),
    differs: [
      dom(`<console type='pty'><target type='virtio' port='0'/></console>`),
      ["modify /domain/devices/console/target/@type", "remove /domain/devices/serial"],
    ],
  },
  {
    cls: "a serial console put before a virtio console, console ports renumbered",
    desired: dom(
      `<serial type='pty'><target port='0'/></serial><console type='pty'><target type='virtio' port='0'/></console>`,
    ),
    actual: dom(
      `<serial type='pty'><target type='isa-serial' port='0'/></serial><console type='pty'><target type='serial' port='0'/></console><console type='pty'><target type='virtio' port='1'/></console>`,
    ),
  },
  {
    cls: "respellings: iSCSI LUN /0, NIC model case, BCD redirfilter version",
    desired: dom(
      `<disk type='network' device='disk'><source protocol='iscsi' name='iqn.1992-01.com.example'><host name='h'/></source><target dev='vda' bus='virtio'/></disk>` +
        `<interface type='user'><mac address='52:54:00:00:00:01'/><model type='ViRtIo'/></interface>` +
        `<redirfilter><usbdev class='0x08' version='9.4' allow='yes'/></redirfilter>`,
    ),
    actual: dom(
      `<disk type='network' device='disk'><source protocol='iscsi' name='iqn.1992-01.com.example/0'><host name='h'/></source><target dev='vda' bus='virtio'/></disk>` +
        `<interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/></interface>` +
        `<redirfilter><usbdev class='0x08' version='9.40' allow='yes'/></redirfilter>`,
    ),
    differs: [
      dom(
        `<disk type='network' device='disk'><source protocol='iscsi' name='iqn.1992-01.com.example/1'><host name='h'/></source><target dev='vda' bus='virtio'/></disk>` +
          `<interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/></interface>` +
          `<redirfilter><usbdev class='0x08' version='9.40' allow='yes'/></redirfilter>`,
      ),
      ["modify /domain/devices/disk[target=vda]/source/@name"],
    ],
  },
];

describe("semantic diff: what libvirt itself normalizes (issue 12)", () => {
  for (const c of CASES) {
    it(`${c.cls}: no change`, () => {
      expect(paths(c.desired, c.actual)).to.deep.equal([]);
      if (c.differs) expect(paths(c.differs[0], c.actual)).to.deep.equal(c.differs[1]);
    });
  }
});

describe("bitmaps and scaled integers", () => {
  it("a bitmap is its set of members, written as ranges", () => {
    expect(parseBitmap("0-3,^2,8")).to.deep.equal([0, 1, 3, 8]);
    expect(canonicalBitmap("3,0-2,^1")).to.equal("0,2-3");
    expect(parseBitmap("a-b")).to.equal(undefined);
  });
  it("a scaled integer in bytes, with its default unit", () => {
    expect(scaledBytes("2", "MiB", "KiB")).to.equal(2097152n);
    expect(scaledBytes("2", undefined, "KiB")).to.equal(2048n);
    expect(scaledBytes("2", "KB", "KiB")).to.equal(2000n);
    expect(scaledBytes("x", undefined, "KiB")).to.equal(undefined);
    expect(scaledBytes("1", "furlong", "KiB")).to.equal(undefined);
  });
});
