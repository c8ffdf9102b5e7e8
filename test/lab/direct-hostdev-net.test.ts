/**
 * The hostdev-net family of the QEMU-direct backend with real QEMU (the host's 7.2 and the lab
 * chroot's 11.x), no libvirt (issue 12): a domain with a virtio NIC and its <driver> options, a
 * UDP socket NIC, a USB hub, a passthrough smartcard, an ISA panic device and a USB redirection, and a q35 domain
 * with an Intel IOMMU, started by the backend; QMP says QEMU has each device with the properties
 * the definition asked for. Host devices (vfio-pci, usb-host, vhost-scsi) and vsock need hardware
 * and host devices this lab does not have (no VFIO device, no /dev/vhost-vsock): they are checked
 * against libvirt's corpus command lines only (test/corpus, test/unit/argv-hostdev-net.test.ts).
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import { qmpOnce } from "../../provider/backends/qemu/qmp";
import * as impl from "../../provider/dynamic/impl";
import { checkAndCreate } from "../support/domains";
import { directQemuLabel, makeDirectState, removeDirectState } from "../support/lab";

const H = "6e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b";

for (const which of ["host", "new"] as const) {
  describe(`QEMU-direct hostdev-net devices, QEMU ${directQemuLabel(which)}`, function () {
    this.timeout(120000);
    let uri: string;
    let state: string;
    before(() => {
      ({ uri, state } = makeDirectState(which, "hn"));
    });
    after(() => removeDirectState(uri, state));

    const qmp = (name: string, command: string, args?: Record<string, unknown>) =>
      qmpOnce(path.join(state, name, "qmp.sock"), command, args);
    const qomGet = (name: string, p: string, property: string) => qmp(name, "qom-get", { path: p, property });
    const hmp = async (name: string, line: string) =>
      (await qmp(name, "human-monitor-command", { "command-line": line })) as string;

    it("virtio-net <driver> options and <rom>, a UDP socket NIC, a USB hub, a passthrough smartcard, an ISA panic, a USB redirection", async () => {
      const port = 40000 + Math.floor(Math.random() * 20000);
      const card = path.join(state, "card.sock");
      const redir = path.join(state, "redir.sock");
      const xml = `<domain type='qemu'><name>hn</name><hwuuid>${H}</hwuuid><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <os><type arch='x86_64' machine='pc'>hvm</type></os>
        <devices>
          <controller type='usb' index='0' model='qemu-xhci'/>
          <interface type='user'>
            <mac address='52:54:00:aa:00:01'/>
            <model type='virtio'/>
            <driver txmode='iothread' rx_queue_size='512'>
              <host csum='off' mrg_rxbuf='off'/>
              <guest tso4='off'/>
            </driver>
            <rom enabled='no'/>
            <link state='up'/>
          </interface>
          <interface type='udp'>
            <mac address='52:54:00:aa:00:02'/>
            <source address='127.0.0.1' port='${port}'><local address='127.0.0.1' port='${port + 1}'/></source>
            <model type='e1000'/>
          </interface>
          <hub type='usb'/>
          <smartcard mode='passthrough' type='unix'><source mode='bind' path='${card}'/></smartcard>
          <panic model='isa'><address type='isa' iobase='0x505'/></panic>
          <redirdev bus='usb' type='unix'><source mode='bind' path='${redir}'/></redirdev>
        </devices></domain>`;
      const a = await checkAndCreate({ name: "hn", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      expect(a.outs.state).to.equal("running");
      const net0 = "/machine/peripheral/net0";
      expect(await qomGet("hn", net0, "type")).to.equal("virtio-net-pci");
      expect(await qomGet("hn", net0, "rx_queue_size")).to.equal(512);
      expect(await qomGet("hn", net0, "tx")).to.equal("bh");
      expect(await qomGet("hn", net0, "csum")).to.equal(false);
      expect(await qomGet("hn", net0, "mrg_rxbuf")).to.equal(false);
      expect(await qomGet("hn", net0, "guest_tso4")).to.equal(false);
      expect(await qomGet("hn", net0, "romfile")).to.equal("");
      expect(await qomGet("hn", "/machine/peripheral/net1", "type")).to.equal("e1000");
      const network = await hmp("hn", "info network");
      expect(network).to.match(/hostnet1:.*socket/);
      expect(network).to.contain(`127.0.0.1:${port}`);
      expect(await qomGet("hn", "/machine/peripheral/hub0", "type")).to.equal("usb-hub");
      expect(await qomGet("hn", "/machine/peripheral/ccid0", "type")).to.equal("usb-ccid");
      expect(await qomGet("hn", "/machine/peripheral/smartcard0", "type")).to.equal("ccid-card-passthru");
      expect(fs.existsSync(card), "QEMU listens on the smartcard socket").to.equal(true);
      expect(await qomGet("hn", "/machine/peripheral/redir0", "type")).to.equal("usb-redir");
      expect(fs.existsSync(redir), "QEMU listens on the USB redirection socket").to.equal(true);
      const qtree = await hmp("hn", "info qtree");
      expect(qtree).to.match(/dev: pvpanic, id ""\s+ioport = 1285 \(0x505\)/);
      await impl.remove("hn", a.outs);
    });

    it("<iommu model='intel'> on q35 is QEMU's intel-iommu", async () => {
      const xml = `<domain type='qemu'><name>iommu</name><hwuuid>${H}</hwuuid><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <os><type arch='x86_64' machine='q35'>hvm</type></os>
        <devices><iommu model='intel'/></devices></domain>`;
      const a = await checkAndCreate({ name: "iommu", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      expect(a.outs.state).to.equal("running");
      expect(await qomGet("iommu", "/machine/peripheral/iommu0", "type")).to.equal("intel-iommu");
      await impl.remove("iommu", a.outs);
    });
  });
}
