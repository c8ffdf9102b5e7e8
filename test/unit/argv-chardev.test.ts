/**
 * The chardev family of the QEMU command line (provider/qemu/chardev.ts): channels, consoles,
 * serial and parallel ports as libvirt writes them (its corpus cases named in each title).
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { QemuDirectBackend, directChannelDir } from "../../provider/backends/qemu/direct";
import { buildQemuArgv } from "../../provider/qemu/argv";
import { libvirtChannelTargetDir, virtioSerialLayout } from "../../provider/qemu/chardev";
import { DomainDef } from "../../provider/xml/domain";
import { childElements, firstChild } from "../../provider/xml/tree";
import { argv, devices, refusal, values } from "../support/argv";

const UUID = "c7a5fdbd-edaf-9455-926a-d65c16db1809";
const doc = (devs: string, name = "guest") =>
  DomainDef.parse(
    `<domain type='qemu'><name>${name}</name><uuid>${UUID}</uuid><memory unit='MiB'>64</memory>` +
      `<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>${devs}</devices></domain>`,
  );
const chardevs = (d: DomainDef, o = {}) => values(buildQemuArgv(d, o).argv, "-chardev").slice(1);
const ports = (d: DomainDef) =>
  devices(d)
    .filter((x) => x.driver === "virtserialport")
    .map((x) => `${String(x.chardev)}@${String(x.bus)}:${String(x.nr)}`);

describe("QEMU command line: channels (chardev family)", () => {
  it("a guest agent unix channel without a path gets DIR/TARGET-NAME, a nameless one DIR/vioser-CC-BB-PP.sock (channel-virtio-unix)", () => {
    const d = doc(
      "<channel type='unix'><source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>" +
        "<channel type='unix'><target type='virtio'/></channel>",
    );
    expect(chardevs(d, { channelTargetDir: "/state/guest" })).to.deep.equal([
      "socket,id=charchannel0,path=/state/guest/org.qemu.guest_agent.0,server=on,wait=off",
      "socket,id=charchannel1,path=/state/guest/vioser-00-00-02.sock,server=on,wait=off",
    ]);
    expect(ports(d)).to.deep.equal(["charchannel0@virtio-serial0.0:1", "charchannel1@virtio-serial0.0:2"]);
    expect(libvirtChannelTargetDir(-1, "QEMUGuest1")).to.equal(
      "/var/lib/libvirt/qemu/channel/target/domain--1-QEMUGuest1",
    );
  });

  it("a made socket path longer than a unix socket's (107 bytes) is refused naming the channel and the fix", () => {
    const d = doc("<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>");
    expect(() => buildQemuArgv(d, { channelTargetDir: `/${"x".repeat(100)}` })).to.throw(
      /\/domain\/devices\/channel\[1\]\/source\/@path: the channel's unix socket path is too long.*fix: write a shorter <source mode='bind' path/,
    );
  });

  it("a made path's name must be a file name: '/', '.' and '..' are refused naming the target name", () => {
    for (const n of ["../../etc/x", "..", "a/b"]) {
      const e = refusal(doc(`<channel type='unix'><target type='virtio' name='${n}'/></channel>`));
      expect(e.path).to.equal("/domain/devices/channel[1]/target/@name");
      expect(e.message).to.contain("<source mode='bind' path=");
    }
  });

  it("virtio-serial ports as libvirt lays them out: written ports kept, a controller-only address, an added controller (channel-virtio-auto)", () => {
    const ch = (n: string, a = "") => `<channel type='pty'><target type='virtio' name='${n}'/>${a}</channel>`;
    const d = doc(
      "<controller type='virtio-serial' index='0' ports='16'/>" +
        "<controller type='virtio-serial' index='1'><address type='pci' domain='0x0000' bus='0x00' slot='0x0a' function='0x0'/></controller>" +
        ch("a") +
        ch("b", "<address type='virtio-serial' controller='1' bus='0'/>") +
        ch("c", "<address type='virtio-serial' controller='1' bus='0' port='3'/>") +
        ch("d", "<address type='virtio-serial' controller='0' bus='0'/>") +
        ch("e", "<address type='virtio-serial' controller='1' bus='0'/>") +
        ch("f", "<address type='virtio-serial' controller='2' bus='0'/>"),
    );
    expect(ports(d)).to.deep.equal([
      "charchannel0@virtio-serial0.0:1",
      "charchannel1@virtio-serial1.0:1",
      "charchannel2@virtio-serial1.0:3",
      "charchannel3@virtio-serial0.0:2",
      "charchannel4@virtio-serial1.0:2",
      "charchannel5@virtio-serial2.0:1",
    ]);
    expect(devices(d).filter((x) => x.driver === "virtio-serial-pci")).to.deep.include.members([
      { driver: "virtio-serial-pci", id: "virtio-serial0", max_ports: 16, bus: "pci.0", addr: "0x2" },
      { driver: "virtio-serial-pci", id: "virtio-serial1", bus: "pci.0", addr: "0xa" },
      { driver: "virtio-serial-pci", id: "virtio-serial2", bus: "pci.0", addr: "0x3" },
    ]);
    const devs = { of: (n: string) => childElements(firstChild(d.root, "devices")!, n) };
    expect(virtioSerialLayout(devs).implicit).to.deep.equal([2]);
  });

  it("a port used twice, beyond the controller's ports, or on bus 1 is refused naming the address", () => {
    const ch = (a: string) =>
      `<channel type='pty'><target type='virtio'/><address type='virtio-serial' ${a}/></channel>`;
    expect(refusal(doc(ch("controller='0' port='2'") + ch("controller='0' port='2'"))).path).to.equal(
      "/domain/devices/channel[2]/address/@port",
    );
    const beyond = refusal(
      doc("<controller type='virtio-serial' index='0' ports='4'/>" + ch("controller='0' port='5'")),
    );
    expect(beyond.path).to.equal("/domain/devices/channel[1]/address/@port");
    expect(beyond.message).to.contain("raise <controller type='virtio-serial' index='0' ports=");
    expect(refusal(doc(ch("controller='0' bus='1' port='1'"))).path).to.equal(
      "/domain/devices/channel[1]/address/@bus",
    );
  });

  it("SPICE's agent (spicevmc, named com.redhat.spice.0 by default) with SPICE graphics, refused without (channel-virtio-default)", () => {
    const spice = "<graphics type='spice' port='5903' autoport='no' listen='127.0.0.1'/>";
    const d = doc(spice + "<channel type='spicevmc'><target type='virtio'/></channel>");
    expect(chardevs(d)).to.deep.equal(["spicevmc,id=charchannel0,name=vdagent"]);
    expect(devices(d)).to.deep.include({
      driver: "virtserialport",
      bus: "virtio-serial0.0",
      nr: 1,
      chardev: "charchannel0",
      id: "channel0",
      name: "com.redhat.spice.0",
    });
    expect(refusal(doc("<channel type='spicevmc'><target type='virtio'/></channel>")).path).to.equal(
      "/domain/devices/channel[1]/@type",
    );
  });

  it("QEMU's own agent (qemu-vdagent) with its clipboard and mouse (channel-qemu-vdagent, -features)", () => {
    const vd = (s: string) =>
      doc(`<channel type='qemu-vdagent'><target type='virtio' name='com.redhat.spice.0'/>${s}</channel>`);
    expect(chardevs(vd("<source><clipboard copypaste='yes'/><mouse mode='client'/></source>"))).to.deep.equal([
      "qemu-vdagent,id=charchannel0,name=vdagent,clipboard=on,mouse=on",
    ]);
    expect(chardevs(vd("<source><clipboard copypaste='no'/><mouse mode='server'/></source>"))).to.deep.equal([
      "qemu-vdagent,id=charchannel0,name=vdagent,clipboard=off,mouse=off",
    ]);
    expect(refusal(vd("<source><mouse mode='both'/></source>")).path).to.equal(
      "/domain/devices/channel[1]/source/mouse/@mode",
    );
  });

  it("a guestfwd channel is a user netdev forwarding to its chardev (channel-guestfwd, channel-unix-guestfwd)", () => {
    const d = doc(
      "<channel type='pipe'><source path='/tmp/guestfwd,foo'/><target type='guestfwd' address='10.0.2.1' port='4600'/></channel>" +
        "<channel type='unix'><source mode='connect' path='/tmp/c.sock'/><target type='guestfwd' address='10.0.2.1' port='4601'/></channel>",
    );
    const a = argv(d);
    expect(values(a, "-chardev").slice(1)).to.deep.equal([
      "pipe,id=charchannel0,path=/tmp/guestfwd,,foo",
      "socket,id=charchannel1,path=/tmp/c.sock",
    ]);
    expect(values(a, "-netdev").map((v) => JSON.parse(v) as unknown)).to.deep.equal([
      { type: "user", guestfwd: [{ str: "tcp:10.0.2.1:4600-chardev:charchannel0" }], id: "channel0" },
      { type: "user", guestfwd: [{ str: "tcp:10.0.2.1:4601-chardev:charchannel1" }], id: "channel1" },
    ]);
    const bad = refusal(
      doc("<channel type='pipe'><source path='/tmp/g'/><target type='guestfwd' address='::1' port='4600'/></channel>"),
    );
    expect(bad.path).to.equal("/domain/devices/channel[1]/target/@address");
  });

  it("the guest agent's connection state is runtime state: no argument (channel-virtio-state)", () => {
    const ch = (s: string) =>
      doc(`<channel type='pty'><target type='virtio' name='org.qemu.guest_agent.0'${s}/></channel>`);
    expect(argv(ch(" state='connected'"))).to.deep.equal(argv(ch("")));
  });
});

describe("QEMU command line: consoles, serial and parallel ports (chardev family)", () => {
  it("the first console is the first serial: the same tcp/unix source is accepted, another refused (serial-tcp-chardev, serial-unix-chardev)", () => {
    const src = "<source mode='connect' host='127.0.0.1' service='9999'/><protocol type='raw'/>";
    const d = doc(
      `<serial type='tcp'>${src}<target port='0'/></serial><console type='tcp'>${src}<target type='serial' port='0'/></console>`,
    );
    expect(chardevs(d)).to.deep.equal(["socket,id=charserial0,host=127.0.0.1,port=9999"]);
    const other = doc(
      `<serial type='tcp'>${src}</serial><console type='tcp'><source mode='connect' host='127.0.0.1' service='1'/></console>`,
    );
    expect(refusal(other).path).to.equal("/domain/devices/console[1]/source");
  });

  it("a tcp console without <serial> is serial 0 (telnet, bind), a virtio console a unix socket (console-virtio-unix)", () => {
    const d = doc(
      "<console type='tcp'><source mode='bind' host='127.0.0.1' service='9999'/><protocol type='telnet'/><target type='serial' port='0'/></console>" +
        "<console type='unix'><source mode='connect' path='/tmp/connect.socket'/><target type='virtio'/></console>",
    );
    expect(chardevs(d)).to.deep.equal([
      "socket,id=charserial0,host=127.0.0.1,port=9999,telnet=on,server=on,wait=off",
      "socket,id=charconsole1,path=/tmp/connect.socket",
    ]);
  });

  it("UDP: the connect source is the peer, the bind source the local end (serial-udp-chardev)", () => {
    const d = doc(
      "<serial type='udp'><source mode='bind' host='127.0.0.1' service='9999'/><source mode='connect' host='127.0.0.1' service='9998'/><target port='0'/></serial>" +
        "<serial type='udp'><source mode='connect' service='9999'/><target port='1'/></serial>",
    );
    expect(chardevs(d)).to.deep.equal([
      "udp,id=charserial0,host=127.0.0.1,port=9998,localaddr=127.0.0.1,localport=9999",
      "udp,id=charserial1,host=,port=9999,localaddr=,localport=0",
    ]);
  });

  it("an ISA serial's model isa-serial, its port as index, a file's append and tls='no' are built; other models refused (virtio-9p-createmode, name-escape)", () => {
    const d = doc(
      "<serial type='pty'><target type='isa-serial' port='1'><model name='isa-serial'/></target></serial>" +
        "<serial type='file'><source path='/tmp/s.log' append='on'/><target port='0'/></serial>" +
        "<serial type='tcp'><source mode='connect' host='h' service='1' tls='no'/></serial>",
    );
    expect(chardevs(d)).to.deep.equal([
      "pty,id=charserial0",
      "file,id=charserial1,path=/tmp/s.log,append=on",
      "socket,id=charserial2,host=h,port=1",
    ]);
    expect(
      devices(d)
        .filter((x) => x.driver === "isa-serial")
        .map((x) => x.index),
    ).to.deep.equal([1, 0, 2]);
    const usb = doc("<serial type='pty'><target type='usb-serial'><model name='usb-serial'/></target></serial>");
    expect(refusal(usb).path).to.equal("/domain/devices/serial[1]/target/@type");
    const tls = doc("<serial type='tcp'><source mode='connect' host='h' service='1' tls='yes'/></serial>");
    expect(refusal(tls).path).to.equal("/domain/devices/serial[1]/source/@tls");
  });

  it("a parallel port on a TCP socket (parallel-tcp-chardev)", () => {
    const d = doc(
      "<parallel type='tcp'><source mode='bind' host='127.0.0.1' service='9999'/><protocol type='raw'/><target port='0'/></parallel>",
    );
    expect(chardevs(d)).to.deep.equal(["socket,id=charparallel0,host=127.0.0.1,port=9999,server=on,wait=off"]);
  });

  it("a <log> file is logfile= with its logappend (serial-file-log); the first console may repeat the serial's source in part (serial-file-chardev)", () => {
    const d = doc(
      "<serial type='file'><source path='/tmp/s.log' append='on'/><log file='/var/log/s.log' append='off'/><target port='0'/></serial>" +
        "<console type='file'><source path='/tmp/s.log'/><target type='serial' port='0'/></console>",
    );
    expect(chardevs(d)).to.deep.equal([
      "file,id=charserial0,path=/tmp/s.log,append=on,logfile=/var/log/s.log,logappend=off",
    ]);
    const other = doc(
      "<serial type='file'><source path='/tmp/s.log'/></serial><console type='file'><source path='/tmp/s.log' append='on'/></console>",
    );
    expect(refusal(other).path).to.equal("/domain/devices/console[1]/source");
  });

  it("ISA serial addresses (iobase, irq), the ISA debug console and a pci-serial at its address (serial-dev-chardev-iobase, serial-debugcon, pci-serial-dev-chardev)", () => {
    const d = doc(
      "<serial type='dev'><source path='/dev/ttyS2'/><target port='0'/><address type='isa' iobase='0x3f8' irq='0x4'/></serial>" +
        "<serial type='pty'><target type='isa-debug'><model name='isa-debugcon'/></target><address type='isa' iobase='0x402'/></serial>" +
        "<serial type='pty'><target type='pci-serial' port='2'/><address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/></serial>" +
        "<console type='dev'><source path='/dev/ttyS2'/><target type='serial' port='0'/><address type='isa' iobase='0x3f8' irq='0x4'/></console>",
    );
    expect(devices(d).filter((x) => String(x.id).startsWith("serial"))).to.deep.equal([
      { driver: "isa-serial", chardev: "charserial0", id: "serial0", index: 0, iobase: 1016, irq: 4 },
      { driver: "isa-debugcon", chardev: "charserial1", id: "serial1", iobase: 1026 },
      { driver: "pci-serial", chardev: "charserial2", id: "serial2", bus: "pci.0", addr: "0x4" },
    ]);
    const noAddress = doc("<serial type='pty'><target type='pci-serial'/></serial>");
    expect(refusal(noAddress).path).to.equal("/domain/devices/serial[1]/address");
    const pciOnIsa = doc("<serial type='pty'><address type='isa' iobase='0x3f8' slot='0x4'/></serial>");
    expect(refusal(pciOnIsa).path).to.equal("/domain/devices/serial[1]/address/@slot");
    const virtioAt = doc(
      "<console type='pty'><target type='virtio'/><address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/></console>",
    );
    expect(refusal(virtioAt).path).to.equal("/domain/devices/console[1]/address");
    const wrongModel = doc("<serial type='pty'><target type='isa-serial'><model name='pci-serial'/></target></serial>");
    expect(refusal(wrongModel).path).to.equal("/domain/devices/serial[1]/target/model/@name");
  });

  it("a SPICE port as serial with SPICE graphics, refused without (serial-spiceport)", () => {
    const port = "<serial type='spiceport'><source channel='org.qemu.console.serial.0'/></serial>";
    const d = doc(port + "<graphics type='spice' port='5903' autoport='no' listen='127.0.0.1'/>");
    expect(chardevs(d)).to.deep.equal(["spiceport,id=charserial0,name=org.qemu.console.serial.0"]);
    expect(refusal(doc(port)).path).to.equal("/domain/devices/serial[1]/@type");
  });
});

describe("QEMU-direct backend: the channel directory (chardev family)", () => {
  it("define builds with STATE_DIR/NAME/channel: a socket path too long there is refused naming the channel", async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-chardev-"));
    try {
      const state = path.join(base, "s".repeat(80));
      const b = new QemuDirectBackend(`qemu-direct://${state}?emulator=/bin/false`);
      const xml = (n: string) =>
        `<domain type='qemu'><name>g</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os>` +
        `<devices><channel type='unix'><target type='virtio' name='${n}'/></channel></devices></domain>`;
      let err: unknown;
      await b.define(xml("org.qemu.guest_agent.0")).catch((e: unknown) => (err = e));
      expect(String(err)).to.contain(
        "/domain/devices/channel[1]/source/@path: the channel's unix socket path is too long",
      );
      expect(String(err)).to.contain(path.join(state, "g", "channel"));
      expect(directChannelDir(`qemu-direct://${state}`, "g")).to.equal(path.join(state, "g", "channel"));
    } finally {
      fs.rmSync(base, { recursive: true, force: true });
    }
  });
});
