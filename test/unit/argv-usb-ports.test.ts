/**
 * USB ports across the families that lay them out on their own (storage.ts for USB disks,
 * media.ts for USB sound, hostdev-net.ts for hubs, host devices, CCID readers and redirections,
 * argv.ts/input-video.ts for inputs): two devices are never given one port of one USB bus (QEMU
 * refuses to start with "usb port N ... in use"); where their layouts would meet, the definition is
 * refused at preview with a fix, and devices written with their ports are built.
 */
import { expect } from "chai";
import { DomainDef } from "../../provider/xml/domain";
import { refusalOrAccepted, values, argv } from "../support/argv";

const doc = (devices: string) =>
  DomainDef.parse(
    `<domain type='qemu'><name>d</name><uuid>11111111-2222-3333-4444-555555555555</uuid><memory unit='MiB'>64</memory>` +
      `<os><type arch='x86_64' machine='pc'>hvm</type></os><devices><controller type='usb' model='qemu-xhci'/>${devices}` +
      `<memballoon model='none'/></devices></domain>`,
  );

const USB_DISK = (port = "") =>
  `<disk type='file' device='disk'><source file='/x.img'/><target dev='sda' bus='usb'/>${port ? `<address type='usb' bus='0' port='${port}'/>` : ""}</disk>`;
const SOUND = (port = "") => `<sound model='usb'>${port ? `<address type='usb' bus='0' port='${port}'/>` : ""}</sound>`;
const HUB = (port = "") => `<hub type='usb'>${port ? `<address type='usb' bus='0' port='${port}'/>` : ""}</hub>`;
const HOST = (port = "") =>
  `<hostdev mode='subsystem' type='usb'><source><address bus='1' device='2'/></source>${port ? `<address type='usb' bus='0' port='${port}'/>` : ""}</hostdev>`;

/** `bus:port` of every USB device on the command line. */
const usbPorts = (d: DomainDef) =>
  values(argv(d), "-device")
    .map((v) => JSON.parse(v) as Record<string, unknown>)
    .filter((p) => typeof p.port === "string" && /^usb/.test(String(p.bus)))
    .map((p) => `${String(p.bus)}:${String(p.port)}`);

describe("QEMU command line: one USB port, one device, across the device families", () => {
  for (const [name, devices] of [
    ["a USB disk and a USB sound card", USB_DISK() + SOUND()],
    ["a USB disk and a hub", USB_DISK() + HUB()],
    ["a USB sound card and a USB host device", SOUND() + HOST()],
  ] as const)
    it(`${name}: distinct ports, or refused at preview with a fix`, () => {
      const r = refusalOrAccepted(doc(devices));
      if (r === "accepted") {
        const ports = usbPorts(doc(devices));
        expect(new Set(ports).size, ports.join(" ")).to.equal(ports.length);
      } else {
        expect(r.message).to.contain("USB port");
        expect(r.fix).to.contain("<address type='usb' bus='0' port=");
      }
    });

  it("written ports are built as written", () => {
    expect(usbPorts(doc(USB_DISK("1") + SOUND("2") + HUB("3") + HOST("4")))).to.have.members([
      "usb.0:1",
      "usb.0:2",
      "usb.0:3",
      "usb.0:4",
    ]);
  });
});

describe("QEMU command line: an xHCI controller's written ports bound the USB layout", () => {
  // <controller type='usb' model='qemu-xhci' ports='N'> is built as p2=N,p3=N (storage.ts); the USB
  // layout (hostdev-net.ts usbRootPorts, input-video.ts usbInputLayout) took 15 root ports whatever
  // N, so a third tablet went to port 3, which the guest's USB 2 root hub does not have
  it("three tablets on a 2-port qemu-xhci: on its 2 root ports and a hub, as libvirt lays them out", () => {
    const d = DomainDef.parse(
      `<domain type='qemu'><name>d</name><uuid>11111111-2222-3333-4444-555555555555</uuid><memory unit='MiB'>64</memory>` +
        `<os><type arch='x86_64' machine='pc'>hvm</type></os><devices><controller type='usb' model='qemu-xhci' ports='2'/>` +
        `<input type='tablet' bus='usb'/><input type='tablet' bus='usb'/><input type='tablet' bus='usb'/>` +
        `<memballoon model='none'/></devices></domain>`,
    );
    const ports = usbPorts(d);
    expect(
      ports.every((p) => Number(p.split(":")[1]!.split(".")[0]) <= 2),
      ports.join(" "),
    ).to.equal(true);
    expect(new Set(ports).size).to.equal(ports.length);
  });
});

describe("QEMU command line: USB inputs on the qemu-xhci libvirt adds to q35", () => {
  // buildInputs took a definition without a USB controller for the PIIX3 UHCI's 2 ports, also on
  // q35, where libvirt (and buildControllers) adds a qemu-xhci: a third tablet was refused
  it("three tablets on a q35 without a USB controller are built, one port each", () => {
    const d = DomainDef.parse(
      `<domain type='qemu'><name>d</name><uuid>11111111-2222-3333-4444-555555555555</uuid><memory unit='MiB'>64</memory>` +
        `<os><type arch='x86_64' machine='q35'>hvm</type></os><devices>` +
        `<input type='tablet' bus='usb'/><input type='tablet' bus='usb'/><input type='tablet' bus='usb'/>` +
        `</devices></domain>`,
    );
    expect(refusalOrAccepted(d)).to.equal("accepted");
    expect(usbPorts(d)).to.deep.equal(["usb.0:1", "usb.0:2", "usb.0:3"]);
  });
});
