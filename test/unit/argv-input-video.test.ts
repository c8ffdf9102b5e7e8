/**
 * Virtio and evdev inputs, video defaults, ramfb, graphics sockets without a path and the USB
 * redirection filter on the QEMU command line, as libvirt writes them
 * (provider/qemu/input-video.ts; the expected values are libvirt 11.3's tests/qemuxmlconfdata
 * .args files), and the libvirt rules the builder checks too.
 */
import { expect } from "chai";
import { DomainDef } from "../../provider/xml/domain";
import { buildQemuArgv } from "../../provider/qemu/argv";
import * as net from "node:net";
import { argv, refusal, values } from "../support/argv";
import { spawn } from "node:child_process";
import {
  autoGraphicsPortCount,
  autoVsockCount,
  freeDisplayPorts,
  freeVsockCids,
} from "../../provider/backends/qemu/free-ports";

const U = "c7a5fdbd-edaf-9455-926a-d65c16db1809";

const doc = (devices: string, machine = "pc", balloon = "<memballoon model='none'/>") =>
  DomainDef.parse(
    `<domain type='qemu'><name>QEMUGuest1</name><uuid>${U}</uuid><memory unit='KiB'>219100</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='${machine}'>hvm</type></os><devices>${devices}${balloon}</devices></domain>`,
  );

/** The -device values, without the USB controller libvirt adds to every PC domain. */
const devices = (d: DomainDef) =>
  values(argv(d), "-device")
    .map((v) => JSON.parse(v) as Record<string, unknown>)
    .filter((x) => x.driver !== "piix3-usb-uhci");

describe("QEMU command line: virtio and evdev inputs (<input>)", () => {
  it("virtio mouse, keyboard and tablet are virtio-*-pci devices in libvirt's slots after the balloon (virtio-input)", () => {
    const d = doc(
      "<controller type='usb' index='0'/><input type='mouse' bus='virtio'/>" +
        "<input type='keyboard' bus='virtio'><address type='pci' domain='0x0000' bus='0x00' slot='0x0a' function='0x0'/></input>" +
        "<input type='tablet' bus='virtio'/><input type='mouse' bus='ps2'/><input type='keyboard' bus='ps2'/>",
      "pc",
      "<memballoon model='virtio'/>",
    );
    expect(devices(d)).to.deep.equal([
      { driver: "virtio-balloon-pci", id: "balloon0", bus: "pci.0", addr: "0x2" },
      { driver: "virtio-mouse-pci", id: "input0", bus: "pci.0", addr: "0x3" },
      { driver: "virtio-keyboard-pci", id: "input1", bus: "pci.0", addr: "0xa" },
      { driver: "virtio-tablet-pci", id: "input2", bus: "pci.0", addr: "0x4" },
    ]);
  });

  it("a passthrough input is a virtio-input-host-pci with its event device (virtio-input-passthrough)", () => {
    const d = doc("<input type='passthrough' bus='virtio'><source evdev='/dev/input/event1234'/></input>");
    expect(devices(d)).to.deep.equal([
      { driver: "virtio-input-host-pci", id: "input0", evdev: "/dev/input/event1234", bus: "pci.0", addr: "0x2" },
    ]);
  });

  it("the <driver> virtio options reach the device (virtio-options-input-ats, -iommu, -packed)", () => {
    const d = doc(
      "<input type='mouse' bus='virtio'><driver ats='on' iommu='on' packed='on'/></input>" +
        "<input type='keyboard' bus='virtio'><driver ats='off'/></input>",
    );
    const [mouse, kbd] = devices(d);
    expect(mouse).to.include({ driver: "virtio-mouse-pci", ats: true, iommu_platform: true, packed: true });
    expect(kbd).to.include({ driver: "virtio-keyboard-pci", ats: false });
  });

  it("on q35 each virtio input sits behind a pcie-root-port of its own, as libvirt lays it out", () => {
    const d = doc("<input type='tablet' bus='virtio'/>", "q35");
    const tablet = devices(d).find((x) => x.driver === "virtio-tablet-pci");
    expect(tablet).to.include({ id: "input0" });
    expect(String(tablet?.bus)).to.match(/^pci\.\d+$/);
    expect(devices(d).some((x) => x.driver === "pcie-root-port" && x.id === tablet?.bus)).to.equal(true);
  });

  it("an evdev input is an input-linux object with grab, repeat and grab toggle (input-linux)", () => {
    const d = doc(
      "<input type='evdev'><source dev='/dev/input/event1234' grab='all' grabToggle='alt-alt' repeat='on'/></input>" +
        "<input type='mouse' bus='ps2'/><input type='keyboard' bus='ps2'/>",
    );
    expect(values(argv(d), "-object").map((o) => JSON.parse(o) as unknown)).to.deep.include({
      "qom-type": "input-linux",
      id: "input0",
      evdev: "/dev/input/event1234",
      repeat: true,
      grab_all: true,
      "grab-toggle": "alt-alt",
    });
  });

  it("USB and virtio inputs share libvirt's input numbering", () => {
    const d = doc("<input type='tablet' bus='usb'/><input type='keyboard' bus='virtio'/>");
    expect(devices(d).map((x) => [x.driver, x.id])).to.deep.include.members([
      ["usb-tablet", "input0"],
      ["virtio-keyboard-pci", "input1"],
    ]);
  });

  it("refuses what libvirt refuses or what is not built, naming the value", () => {
    const transitional = refusal(doc("<input type='keyboard' bus='virtio' model='virtio-transitional'/>"));
    expect(transitional.path).to.equal("/domain/devices/input[1]/@model");
    expect(transitional.message).to.contain("not supported for input type=keyboard");
    expect(refusal(doc("<input type='passthrough' bus='virtio'/>")).path).to.equal(
      "/domain/devices/input[1]/source/@evdev",
    );
    const grab = refusal(doc("<input type='evdev'><source dev='/dev/input/event1' grabToggle='f12'/></input>"));
    expect(grab.path).to.equal("/domain/devices/input[1]/source/@grabToggle");
    expect(grab.value).to.equal("f12");
    expect(refusal(doc("<input type='mouse' bus='xen'/>")).path).to.equal("/domain/devices/input[1]/@bus");
    expect(refusal(doc("<input type='evdev'><source dev='/dev/input/event1' foo='1'/></input>")).path).to.equal(
      "/domain/devices/input[1]/source/@foo",
    );
  });
});

