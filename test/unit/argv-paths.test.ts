/**
 * Zero silent drops (issue 12): every element and attribute of a definition is either built on
 * the QEMU command line, listed as producing no QEMU argument (with the reason), a default, or
 * refused at preview naming it (provider/qemu/paths.ts). And what the builder now expresses the
 * way libvirt writes it: device addresses, the PCI slots libvirt assigns, libvirt's implicit
 * devices, disk cache modes, the boot menu, the no-output audio backend, SCSI models.
 */
import { expect } from "chai";
import { DomainDef } from "../../provider/xml/domain";
import { DEFAULT_VALUED, EXPRESSED_PATHS, NO_ARGV, unexpressedPaths } from "../../provider/qemu/paths";
import { argv, devices, refusal, values } from "../support/argv";

const U = "33721861-ccee-4dc2-858c-5f1e4629771f";

const doc = (devices = "", top = "", os = "") =>
  DomainDef.parse(
    `<domain type='qemu'><name>d</name><uuid>${U}</uuid><memory unit='MiB'>256</memory><vcpu>1</vcpu>${top}` +
      `<os><type arch='x86_64' machine='pc'>hvm</type>${os}</os><devices>${devices}</devices></domain>`,
  );

const DISK = "<disk type='file' device='disk'><source file='/i/a.qcow2'/><target dev='vda' bus='virtio'/>";

describe("QEMU command line: nothing dropped silently (provider/qemu/paths.ts)", () => {
  it("an attribute the builder does not build is refused naming it, its value, what is built there and the fix", () => {
    // (a disk's iothread is built now: test/unit/argv-storage-r3.test.ts)
    const e = refusal(doc(DISK.replace("device='disk'", "device='disk' rawio='yes'") + "</disk>"));
    expect(e.path).to.equal("/domain/devices/disk[1]/@rawio");
    expect(e.value).to.equal("yes");
    expect(e.allowed).to.match(/@type, @device, driver/);
    expect(e.fix).to.match(/remove @rawio .*through libvirt/);
  });

  it("an element the builder does not build is refused, wherever it is (host tuning, clock timers, features)", () => {
    expect(refusal(doc("", "<memtune><hard_limit>1</hard_limit></memtune>")).path).to.equal("/domain/memtune");
    expect(refusal(doc("", "<clock offset='utc'><timer name='tsc' present='yes'/></clock>")).path).to.equal(
      "/domain/clock/timer[1]/@name",
    );
    // smm and vmcoreinfo are built (argv-memory-cpu.test.ts, argv-platform.test.ts); a feature the builder does not build stays refused
    expect(refusal(doc("", "<features><acpi/><htm state='on'/></features>")).path).to.equal("/domain/features/htm");
    // <currentMemory> is the balloon target (argv-memory-cpu.test.ts); host block I/O tuning stays refused
    expect(refusal(doc("", "<blkiotune><weight>100</weight></blkiotune>")).path).to.equal("/domain/blkiotune");
  });

  it("<on_reboot>: destroy makes QEMU exit instead of rebooting (-no-reboot), restart is the default, other policies refuse", () => {
    expect(argv(doc("", "<on_reboot>destroy</on_reboot>"))).to.include("-no-reboot");
    expect(argv(doc("", "<on_reboot>restart</on_reboot>"))).to.not.include("-no-reboot");
    expect(refusal(doc("", "<on_reboot>preserve</on_reboot>")).path).to.equal("/domain/on_reboot");
  });

  it("what produces no QEMU argument is accepted, each with its reason; libvirt's defaults stated explicitly too", () => {
    for (const [p, reason] of Object.entries(NO_ARGV)) {
      expect(reason, p).to.match(/\w{3,}.*\w{3,}/);
      expect(EXPRESSED_PATHS.has(p), `${p} is in one table only`).to.equal(false);
    }
    const d = doc(
      "<memballoon model='virtio' autodeflate='off'/>",
      "<title>t</title><description>d</description><metadata><x:a xmlns:x='urn:x'/></metadata>" +
        "<currentMemory unit='KiB'>262144</currentMemory>" +
        "<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>restart</on_crash>" +
        "<features><acpi/><apic/><pae/></features><cpu mode='custom' match='exact' check='none'><model fallback='forbid'>qemu64</model></cpu>",
    );
    expect(unexpressedPaths(d)).to.deep.equal([]);
    expect(() => argv(d)).to.not.throw();
    expect(Object.keys(DEFAULT_VALUED)).to.include("/domain/currentMemory");
  });

  it("an element of another namespace is refused, not skipped", () => {
    const d = doc("", "<x:extra xmlns:x='urn:other'/>");
    expect(refusal(d).path).to.equal("/domain/x:extra");
  });
});

