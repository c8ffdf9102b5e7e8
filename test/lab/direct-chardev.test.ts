/**
 * Character devices with the QEMU-direct backend and real QEMU (the host's 7.2 and the lab
 * chroot's 11.x), no libvirt: the guest agent's unix channel written without a path listens in
 * the domain's state directory (`channel/`) on virtio-serial port 1, a TCP console is serial 0
 * listening on its port, and a channel with a virtio-serial address is on that port of the
 * controller libvirt would add (QMP query-chardev, qom-list, qom-get); a QEMU killed leaves its
 * socket, which removing the domain takes with the domain's directory.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { qmpOnce } from "../../provider/backends/qemu/qmp";
import * as impl from "../../provider/dynamic/impl";
import { checkAndCreate } from "../support/domains";
import { directQemuLabel, makeDirectState, removeDirectState } from "../support/lab";

/** A TCP port nothing listens on now (the kernel's pick, released at once). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

/** Whether a process runs (a zombie does not). */
function alive(pid: number): boolean {
  try {
    return !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

for (const which of ["host", "new"] as const) {
  describe(`QEMU-direct character devices, QEMU ${directQemuLabel(which)}`, function () {
    this.timeout(120000);
    let uri: string;
    let state: string;
    before(() => {
      ({ uri, state } = makeDirectState(which, "chardev"));
    });
    after(() => removeDirectState(uri, state));

    it("a guest agent channel without a path, a TCP console, a channel on a virtio-serial address", async () => {
      const port = await freePort();
      const xml = `<domain type='qemu'><name>chardev</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
        <console type='tcp'><source mode='bind' host='127.0.0.1' service='${port}'/><protocol type='telnet'/><target type='serial' port='0'/></console>
        <channel type='unix'><source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
        <channel type='pty'><target type='virtio' name='org.example.port'/><address type='virtio-serial' controller='1' bus='0' port='5'/></channel>
        </devices></domain>`;
      const a = await checkAndCreate({ name: "chardev", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      expect(a.outs.state).to.equal("running");
      const qmp = path.join(state, "chardev", "qmp.sock");
      const agent = path.join(state, "chardev", "channel", "org.qemu.guest_agent.0");
      // the guest agent's socket: made by QEMU in the domain's directory, where libvirt's daemon makes its own
      expect(fs.statSync(agent).isSocket()).to.equal(true);
      // QEMU writes a listening socket as "disconnected:unix:PATH,server=on" until a client connects
      const chardevs = (await qmpOnce(qmp, "query-chardev")) as { label: string; filename: string }[];
      const byLabel = new Map(chardevs.map((c) => [c.label, c.filename]));
      expect(byLabel.get("charchannel0")).to.match(
        new RegExp(`unix:${agent.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")},server=on`),
      );
      expect(byLabel.get("charserial0")).to.match(new RegExp(`telnet:127\\.0\\.0\\.1:${port},server=on`));
      expect(byLabel.get("charchannel1")).to.match(/^pty:/);
      // the TCP console listens
      await new Promise<void>((resolve, reject) => {
        const c = net.connect(port, "127.0.0.1", () => (c.destroy(), resolve()));
        c.once("error", reject);
      });
      const peripherals = ((await qmpOnce(qmp, "qom-list", { path: "/machine/peripheral" })) as { name: string }[]).map(
        (x) => x.name,
      );
      expect(peripherals).to.include.members(["serial0", "virtio-serial0", "virtio-serial1", "channel0", "channel1"]);
      const get = (p: string, property: string) =>
        qmpOnce(qmp, "qom-get", { path: `/machine/peripheral/${p}`, property });
      expect(await get("channel0", "name")).to.equal("org.qemu.guest_agent.0");
      expect(await get("channel0", "nr")).to.equal(1);
      expect(await get("channel0", "chardev")).to.equal("charchannel0");
      expect(await get("channel1", "name")).to.equal("org.example.port");
      expect(await get("channel1", "nr")).to.equal(5);
      // channel1 is on the controller libvirt adds for its address (virtio-serial1)
      const bus = (await qmpOnce(qmp, "qom-get", {
        path: "/machine/peripheral/channel1",
        property: "parent_bus",
      })) as string;
      expect(bus).to.match(/virtio-serial1/);
      await impl.remove("chardev", a.outs);
      // nothing of it is left: the socket QEMU made goes with the domain
      expect(fs.existsSync(agent)).to.equal(false);
      expect(fs.existsSync(path.join(state, "chardev"))).to.equal(false);
    });

    it("a QEMU killed with its guest agent socket: remove leaves nothing (the socket and channel/ go)", async () => {
      const xml = `<domain type='qemu'><name>killed</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
        <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
        </devices></domain>`;
      const a = await checkAndCreate({ name: "killed", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      const dir = path.join(state, "killed");
      const pid = Number(fs.readFileSync(path.join(dir, "qemu.pid"), "utf8"));
      process.kill(pid, "SIGKILL");
      const deadline = Date.now() + 10000;
      while (alive(pid)) {
        if (Date.now() > deadline) throw new Error(`QEMU ${pid} still runs 10 s after SIGKILL`);
        await new Promise((r) => setTimeout(r, 50));
      }
      // a killed QEMU leaves its listening socket behind
      expect(fs.statSync(path.join(dir, "channel", "org.qemu.guest_agent.0")).isSocket()).to.equal(true);
      await impl.remove("killed", a.outs);
      expect(fs.existsSync(dir)).to.equal(false);
    });
  });
}