describe("QEMU command line: video defaults and ramfb (<video>)", () => {
  it("a <video> without a model type is libvirt's default Cirrus VGA on pc and q35 (x86_64-pc-default-models, x86_64-q35-default-models)", () => {
    expect(devices(doc("<video/>"))).to.deep.include({
      driver: "cirrus-vga",
      id: "video0",
      bus: "pci.0",
      addr: "0x2",
    });
    expect(devices(doc("<video><model vram='16384'/></video>", "q35")).map((x) => x.driver)).to.include("cirrus-vga");
  });

  it("ramfb is a sysbus display with no PCI address (video-ramfb-display-device)", () => {
    expect(devices(doc("<video><model type='ramfb'/></video>"))).to.deep.equal([{ driver: "ramfb", id: "video0" }]);
  });

  it("refuses a ramfb with an address as libvirt does (video-ramfb-display-device-pci-address)", () => {
    const e = refusal(
      doc(
        "<video><model type='ramfb'/><address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/></video>",
      ),
    );
    expect(e.message).to.contain("address not supported for video type ramfb");
  });

  it("refuses a vhost-user GPU: it needs a vhost-user-gpu process libvirt starts (vhost-user-vga)", () => {
    const e = refusal(doc("<video><driver name='vhostuser'/><model type='virtio'/></video>"));
    expect(e.path).to.equal("/domain/devices/video[1]/driver/@name");
    expect(e.value).to.equal("vhostuser");
    expect(e.fix).to.contain("vhost-user-gpu");
  });
});

describe("QEMU command line: graphics sockets without a path (<listen type='socket'/>)", () => {
  it("VNC and SPICE make vnc.sock / spice.sock in the domain's run directory (graphics-vnc-auto-socket, graphics-spice-auto-socket)", () => {
    const vnc = buildQemuArgv(
      doc("<graphics type='vnc'><listen type='socket'/></graphics><video><model type='cirrus'/></video>"),
      { qmpSocketPath: "/var/lib/direct/QEMUGuest1/qmp.sock" },
    ).argv;
    expect(values(vnc, "-vnc")).to.deep.equal(["vnc=unix:/var/lib/direct/QEMUGuest1/vnc.sock,audiodev=audio1"]);
    const spice = values(
      argv(doc("<graphics type='spice'><listen type='socket'/></graphics><video><model type='cirrus'/></video>")),
      "-spice",
    );
    expect(spice[0]).to.match(/^unix=on,addr=\/run\/libvirt-domain\/QEMUGuest1\/spice\.sock,/);
  });
});

