/**
 * `<seclabel type='none'>` asks for no confinement, which is what
 * the QEMU-direct backend does (it applies no SELinux/AppArmor/DAC labels); every other label
 * (dynamic, static, a base label, relabelling, several seclabels) needs libvirt's daemon and is
 * refused at preview naming the path.
 */
import { expect } from "chai";
import { DomainDef } from "../../provider/xml/domain";
import { buildQemuArgv } from "../../provider/qemu/argv";
import { refusal } from "../support/argv";

const U = "33721861-ccee-4dc2-858c-5f1e4629771f";

const doc = (top = "", devices = "", machine = "pc") =>
  DomainDef.parse(
    `<domain type='qemu'><name>d</name><uuid>${U}</uuid><memory unit='MiB'>256</memory><vcpu>1</vcpu>` +
      `<os><type arch='x86_64' machine='${machine}'>hvm</type></os><devices>${devices}</devices>${top}</domain>`,
  );

describe("QEMU command line: <seclabel>", () => {
  for (const s of [
    "<seclabel type='none'/>",
    "<seclabel type='none' model='none'/>",
    "<seclabel type='none' model='dac'/>",
  ])
    it(`${s} (no confinement, as QEMU-direct runs) is accepted and adds no argument`, () => {
      expect(buildQemuArgv(doc(s)).argv).to.deep.equal(buildQemuArgv(doc()).argv);
    });

  for (const s of [
    "<seclabel type='dynamic' model='selinux' relabel='yes'/>",
    "<seclabel type='static' model='selinux' relabel='no'><label>system_u:system_r:svirt_t:s0:c1</label></seclabel>",
    "<seclabel type='none' relabel='no'/>",
    "<seclabel type='none' model='selinux'/>",
    "<seclabel type='none'/><seclabel type='none' model='dac'/>",
  ])
    it(`${s} needs libvirt's labelling and is refused naming /domain/seclabel`, () => {
      const e = refusal(doc(s));
      expect(e.message).to.contain("seclabel");
      expect(e.fix).to.be.a("string").and.not.equal("");
    });
});

describe("QEMU command line: ACPI hotplug on the PC root bus", () => {
  const root = (t: string, model = "pci-root") => `<controller type='pci' index='0' model='${model}'>${t}</controller>`;
  for (const v of ["off", "on"])
    it(`<controller model='pci-root'><target hotplug='${v}'/> is -global PIIX4_PM.acpi-root-pci-hotplug=${v} after -boot`, () => {
      const a = buildQemuArgv(doc("", root(`<target hotplug='${v}'/>`))).argv;
      const i = a.indexOf(`PIIX4_PM.acpi-root-pci-hotplug=${v}`);
      expect(i).to.be.greaterThan(0);
      expect(a[i - 1]).to.equal("-global");
      expect(i).to.be.greaterThan(a.indexOf("-boot"));
    });

  it("a bad hotplug value, another target attribute, or a target on pcie-root is refused naming it", () => {
    expect(refusal(doc("", root("<target hotplug='maybe'/>"))).message).to.contain("hotplug");
    expect(refusal(doc("", root("<target hotplug='off' chassisNr='1'/>"))).message).to.contain("chassisNr");
    expect(refusal(doc("", root("<target hotplug='off'/>", "pcie-root"), "q35")).message).to.contain("target");
    expect(
      refusal(doc("", "<controller type='usb' index='0' model='piix3-uhci'><target/></controller>")).message,
    ).to.contain("target");
  });
});

describe("QEMU command line: a virtio-pmem memory device", () => {
  const max =
    "<maxMemory unit='KiB'>1099511627776</maxMemory><cpu><numa><cell id='0' cpus='0' memory='256' unit='MiB'/></numa></cpu>";
  const pmem = (
    attrs = " access='shared'",
    addr = "<address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/>",
  ) =>
    `<memory model='virtio-pmem'${attrs}><source><path>/tmp/virtio_pmem</path></source>` +
    `<target><size unit='KiB'>524288</size><address base='0x140000000'/></target>${addr}</memory>`;
  const values = (a: string[], opt: string) => a.flatMap((x, i) => (x === opt && i + 1 < a.length ? [a[i + 1]!] : []));

  it("is -object memory-backend-file and -device virtio-pmem-pci at its address, as libvirt writes it", () => {
    const a = buildQemuArgv(doc(max, pmem())).argv;
    expect(values(a, "-object")).to.include(
      '{"qom-type":"memory-backend-file","id":"memvirtiopmem0","mem-path":"/tmp/virtio_pmem","share":true,"size":536870912}',
    );
    expect(values(a, "-device")).to.include(
      '{"driver":"virtio-pmem-pci","memdev":"memvirtiopmem0","memaddr":5368709120,"id":"virtiopmem0","bus":"pci.0","addr":"0x5"}',
    );
  });

  it("sgx-epc, no <maxMemory>, no PCI address, or overlapping addresses are refused naming the path", () => {
    expect(
      refusal(doc(max, "<memory model='sgx-epc'><target><size unit='KiB'>524288</size></target></memory>")).path,
    ).to.equal("/domain/devices/memory[1]/@model");
    expect(refusal(doc("", pmem())).path).to.equal("/domain/maxMemory");
    expect(refusal(doc(max, pmem(" access='shared'", ""))).path).to.equal("/domain/devices/memory[1]/address");
    const second = pmem(
      " access='shared'",
      "<address type='pci' domain='0x0000' bus='0x00' slot='0x06' function='0x0'/>",
    );
    expect(refusal(doc(max, pmem() + second)).message).to.contain("overlaps with other memory device");
  });
});
