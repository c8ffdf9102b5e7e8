/** The semantic diff: containment, normalization, device identity, paths and classes. */
import { expect } from "chai";
import { DomainDef } from "../../provider/xml/domain";
import { diffDomains, formatDiffText } from "../../provider/diff/semantic";

const base = (
  devices = "",
  top = "",
) => `<domain type='qemu'><name>d</name>${top}<memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>${devices}</devices></domain>`;

function diff(desired: string, actual: string) {
  return diffDomains(DomainDef.parse(desired), DomainDef.parse(actual));
}

const ACTUAL = `<domain type='qemu' id='3'>
  <name>d</name>
  <uuid>33721861-ccee-4dc2-858c-5f1e4629771f</uuid>
  <memory unit='KiB'>65536</memory>
  <currentMemory unit='KiB'>65536</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os><type arch='x86_64' machine='pc-i440fx-11.1'>hvm</type><boot dev='hd'/></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/i/a.qcow2'/><target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/><address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/></disk>
    <controller type='usb' index='0' model='piix3-uhci'/>
    <interface type='user'><mac address='52:54:00:12:34:56'/><model type='virtio'/><target dev='vnet3'/></interface>
    <serial type='pty'><target type='isa-serial' port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='virtio'/>
  </devices>
  <seclabel type='dynamic' model='dac'/>
</domain>`;

const DESIRED_DEVICES = `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/i/a.qcow2'/><target dev='vda' bus='virtio'/></disk>
<interface type='user'><mac address='52:54:00:12:34:56'/><model type='virtio'/></interface><serial type='pty'/>`;

describe("semantic diff", () => {
  it("libvirt's defaults, aliases, addresses, vnet targets, units and machine aliases are not changes", () => {
    expect(diff(base(DESIRED_DEVICES), ACTUAL).changes).to.deep.equal([]);
  });
  it("MAC case and hex vs decimal are not changes", () => {
    const d = base(
      DESIRED_DEVICES.replace("52:54:00:12:34:56", "52:54:00:12:34:56".toUpperCase()).replace(
        "<target dev='vda' bus='virtio'/>",
        "<target dev='vda' bus='virtio'/><address type='pci' domain='0' bus='0' slot='4' function='0'/>",
      ),
    );
    expect(diff(d, ACTUAL).changes).to.deep.equal([]);
  });
  it("memory: reported in KiB at /domain/memory, needs a restart", () => {
    const r = diff(
      base(DESIRED_DEVICES).replace("<memory unit='MiB'>64</memory>", "<memory unit='MiB'>128</memory>"),
      ACTUAL,
    );
    expect(r.changes).to.deep.equal([
      { path: "/domain/memory", kind: "modify", old: "65536 KiB", new: "131072 KiB", class: "restart" },
    ]);
  });
  it("a NIC model change is addressed by MAC", () => {
    const r = diff(base(DESIRED_DEVICES.replace("<model type='virtio'/>", "<model type='e1000'/>")), ACTUAL);
    expect(r.changes.map((c) => c.path)).to.deep.equal([
      "/domain/devices/interface[mac=52:54:00:12:34:56]/model/@type",
    ]);
  });
  it("a disk desired but missing is an add, addressed by target", () => {
    const extra = "<disk type='file' device='disk'><source file='/i/b.qcow2'/><target dev='vdb' bus='virtio'/></disk>";
    const r = diff(base(DESIRED_DEVICES + extra), ACTUAL);
    expect(r.changes.map((c) => [c.kind, c.path])).to.deep.equal([["add", "/domain/devices/disk[target=vdb]"]]);
  });
  it("a user device present only in actual is a remove", () => {
    const r = diff(base(DESIRED_DEVICES.replace(/<interface[\s\S]*<\/interface>/, "")), ACTUAL);
    expect(r.changes.map((c) => [c.kind, c.path])).to.deep.equal([
      ["remove", "/domain/devices/interface[mac=52:54:00:12:34:56]"],
    ]);
  });
  it("a dropped hwuuid is reported; uuid case is not", () => {
    const H = "5d5b0f1d-128b-4517-8e65-b258a8734c1d";
    const r = diff(
      base(DESIRED_DEVICES, `<uuid>33721861-CCEE-4dc2-858c-5f1e4629771f</uuid><hwuuid>${H}</hwuuid>`),
      ACTUAL,
    );
    expect(r.changes).to.deep.equal([
      { path: "/domain/hwuuid", kind: "add", new: `<hwuuid>${H}</hwuuid>`, class: "restart" },
    ]);
  });
  it("classes: metadata none, on_reboot next-boot, name/type replace", () => {
    const top = "<title>t</title><on_reboot>destroy</on_reboot>";
    const r = diff(
      base(DESIRED_DEVICES, top).replace("<name>d</name>", "<name>e</name>").replace("type='qemu'", "type='kvm'"),
      ACTUAL,
    );
    const byPath = Object.fromEntries(r.changes.map((c) => [c.path, c.class]));
    expect(byPath).to.deep.equal({
      "/domain/@type": "replace",
      "/domain/name": "replace",
      "/domain/title": "none",
      "/domain/on_reboot": "next-boot",
    });
    expect(r.class).to.equal("replace");
  });
  it("qemu:commandline is compared as an ordered list", () => {
    const ns = "xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'";
    const cmd = (a: string, b: string) =>
      `<qemu:commandline><qemu:arg value='${a}'/><qemu:arg value='${b}'/></qemu:commandline>`;
    const mk = (a: string, b: string) =>
      base(DESIRED_DEVICES)
        .replace("<domain type='qemu'>", `<domain type='qemu' ${ns}>`)
        .replace("</domain>", cmd(a, b) + "</domain>");
    expect(diff(mk("-uuid", "x"), mk("-uuid", "x")).changes).to.deep.equal([]);
    expect(diff(mk("-uuid", "x"), mk("x", "-uuid")).changes.map((c) => c.path)).to.deep.equal([
      "/domain/qemu:commandline",
    ]);
  });
  it("formats as text, one change a line with its class", () => {
    const r = diff(base(DESIRED_DEVICES).replace("<vcpu>1</vcpu>", "<vcpu>2</vcpu>"), ACTUAL);
    expect(formatDiffText(r)).to.equal('~ /domain/vcpu: "1" -> "2"  [restart]\n1 change(s); apply: restart\n');
  });
});

describe("semantic diff: libvirt-assigned values", () => {
  it("an interface without a MAC pairs with the one libvirt gave a MAC", () => {
    const desired = base(DESIRED_DEVICES + "<interface type='user'><model type='e1000'/></interface>");
    const actual = ACTUAL.replace(
      "<serial",
      "<interface type='user'><mac address='52:54:00:8b:40:68'/><model type='e1000'/></interface><serial",
    );
    expect(diff(desired, actual).changes).to.deep.equal([]);
  });
  it("q35's built-in itco watchdog and the video libvirt adds beside graphics are not removals", () => {
    const actual = ACTUAL.replace(
      "<memballoon",
      "<watchdog model='itco' action='reset'/><video><model type='vga'/></video><memballoon",
    );
    expect(diff(base(DESIRED_DEVICES), actual).changes).to.deep.equal([]);
  });
});