describe("QEMU command line: USB redirection filter (<redirfilter>)", () => {
  it("every usb-redir carries the filter rules, versions as USB BCD (usb-redir-filter, usb-redir-filter-version)", () => {
    const d = doc(
      "<graphics type='spice'/><video><model type='cirrus'/></video>" +
        "<redirdev bus='usb' type='spicevmc'/><redirdev bus='usb' type='spicevmc'/>" +
        "<redirfilter><usbdev class='0x08' vendor='0x15E1' product='0x2007' version='1.10' allow='yes'/>" +
        "<usbdev class='0x08' vendor='0x15E1' product='0x2007' version='9.4' allow='yes'/>" +
        "<usbdev class='-1' vendor='-1' product='-1' version='-1' allow='no'/><usbdev allow='no'/></redirfilter>",
    );
    const filters = devices(d)
      .filter((x) => x.driver === "usb-redir")
      .map((x) => x.filter);
    const f = "0x08:0x15E1:0x2007:0x0110:1|0x08:0x15E1:0x2007:0x0940:1|-1:-1:-1:-1:0|-1:-1:-1:-1:0";
    expect(filters).to.deep.equal([f, f]);
  });

  it("refuses a rule without allow, or a class above 0xff, naming it", () => {
    const base = "<graphics type='spice'/><video><model type='cirrus'/></video><redirdev bus='usb' type='spicevmc'/>";
    expect(refusal(doc(`${base}<redirfilter><usbdev class='0x08'/></redirfilter>`)).path).to.equal(
      "/domain/devices/redirfilter[1]/usbdev[1]/@allow",
    );
    const big = refusal(doc(`${base}<redirfilter><usbdev class='0x100' allow='yes'/></redirfilter>`));
    expect(big.path).to.equal("/domain/devices/redirfilter[1]/usbdev[1]/@class");
    expect(big.value).to.equal("0x100");
  });
});

describe("QEMU command line: video alias and ACPI index", () => {
  it("a user alias is the video's id, an ACPI index its acpi-index (video-none-device, devices-acpi-index)", () => {
    const d = doc("<video><model type='cirrus'/><acpi index='1729'/><alias name='ua-my-video'/></video>");
    expect(devices(d)).to.deep.equal([
      { driver: "cirrus-vga", id: "ua-my-video", bus: "pci.0", addr: "0x2", "acpi-index": 1729 },
    ]);
    expect(devices(doc("<video><model type='none'/><alias name='ua-user-video-alias'/></video>"))).to.deep.equal([]);
  });

  it("refuses an ACPI index out of range, or on a video that is no PCI device", () => {
    const e = refusal(doc("<video><model type='vga'/><acpi index='16384'/></video>"));
    expect(e.path).to.equal("/domain/devices/video[1]/acpi/@index");
    expect(e.value).to.equal("16384");
    expect(refusal(doc("<video><model type='none'/><acpi index='1'/></video>")).path).to.equal(
      "/domain/devices/video[1]/acpi",
    );
  });
});

describe("QEMU command line: SPICE autoport (a free port found at start)", () => {
  const spiceDoc = doc(
    "<graphics type='spice' autoport='yes'><listen type='address' address='127.0.0.1'/></graphics><graphics type='spice' port='-1'/><video><model type='qxl'/></video>",
  );
  it("takes the backend's free ports in order, else libvirt's 5900 up (graphics-spice-auto-socket-cfg, q35-virt-manager-basic)", () => {
    const given = buildQemuArgv(spiceDoc, { graphicsPorts: [5931, 5977] }).argv;
    expect(values(given, "-spice").map((s) => s.split(",")[0])).to.deep.equal(["port=5931", "port=5977"]);
    expect(values(argv(spiceDoc), "-spice").map((s) => s.split(",").slice(0, 2).join(","))).to.deep.equal([
      "port=5900,addr=127.0.0.1",
      "port=5901,disable-ticketing=on",
    ]);
  });

  it("the QEMU-direct backend counts the SPICE graphics that need a port and finds free ones, skipping a busy one", async () => {
    expect(autoGraphicsPortCount(spiceDoc)).to.equal(2);
    expect(
      autoGraphicsPortCount(doc("<graphics type='spice' autoport='yes'><listen type='socket'/></graphics>")),
    ).to.equal(0);
    expect(autoGraphicsPortCount(doc("<graphics type='vnc' autoport='yes'/>"))).to.equal(0);
    const [first] = await freeDisplayPorts(1);
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen({ port: first, exclusive: true }, r));
    try {
      const [next] = await freeDisplayPorts(1);
      expect(next).to.be.greaterThan(first!);
    } finally {
      await new Promise((r) => busy.close(r));
    }
  });
});

