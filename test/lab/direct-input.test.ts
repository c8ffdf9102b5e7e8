/**
 * Virtio inputs, video defaults, ramfb, a graphics socket without a path and the USB redirection
 * filter with the QEMU-direct backend and real QEMU (the host's 7.2 and the lab chroot's 11.x), no
 * libvirt: QEMU has the devices the builder wrote (QMP qom-list / qom-get), on the PCI slots libvirt
 * would give them (query-pci); a SPICE autoport listens on a free port the backend found (7.2 only:
 * the lab's QEMU 11 has no SPICE module). evdev and passthrough inputs need a host /dev/input/eventN and a
 * vhost-user GPU a host process: checked against the corpus argv only (test/unit/argv-input-video.test.ts).
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { freeDisplayPorts } from "../../provider/backends/qemu/free-ports";
import { qmpOnce } from "../../provider/backends/qemu/qmp";
import * as impl from "../../provider/dynamic/impl";
import { checkAndCreate } from "../support/domains";
import { directQemuLabel, makeDirectState, removeDirectState } from "../support/lab";

interface PciDevice {
  slot: number;
  function: number;
  qdev_id: string;
}

for (const which of ["host", "new"] as const) {
  describe(`QEMU-direct inputs and video (virtio inputs, default video, ramfb, redirfilter), QEMU ${directQemuLabel(which)}`, function () {
    this.timeout(120000);
    let uri: string;
    let state: string;
    before(() => {
      ({ uri, state } = makeDirectState(which, "input"));
    });
    after(() => removeDirectState(uri, state));

    it("virtio tablet and keyboard, the default video, a filtered USB redirection, VNC on a socket without a path", async () => {
      const redir = path.join(state, "redir.sock");
      const xml = `<domain type='qemu'><name>inp</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
        <input type='tablet' bus='virtio'/>
        <input type='keyboard' bus='virtio'><address type='pci' domain='0x0000' bus='0x00' slot='0x0a' function='0x0'/></input>
        <input type='mouse' bus='ps2'/><input type='keyboard' bus='ps2'/>
        <graphics type='vnc'><listen type='socket'/></graphics>
        <video/>
        <redirdev bus='usb' type='unix'><source mode='bind' path='${redir}'/></redirdev>
        <redirfilter><usbdev class='0x08' vendor='0x15E1' product='0x2007' version='1.10' allow='yes'/><usbdev allow='no'/></redirfilter>
        <memballoon model='none'/>
        </devices></domain>`;
      const a = await checkAndCreate({ name: "inp", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      expect(a.outs.state).to.equal("running");
      const qmp = path.join(state, "inp", "qmp.sock");
      const get = (p: string, property: string) => qmpOnce(qmp, "qom-get", { path: p, property });
      const peripherals = ((await qmpOnce(qmp, "qom-list", { path: "/machine/peripheral" })) as { name: string }[]).map(
        (x) => x.name,
      );
      expect(peripherals).to.include.members(["input0", "input1", "video0", "redir0"]);
      expect(await get("/machine/peripheral/input0", "type")).to.equal("virtio-tablet-pci");
      expect(await get("/machine/peripheral/input1", "type")).to.equal("virtio-keyboard-pci");
      expect(await get("/machine/peripheral/video0", "type")).to.equal("cirrus-vga");
      expect(await get("/machine/peripheral/redir0", "filter")).to.equal("0x08:0x15E1:0x2007:0x0110:1|-1:-1:-1:-1:0");
      // libvirt's slots: the primary video 2, the virtio tablet the next free one (3), the keyboard as written (0xa)
      const [bus] = (await qmpOnce(qmp, "query-pci")) as { devices: PciDevice[] }[];
      const slotOf = (id: string) => bus?.devices.find((d) => d.qdev_id === id)?.slot;
      expect([slotOf("video0"), slotOf("input0"), slotOf("input1")]).to.deep.equal([2, 3, 10]);
      // <listen type='socket'/>: QEMU listens on vnc.sock in the domain's run directory
      const vnc = (await qmpOnce(qmp, "query-vnc")) as { enabled: boolean; family?: string };
      expect(vnc).to.include({ enabled: true, family: "unix" });
      expect(fs.statSync(path.join(state, "inp", "vnc.sock")).isSocket()).to.equal(true);
      await impl.remove("inp", a.outs);
    });

    // the lab's QEMU 11.x has no loadable SPICE module (qemu-system-modules-spice): 7.2 only
    if (which === "host")
      it("SPICE autoport: the backend finds a free port from 5900 up and QEMU listens there", async () => {
        const busy = net.createServer();
        const [taken] = await freeDisplayPorts(1);
        await new Promise<void>((r) => busy.listen({ port: taken, exclusive: true }, r));
        try {
          const xml = `<domain type='qemu'><name>spa</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
            <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
            <graphics type='spice' autoport='yes'><listen type='address' address='127.0.0.1'/></graphics>
            <video><model type='qxl'/></video><memballoon model='none'/></devices></domain>`;
          const a = await checkAndCreate({ name: "spa", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
          const qmp = path.join(state, "spa", "qmp.sock");
          const spice = (await qmpOnce(qmp, "query-spice")) as { enabled: boolean; port?: number; host?: string };
          expect(spice).to.include({ enabled: true, host: "127.0.0.1" });
          expect(spice.port).to.be.greaterThan(taken! - 1);
          expect(spice.port).to.not.equal(taken);
          await impl.remove("spa", a.outs);
        } finally {
          await new Promise((r) => busy.close(r));
        }
      });

    it("more USB inputs than root ports: the hub libvirt adds, the inputs behind it", async () => {
      const xml = `<domain type='qemu'><name>hub</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
        <controller type='usb' index='0'/>
        <input type='tablet' bus='usb'/><input type='mouse' bus='usb'/><input type='keyboard' bus='usb'/>
        <memballoon model='none'/></devices></domain>`;
      const a = await checkAndCreate({ name: "hub", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      const qmp = path.join(state, "hub", "qmp.sock");
      const get = (id: string, property: string) =>
        qmpOnce(qmp, "qom-get", { path: `/machine/peripheral/${id}`, property });
      expect(await get("hub0", "type")).to.equal("usb-hub");
      expect([await get("hub0", "port"), await get("input0", "port"), await get("input1", "port")]).to.deep.equal([
        "1",
        "2",
        "1.1",
      ]);
      expect(await get("input2", "port")).to.equal("1.2");
      await impl.remove("hub", a.outs);
    });

    it("a ramfb display: a sysbus device, no PCI slot", async () => {
      const xml = `<domain type='qemu'><name>rfb</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
        <graphics type='vnc'><listen type='none'/></graphics>
        <video><model type='ramfb'/></video><memballoon model='none'/>
        </devices></domain>`;
      const a = await checkAndCreate({ name: "rfb", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      expect(a.outs.state).to.equal("running");
      const qmp = path.join(state, "rfb", "qmp.sock");
      expect(await qmpOnce(qmp, "qom-get", { path: "/machine/peripheral/video0", property: "type" })).to.equal("ramfb");
      const [bus] = (await qmpOnce(qmp, "query-pci")) as { devices: PciDevice[] }[];
      expect(bus?.devices.map((d) => d.qdev_id)).to.not.include("video0");
      await impl.remove("rfb", a.outs);
    });
  });
}
