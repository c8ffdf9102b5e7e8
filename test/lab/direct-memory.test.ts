/**
 * Memory devices with real QEMU and the QEMU-direct backend (issue 12, r3-D), on the host's
 * QEMU 7.2 and the lab chroot's QEMU 11.x: a guest NUMA cell, `<maxMemory slots>`, a pc-dimm, an
 * nvdimm (a file in the domain's directory) and a virtio-mem device at its PCI address; QEMU's
 * own view over QMP (query-memory-devices, query-memdev) is what the builder asked for. Huge pages
 * need hugetlbfs pages this host does not reserve (HugePages_Total 0, no hugetlbfs mount): a
 * device asking for them is refused at check, naming the page size and the fix.
 */
import { expect } from "chai";
import * as path from "node:path";
import { hostMemoryInfo } from "../../provider/backends/qemu/direct";
import { qmpOnce } from "../../provider/backends/qemu/qmp";
import * as impl from "../../provider/dynamic/impl";
import { checkAndCreate } from "../support/domains";
import { directQemuLabel, makeDirectState, removeDirectState } from "../support/lab";

const MiB = 1048576;

/**
 * A guest with ACPI (QEMU plugs DIMMs through it: without it QEMU refuses them at start, "memory
 * hotplug is not enabled", as with libvirt), one NUMA cell of 128 MiB, 4 slots up to 1 GiB, and `devices`.
 */
const domainXml = (name: string, devices: string) =>
  `<domain type='qemu'><name>${name}</name><maxMemory slots='4' unit='MiB'>1024</maxMemory>
    <memory unit='MiB'>512</memory><vcpu>1</vcpu>
    <os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features>
    <cpu><numa><cell id='0' cpus='0' memory='128' unit='MiB'/></numa></cpu>
    <devices>${devices}</devices></domain>`;

for (const which of ["host", "new"] as const) {
  describe(`QEMU-direct memory devices, QEMU ${directQemuLabel(which)}`, function () {
    this.timeout(120000);
    let uri: string;
    let state: string;
    before(() => {
      ({ uri, state } = makeDirectState(which, "memdev"));
    });
    after(() => removeDirectState(uri, state));

    it("a pc-dimm, an nvdimm and a virtio-mem device: QEMU has each in its slot or at its address, on its backend", async () => {
      const nvdimmFile = path.join(state, "nvdimm0.img");
      const devices =
        "<memory model='dimm'><target><size unit='MiB'>128</size><node>0</node></target></memory>" +
        `<memory model='nvdimm' access='shared'><source><path>${nvdimmFile}</path></source>` +
        "<target><size unit='MiB'>128</size><node>0</node><label><size unit='KiB'>128</size></label></target>" +
        "<address type='dimm' slot='2'/></memory>" +
        "<memory model='virtio-mem'><target><size unit='MiB'>128</size><node>0</node>" +
        "<block unit='KiB'>2048</block><requested unit='MiB'>64</requested></target>" +
        "<address type='pci' domain='0x0000' bus='0x00' slot='0x07' function='0x0'/></memory>";
      const a = await checkAndCreate({
        name: "memdevs",
        xml: domainXml("memdevs", devices),
        connection: { uri },
        shutdownTimeoutSeconds: 0,
      });
      const sock = path.join(state, "memdevs", "qmp.sock");
      const devs = (await qmpOnce(sock, "query-memory-devices")) as { type: string; data: Record<string, unknown> }[];
      const view = devs.map((d) => ({
        type: d.type,
        id: d.data.id,
        memdev: d.data.memdev,
        node: d.data.node,
        slot: d.data.slot,
        size: d.data.size,
        requested: d.data["requested-size"],
        block: d.data["block-size"],
        max: d.data["max-size"],
      }));
      expect(view).to.deep.equal([
        {
          type: "dimm",
          id: "dimm0",
          memdev: "/objects/memdimm0",
          node: 0,
          slot: 0,
          size: 128 * MiB,
          requested: undefined,
          block: undefined,
          max: undefined,
        },
        {
          type: "nvdimm",
          id: "nvdimm2",
          memdev: "/objects/memnvdimm2",
          node: 0,
          slot: 2,
          // QEMU keeps the 128 KiB label at the end of the backing file: the guest sees the rest
          size: 128 * MiB - 128 * 1024,
          requested: undefined,
          block: undefined,
          max: undefined,
        },
        {
          type: "virtio-mem",
          id: "virtiomem0",
          memdev: "/objects/memvirtiomem0",
          node: 0,
          slot: undefined,
          size: 0, // no guest driver plugs any block
          requested: 64 * MiB,
          block: 2 * MiB,
          max: 128 * MiB,
        },
      ]);
      const memdev = (await qmpOnce(sock, "query-memdev")) as Record<string, unknown>[];
      const byId = new Map(memdev.map((m) => [m.id, m]));
      expect(byId.get("memdimm0")).to.deep.include({ size: 128 * MiB, prealloc: false });
      expect(byId.get("memnvdimm2")).to.deep.include({ size: 128 * MiB, share: true, prealloc: true });
      expect(byId.get("memvirtiomem0")).to.deep.include({ size: 128 * MiB });
      expect(byId.get("ram-node0")).to.deep.include({ size: 128 * MiB });
      // the virtio-mem device is on the PCI slot written
      const pci = (await qmpOnce(sock, "query-pci")) as { devices: { slot: number; qdev_id: string }[] }[];
      expect(pci[0]!.devices.find((d) => d.qdev_id === "virtiomem0")?.slot).to.equal(7);
      // -m and -numa agree: the guest's base memory is the NUMA cell
      const summary = (await qmpOnce(sock, "query-memory-size-summary")) as { "base-memory": number };
      expect(summary["base-memory"]).to.equal(128 * MiB);
      await impl.remove("memdevs", a.outs);
    });

    it("a dimm asking for huge pages this host has no hugetlbfs mount for is refused at check, naming the size and the fix", async () => {
      const host = hostMemoryInfo();
      const xml = domainXml(
        "hugedimm",
        "<memory model='dimm'><source><pagesize unit='KiB'>2048</pagesize></source>" +
          "<target><size unit='MiB'>128</size><node>0</node></target></memory>",
      );
      const c = await impl.check({}, { name: "hugedimm", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      if (host.hugetlbfs?.mounts.some((m) => m.sizeKiB === 2048)) {
        // a host with a 2 MiB hugetlbfs mount: accepted (QEMU then needs free pages there)
        expect(c.failures).to.deep.equal([]);
        return;
      }
      const text = JSON.stringify(c.failures);
      expect(text).to.contain("/domain/devices/memory[1]/source/pagesize");
      expect(text).to.contain(host.hugetlbfs ? "Unable to find any usable hugetlbfs mount for 2048 KiB" : "hugetlbfs");
      expect(text).to.contain("mount hugetlbfs");
    });
  });
}