describe("QEMU command line: devices where libvirt puts them", () => {
  it("a written PCI address on the root bus is bus/addr/multifunction; on a bus not defined, libvirt's pci-bridge is added", () => {
    const d = doc(
      `${DISK}<address type='pci' domain='0x0000' bus='0x00' slot='0x07' function='0x1' multifunction='on'/></disk>`,
    );
    expect(devices(d).find((x) => x.driver === "virtio-blk-pci")).to.include({
      bus: "pci.0",
      addr: "0x7.0x1",
      multifunction: true,
    });
    // libvirt's first pass adds the bus a written address names (pci-autoadd-addr of its tests)
    const bridged = devices(
      doc(`${DISK}<address type='pci' domain='0x0000' bus='0x01' slot='0x01' function='0x0'/></disk>`),
    );
    expect(bridged.find((x) => x.driver === "pci-bridge")).to.deep.equal({
      driver: "pci-bridge",
      chassis_nr: 1,
      id: "pci.1",
      bus: "pci.0",
      addr: "0x2",
    });
    expect(bridged.find((x) => x.driver === "virtio-blk-pci")).to.include({ bus: "pci.1", addr: "0x1" });
    // a bridge has no slot 0 (its SHPC): refused as libvirt refuses it
    const e = refusal(doc(`${DISK}<address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></disk>`));
    expect(e.path).to.equal("/domain/devices/disk[1]/address");
  });

  it("on the PC machine: the PIIX3 USB controller at 01.2, the primary video at slot 2, then libvirt's order, and libvirt's implicit virtio balloon", () => {
    const d = doc(
      `${DISK}</disk><interface type='user'><model type='virtio'/></interface><video><model type='vga'/></video><rng model='virtio'/>`,
    );
    const at = Object.fromEntries(devices(d).map((x) => [String(x.id), x.addr]));
    expect(at).to.deep.include({
      usb: "0x1.0x2",
      video0: "0x2",
      net0: "0x3",
      "virtio-disk0": "0x4",
      balloon0: "0x5",
      rng0: "0x6",
    });
  });

  it("IDE, SATA and SCSI drive addresses as libvirt writes them (lsilogic is libvirt's default SCSI model)", () => {
    const d = doc(
      "<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><address type='drive' controller='0' bus='1' target='0' unit='1'/></disk>" +
        "<disk type='file' device='disk'><source file='/i/b.raw'/><target dev='sda' bus='scsi'/><address type='drive' controller='0' bus='0' target='0' unit='3'/></disk>" +
        "<disk type='file' device='disk'><source file='/i/c.raw'/><target dev='sdb' bus='sata'/></disk>" +
        "<controller type='scsi' index='0'/>",
    );
    const all = devices(d);
    expect(all.find((x) => x.driver === "ide-cd")).to.include({ bus: "ide.1", unit: 1, id: "ide0-1-1" });
    expect(all.find((x) => x.driver === "lsi")).to.include({ id: "scsi0" });
    expect(all.find((x) => x.driver === "scsi-hd")).to.include({ bus: "scsi0.0", "scsi-id": 3, id: "scsi0-0-3" });
    expect(all.find((x) => x.driver === "ahci")).to.include({ id: "sata0" });
    expect(all.find((x) => x.id === "sata0-0-1")).to.include({ bus: "sata0.1" });
  });

  it("disk cache modes, the boot menu and the no-output audio backend", () => {
    const d = doc(
      `${DISK}<driver name='qemu' type='qcow2' cache='none'/></disk><audio id='1' type='none'/>`,
      "",
      "<bootmenu enable='yes' timeout='3000'/>",
    );
    const a = argv(d);
    expect(values(a, "-boot")).to.deep.equal(["menu=on,splash-time=3000,strict=on"]);
    expect(values(a, "-audiodev")).to.deep.equal(['{"id":"audio1","driver":"none"}']); // as libvirt writes it
    const blockdevs = values(a, "-blockdev").map((v) => JSON.parse(v) as Record<string, unknown>);
    for (const b of blockdevs) expect(b.cache).to.deep.equal({ direct: true, "no-flush": false });
    expect(devices(d).find((x) => x.driver === "virtio-blk-pci")).to.include({ "write-cache": "on" });
    expect(refusal(doc("<audio id='1' type='esd'/>")).path).to.equal("/domain/devices/audio[1]/@type");
  });

  it("watchdogs, USB inputs and VGA memory as libvirt writes them; a third USB input on the 2-port PIIX3 gets libvirt's hub", () => {
    const d = doc(
      "<watchdog model='i6300esb' action='poweroff'/><input type='tablet' bus='usb'/><input type='mouse' bus='ps2'/>" +
        "<video><model type='vga' vram='32768'/></video>",
    );
    const a = argv(d);
    expect(values(a, "-watchdog-action")).to.deep.equal(["poweroff"]);
    expect(devices(d)).to.deep.include.members([
      { driver: "i6300esb", id: "watchdog0", bus: "pci.0", addr: "0x4" },
      { driver: "usb-tablet", id: "input0", bus: "usb.0", port: "1" },
      { driver: "VGA", id: "video0", vgamem_mb: 32, bus: "pci.0", addr: "0x2" },
    ]);
    const usb3 = "<input type='tablet' bus='usb'/><input type='mouse' bus='usb'/><input type='keyboard' bus='usb'/>";
    // libvirt adds a hub when the ports run out (input-video family: test/unit/argv-input-video.test.ts)
    expect(devices(doc(usb3)).filter((x) => x.bus === "usb.0")).to.deep.equal([
      { driver: "usb-hub", id: "hub0", bus: "usb.0", port: "1" },
      { driver: "usb-tablet", id: "input0", bus: "usb.0", port: "2" },
      { driver: "usb-mouse", id: "input1", bus: "usb.0", port: "1.1" },
      { driver: "usb-kbd", id: "input2", bus: "usb.0", port: "1.2" },
    ]);
    expect(refusal(doc("<watchdog model='i6300esb' action='dump'/>")).path).to.equal(
      "/domain/devices/watchdog[1]/@action",
    );
  });

  it("clock timers as libvirt writes them: -rtc driftfix/clock, kvm-pit policy, hpet=off, kvmclock=off; others refused", () => {
    const d = doc(
      "",
      "<clock offset='utc'><timer name='rtc' tickpolicy='catchup' track='guest'/><timer name='pit' tickpolicy='delay'/>" +
        "<timer name='hpet' present='no'/><timer name='kvmclock' present='no'/></clock>",
    );
    const a = argv(d);
    expect(values(a, "-rtc")).to.deep.equal(["base=utc,driftfix=slew,clock=vm"]);
    expect(values(a, "-global")).to.deep.equal(["kvm-pit.lost_tick_policy=delay"]);
    expect(values(a, "-machine")[0]).to.match(/,hpet=off,acpi=off$/);
    expect(values(a, "-cpu")).to.deep.equal(["qemu64,kvmclock=off"]);
    const e = refusal(doc("", "<clock offset='utc'><timer name='tsc' frequency='3504000000'/></clock>"));
    expect(e.path).to.equal("/domain/clock/timer[1]/@frequency");
  });

  it("CPU features on -cpu in document order with QEMU's spelling; optional is on (QEMU drops it where the host lacks it)", () => {
    const cpu = (f: string, check = "") =>
      doc("", `<cpu mode='custom' match='exact'${check}><model fallback='forbid'>Haswell</model>${f}</cpu>`);
    const d = cpu("<feature policy='disable' name='hle'/><feature policy='require' name='lahf_lm'/>");
    expect(values(argv(d), "-cpu")).to.deep.equal(["Haswell,hle=off,lahf-lm=on"]);
    expect(values(argv(cpu("<feature policy='optional' name='tm'/>")), "-cpu")).to.deep.equal(["Haswell,tm=on"]);
    // QEMU's check (enforce) would refuse a missing optional feature, which libvirt's check spares
    expect(refusal(cpu("<feature policy='optional' name='tm'/>", " check='full'")).path).to.equal(
      "/domain/cpu/feature[1]/@policy",
    );
  });

  it("disks in libvirt's order (by bus, then target name): node names, and <boot dev='fd'> the first floppy; floppies on the fdc", () => {
    const d = doc(
      "<disk type='file' device='floppy'><source file='/i/b.img'/><target dev='fdb' bus='fdc'/></disk>" +
        "<disk type='file' device='floppy'><source file='/i/a.img'/><target dev='fda' bus='fdc'/></disk>",
      "",
      "<boot dev='fd'/>",
    );
    const a = argv(d);
    expect(values(a, "-global")).to.deep.equal(["isa-fdc.bootindexA=1"]);
    expect(devices(d).filter((x) => x.driver === "floppy")).to.deep.equal([
      { driver: "floppy", unit: 0, drive: "libvirt-2-storage", id: "fdc0-0-0" },
      { driver: "floppy", unit: 1, drive: "libvirt-1-storage", id: "fdc0-0-1" },
    ]);
  });

  it("character devices as libvirt writes them: dev, vc, stdio, tcp (connect, bind, telnet), unix connect; udp without its peer refused", () => {
    const d = doc(
      "<serial type='dev'><source path='/dev/ttyS2'/></serial><serial type='vc'/>" +
        "<serial type='tcp'><source mode='bind' host='127.0.0.1' service='9999'/><protocol type='telnet'/></serial>" +
        "<serial type='tcp'><source mode='connect' host='127.0.0.1' service='5555'/></serial>" +
        "<serial type='unix'><source mode='connect' path='/tmp/s'/></serial>",
    );
    expect(values(argv(d), "-chardev").slice(1)).to.deep.equal([
      "serial,id=charserial0,path=/dev/ttyS2",
      "vc,id=charserial1",
      "socket,id=charserial2,host=127.0.0.1,port=9999,telnet=on,server=on,wait=off",
      "socket,id=charserial3,host=127.0.0.1,port=5555",
      "socket,id=charserial4,path=/tmp/s",
    ]);
    expect(refusal(doc("<serial type='udp'/>")).path).to.equal("/domain/devices/serial[1]/source");
  });

  it("consoles as libvirt writes them: a serial console without <serial> is serial 0, virtio consoles on virtio-serial", () => {
    const d = doc(
      "<console type='pty'><target type='serial' port='0'/></console><console type='pty'><target type='virtio'/></console>",
    );
    const a = argv(d);
    expect(values(a, "-chardev").slice(1)).to.deep.equal(["pty,id=charserial0", "pty,id=charconsole1"]);
    expect(devices(d)).to.deep.include.members([
      { driver: "isa-serial", chardev: "charserial0", id: "serial0", index: 0 },
      { driver: "virtio-serial-pci", id: "virtio-serial0", bus: "pci.0", addr: "0x2" },
      { driver: "virtconsole", chardev: "charconsole1", id: "console1" },
    ]);
  });

  it("qxl with its memory sizes and the primary video first; parallel ports, <pm> and the APIC's paravirtual EOI", () => {
    const d = doc(
      "<video><model type='qxl'/></video><video><model type='qxl' vram='32768' vgamem='8192' primary='yes'/></video>" +
        "<parallel type='pty'/>",
      "<features><apic eoi='on'/></features><pm><suspend-to-mem enabled='no'/></pm>",
    );
    const a = argv(d);
    expect(devices(d)).to.deep.include.members([
      {
        driver: "qxl-vga",
        id: "video0",
        max_outputs: 1,
        ram_size: 67108864,
        vram_size: 33554432,
        vram64_size_mb: 0,
        vgamem_mb: 8,
        bus: "pci.0",
        addr: "0x2",
      },
      {
        driver: "qxl",
        id: "video1",
        max_outputs: 1,
        ram_size: 67108864,
        vram_size: 67108864,
        vram64_size_mb: 0,
        vgamem_mb: 16,
        bus: "pci.0",
        addr: "0x4",
      },
      { driver: "isa-parallel", chardev: "charparallel0", id: "parallel0" },
    ]);
    expect(values(a, "-global")).to.deep.equal(["PIIX4_PM.disable_s3=1"]);
    expect(values(a, "-cpu")).to.deep.equal(["qemu64,kvm-pv-eoi=on"]);
    expect(refusal(doc("<video><model type='qxl'/></video><video><model type='vga'/></video>")).path).to.equal(
      "/domain/devices/video[2]/model/@type",
    );
    expect(refusal(doc("<video><model type='vga' vgamem='8192'/></video>")).path).to.equal(
      "/domain/devices/video[1]/model/@vgamem",
    );
  });

  it("a disk device other than disk and cdrom is refused, not attached as a disk", () => {
    // (a LUN on SCSI is built as scsi-block, a floppy on the fdc: test/unit/argv-storage-r3.test.ts)
    const e = refusal(
      doc("<disk type='file' device='floppy'><source file='/i/f.img'/><target dev='hda' bus='ide'/></disk>"),
    );
    expect(e.path).to.equal("/domain/devices/disk[1]/@device");
  });
});
