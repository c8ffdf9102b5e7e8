/**
 * The PCI bus tree with the QEMU-direct backend and real QEMU (the host's 7.2 and the lab
 * chroot's 11.x), no libvirt (provider/qemu/controllers.ts): QEMU builds the tree the builder
 * laid out, as QMP query-pci reports it — on q35 a PCIe switch behind a root port, a
 * pcie-to-pci-bridge on a downstream port, devices behind the bridge (written and laid out),
 * the xHCI controller on the root port libvirt would add; on the PC machine a pci-bridge libvirt
 * adds for a written address, and a pci-expander-bus on its guest NUMA node.
 */
import { expect } from "chai";
import * as path from "node:path";
import { qmpOnce } from "../../provider/backends/qemu/qmp";
import * as impl from "../../provider/dynamic/impl";
import { checkAndCreate } from "../support/domains";
import { directQemuLabel, makeDirectState, removeDirectState } from "../support/lab";

/** One device of QMP query-pci (the fields used here). */
interface QueryPciDevice {
  bus: number;
  slot: number;
  function: number;
  qdev_id: string;
  pci_bridge?: { bus: { number: number }; devices?: QueryPciDevice[] };
}

/** QMP query-pci: the root buses and their devices. */
type QueryPci = { bus: number; devices: QueryPciDevice[] }[];

/** Where QEMU put each device with an id: `PARENT:SLOT.FN`, PARENT the id of the bridge above it, or `root` (bus 0) / `rootN` (another root bus, an expander's). */
function placements(buses: QueryPci): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (devs: QueryPciDevice[], parent: string) => {
    for (const d of devs) {
      if (d.qdev_id) out[d.qdev_id] = `${parent}:${d.slot}.${d.function}`;
      if (d.pci_bridge?.devices) walk(d.pci_bridge.devices, d.qdev_id || `bridge${d.pci_bridge.bus.number}`);
    }
  };
  for (const b of buses) walk(b.devices, b.bus === 0 ? "root" : `root${b.bus}`);
  return out;
}

/**
 * QMP query-pci once the firmware has numbered the buses behind the bridges (until then QEMU lists
 * no device behind them): polled until every id of `ids` is listed, for at most 30 s.
 */
async function queryPci(qmp: string, ids: readonly string[]): Promise<QueryPci> {
  const deadline = Date.now() + 30000;
  for (;;) {
    const buses = (await qmpOnce(qmp, "query-pci")) as QueryPci;
    const at = placements(buses);
    const missing = ids.filter((id) => !(id in at));
    if (missing.length === 0) return buses;
    if (Date.now() > deadline)
      throw new Error(
        `query-pci still lists no ${missing.join(", ")} after 30 s (firmware bus numbering): ${JSON.stringify(at)}`,
      );
    await new Promise((r) => setTimeout(r, 250));
  }
}

for (const which of ["host", "new"] as const) {
  describe(`QEMU-direct PCI bus tree, QEMU ${directQemuLabel(which)}`, function () {
    this.timeout(120000);
    let uri: string;
    let state: string;
    before(() => {
      ({ uri, state } = makeDirectState(which, "pci"));
    });
    after(() => removeDirectState(uri, state));

    it("q35: a PCIe switch on a root port, a pcie-to-pci-bridge on a downstream port, devices behind it where the layout put them", async () => {
      const xml = `<domain type='qemu'><name>tree</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <os><type arch='x86_64' machine='q35'>hvm</type></os><devices>
        <controller type='pci' index='0' model='pcie-root'/>
        <controller type='pci' index='1' model='pcie-root-port'/>
        <controller type='pci' index='2' model='pcie-switch-upstream-port'/>
        <controller type='pci' index='3' model='pcie-switch-downstream-port'/>
        <controller type='pci' index='4' model='pcie-switch-downstream-port'><target hotplug='off'/></controller>
        <controller type='pci' index='5' model='pcie-root-port'/>
        <controller type='pci' index='6' model='pcie-to-pci-bridge'/>
        <controller type='usb' index='0' model='qemu-xhci'/>
        <rng model='virtio'><backend model='random'>/dev/urandom</backend>
          <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/></rng>
        <watchdog model='i6300esb'/>
        <memballoon model='virtio'><address type='pci' domain='0x0000' bus='0x06' slot='0x03' function='0x0'/></memballoon>
        </devices></domain>`;
      const a = await checkAndCreate({ name: "tree", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      expect(a.outs.state).to.equal("running");
      const qmp = path.join(state, "tree", "qmp.sock");
      const at = placements(await queryPci(qmp, ["usb", "rng0", "watchdog0", "balloon0"]));
      expect(at).to.include({
        "pci.1": "root:1.0",
        "pci.2": "pci.1:0.0", // the switch's upstream port
        "pci.3": "pci.2:0.0", // its downstream ports
        "pci.4": "pci.2:1.0",
        "pci.5": "root:1.1",
        "pci.6": "pci.3:0.0", // the pcie-to-pci-bridge on the first free downstream port
        usb: "pci.5:0.0",
        rng0: "pci.4:0.0", // written on the downstream port without hotplug
        watchdog0: "pci.6:1.0", // laid out behind the bridge (slot 0 is its SHPC)
        balloon0: "pci.6:3.0", // written behind the bridge
      });
      expect(await qmpOnce(qmp, "qom-get", { path: "/machine/peripheral/pci.4", property: "hotplug" })).to.equal(false);
      await impl.remove("tree", a.outs);
    });

    it("the PC machine: the pci-bridge libvirt adds for a written address, a pci-expander-bus on its NUMA node", async () => {
      const xml = `<domain type='qemu'><name>pcbr</name><memory unit='MiB'>128</memory><vcpu>2</vcpu>
        <cpu><numa><cell id='0' cpus='0' memory='64' unit='MiB'/><cell id='1' cpus='1' memory='64' unit='MiB'/></numa></cpu>
        <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
        <controller type='pci' index='0' model='pci-root'/>
        <controller type='pci' index='1' model='pci-expander-bus'><target busNr='250'><node>1</node></target></controller>
        <rng model='virtio'><backend model='random'>/dev/urandom</backend>
          <address type='pci' domain='0x0000' bus='0x01' slot='0x02' function='0x0'/></rng>
        <memballoon model='virtio'><address type='pci' domain='0x0000' bus='0x02' slot='0x05' function='0x0'/></memballoon>
        </devices></domain>`;
      const a = await checkAndCreate({ name: "pcbr", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      const qmp = path.join(state, "pcbr", "qmp.sock");
      const buses = await queryPci(qmp, ["rng0", "balloon0"]);
      const at = placements(buses);
      expect(at).to.include({
        "pci.1": "root:2.0", // the pxb on pci.0
        "pci.2": "root:3.0", // the pci-bridge added for the balloon's bus 2
        balloon0: "pci.2:5.0",
      });
      // the pxb opens a root bus of its own, numbered busNr; the rng sits on it (behind its internal bridge)
      expect(buses.map((b) => b.bus)).to.include(250);
      expect(Object.entries(at).find(([id]) => id === "rng0")?.[1]).to.match(/:2\.0$/);
      expect(await qmpOnce(qmp, "qom-get", { path: "/machine/peripheral/pci.1", property: "numa_node" })).to.equal(1);
      await impl.remove("pcbr", a.outs);
    });
  });
}