describe("QEMU command line: vsock with a CID found at start (<cid auto='yes'/>)", () => {
  const vsockDoc = doc("<vsock model='virtio'><cid auto='yes'/></vsock>");
  it("takes the backend's free CID, else 3 up (vhost-vsock-auto)", () => {
    const vsock = (a: string[]) =>
      values(a, "-device")
        .map((v) => JSON.parse(v) as Record<string, unknown>)
        .find((d) => d.driver === "vhost-vsock-pci");
    expect(vsock(buildQemuArgv(vsockDoc, { vsockCids: [17] }).argv)).to.include({ id: "vsock0", "guest-cid": 17 });
    expect(vsock(argv(vsockDoc))).to.include({ "guest-cid": 3 });
  });

  it("the QEMU-direct backend skips the CIDs running QEMUs were given", async () => {
    expect(autoVsockCount(vsockDoc)).to.equal(1);
    const before = await freeVsockCids(1);
    const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 20000)", `{"guest-cid":${before[0]}}`]);
    try {
      await new Promise((r) => setTimeout(r, 300));
      const [next] = await freeVsockCids(1);
      expect(next).to.not.equal(before[0]);
      expect(next).to.be.greaterThan(2);
    } finally {
      holder.kill();
    }
  });
});

describe("QEMU command line: USB inputs behind hubs, and the hubs libvirt adds", () => {
  const usbDevices = (d: DomainDef) => devices(d).filter((x) => x.bus === "usb.0");
  it("more USB inputs than ports: libvirt's hubs, filled depth first (usb-hub-autoadd, usb-hub-autoadd-deluxe)", () => {
    const four = "<input type='mouse' bus='usb'/>".repeat(3) + "<input type='tablet' bus='usb'/>";
    expect(usbDevices(doc(`<controller type='usb' index='0'/>${four}`))).to.deep.equal([
      { driver: "usb-hub", id: "hub0", bus: "usb.0", port: "1" },
      { driver: "usb-mouse", id: "input0", bus: "usb.0", port: "2" },
      { driver: "usb-mouse", id: "input1", bus: "usb.0", port: "1.1" },
      { driver: "usb-mouse", id: "input2", bus: "usb.0", port: "1.2" },
      { driver: "usb-tablet", id: "input3", bus: "usb.0", port: "1.3" },
    ]);
    const sixteen = usbDevices(doc("<input type='tablet' bus='usb'/>".repeat(16)));
    expect(sixteen.filter((x) => x.driver === "usb-hub").map((x) => x.port)).to.deep.equal(["1", "2", "1.1"]);
    expect(sixteen.filter((x) => x.driver === "usb-tablet").map((x) => x.port)).to.deep.equal([
      ...["1.2", "1.3", "1.4", "1.5", "1.6", "1.7", "1.8"],
      ...["1.1.1", "1.1.2", "1.1.3", "1.1.4", "1.1.5", "1.1.6", "1.1.7", "1.1.8"],
      "2.1",
    ]);
  });

  it("written hubs and ports are kept, the rest take the first free port (usb-ports, usb-port-autoassign, usb-port-missing)", () => {
    const d = doc(
      "<hub type='usb'><address type='usb' bus='0' port='1'/></hub><input type='mouse' bus='usb'/><hub type='usb'/>" +
        "<input type='mouse' bus='usb'><address type='usb' bus='0'/></input>" +
        "<input type='mouse' bus='usb'><address type='usb' bus='0' port='1.5'/></input>",
    );
    expect(usbDevices(d).map((x) => `${String(x.id)}@${String(x.port)}`)).to.deep.equal([
      "hub0@1",
      "hub1@2",
      "input0@1.1",
      "input1@1.2",
      "input2@1.5",
    ]);
  });

  it("refuses a port behind a hub that is not there, naming the first missing level as libvirt (usb-hub-nonexistent)", () => {
    const e = refusal(doc("<input type='mouse' bus='usb'><address type='usb' bus='0' port='1.2.3'/></input>"));
    expect(e.path).to.equal("/domain/devices/input[1]/address/@port");
    expect(e.message).to.contain("there is no hub at port 1 in USB address bus: 0 port: 1.2.3");
  });
});
