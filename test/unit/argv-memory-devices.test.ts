/**
 * `<devices><memory>` on the QEMU command line as libvirt writes them (issue 12, r3-D): dimm,
 * nvdimm, virtio-mem (virtio-pmem: argv-seclabel-pmem.test.ts), their backends (huge pages,
 * host NUMA binding, access, discard) and libvirt's refusals (NUMA cells, slots, sizes,
 * overlapping addresses, hotplug space). The expected arguments are libvirt's own, from its test
 * corpus (tests/qemuxmlconfdata memory-hotplug-*.args, pages-dimm-discard).
 */
import { expect } from "chai";
import { DomainDef } from "../../provider/xml/domain";
import { buildQemuArgv } from "../../provider/qemu/argv";
import { HostMemoryInfo } from "../../provider/qemu/memory-cpu";
import { DomainXmlError } from "../../provider/xml/errors";
import { values } from "../support/argv";

const U = "c7a5fdbd-edaf-9455-926a-d65c16db1809";
/** libvirt's fake test host: NUMA nodes 0-3, hugetlbfs for 2 MiB (default) and 1 GiB pages. */
const HOST: HostMemoryInfo = {
  hostNumaNodes: [0, 1, 2, 3],
  hugetlbfs: {
    mounts: [
      { sizeKiB: 2048, path: "/dev/hugepages2M" },
      { sizeKiB: 1048576, path: "/dev/hugepages1G" },
    ],
    defaultSizeKiB: 2048,
  },
};
const MAX = "<maxMemory slots='16' unit='KiB'>1099511627776</maxMemory>";
const NUMA = "<cpu><numa><cell id='0' cpus='0-1' memory='219136' unit='KiB'/></numa></cpu>";

const doc = (devices: string, top = MAX + NUMA) =>
  DomainDef.parse(
    `<domain type='qemu'><name>QEMUGuest1</name><uuid>${U}</uuid>${top}<memory unit='KiB'>1267710</memory>` +
      `<vcpu>2</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices>${devices}</devices></domain>`,
  );
const build = (d: DomainDef, host: HostMemoryInfo = HOST) => buildQemuArgv(d, host).argv;
function refusal(d: DomainDef, host: HostMemoryInfo = HOST): DomainXmlError {
  try {
    buildQemuArgv(d, host);
  } catch (e) {
    if (DomainXmlError.isInstance(e)) return e;
    throw e;
  }
  throw new Error("accepted");
}

const dimm = (target = "<size unit='KiB'>523264</size><node>0</node>", rest = "", attrs = "") =>
  `<memory model='dimm'${attrs}>${rest}<target>${target}</target></memory>`;
const nvdimm = (source = "<path>/tmp/nvdimm</path>", target = "", attrs = "", slot = "0") =>
  `<memory model='nvdimm'${attrs}><source>${source}</source><target><size unit='KiB'>523264</size><node>0</node>${target}</target>` +
  `<address type='dimm' slot='${slot}'/></memory>`;
const virtioMem = (source = "", target = "", pci = "0x02", tattrs = "") =>
  `<memory model='virtio-mem'>${source}<target${tattrs}><size unit='KiB'>1048576</size><node>0</node><block unit='KiB'>2048</block>` +
  `<requested unit='KiB'>524288</requested>${target}</target>` +
  `<address type='pci' domain='0x0000' bus='0x00' slot='${pci}' function='0x0'/></memory>`;
const HUGE = "<source><nodemask>1-3</nodemask><pagesize unit='KiB'>2048</pagesize></source>";

describe("QEMU command line: dimm memory devices", () => {
  it("a dimm is a RAM backend (size aligned to 2 MiB) and -device pc-dimm in the first free slot (memory-hotplug-dimm)", () => {
    const a = build(doc(dimm() + dimm("<size unit='KiB'>524287</size><node>0</node>", HUGE)));
    expect(values(a, "-m")).to.deep.equal(["size=219136k,slots=16,maxmem=1099511627776k"]);
    expect(values(a, "-object")).to.include.members([
      '{"qom-type":"memory-backend-ram","id":"memdimm0","size":536870912}',
      '{"qom-type":"memory-backend-file","id":"memdimm1","mem-path":"/dev/hugepages2M","prealloc":true,"size":536870912,"host-nodes":[1,2,3],"policy":"bind"}',
    ]);
    expect(values(a, "-device")).to.include.members([
      '{"driver":"pc-dimm","node":0,"memdev":"memdimm0","id":"dimm0","slot":0}',
      '{"driver":"pc-dimm","node":0,"memdev":"memdimm1","id":"dimm1","slot":1}',
    ]);
  });

  it("written slots and base addresses are kept, the alias follows the slot (memory-hotplug-dimm-addr)", () => {
    const a = build(
      doc(
        dimm("<size unit='KiB'>524287</size><node>0</node>", "", "").replace(
          "</target>",
          "</target><address type='dimm' slot='2'/>",
        ) + dimm().replace("</target>", "</target><address type='dimm' slot='0' base='0x100000000'/>"),
      ),
    );
    expect(values(a, "-device")).to.include.members([
      '{"driver":"pc-dimm","node":0,"memdev":"memdimm2","id":"dimm2","slot":2}',
      '{"driver":"pc-dimm","node":0,"memdev":"memdimm0","id":"dimm0","slot":0,"addr":4294967296}',
    ]);
  });

  it("access and discard of the device make a file backend in the RAM directory (pages-dimm-discard)", () => {
    const a = build(doc(dimm(undefined, "", " access='private' discard='yes'")));
    expect(values(a, "-object")).to.include(
      '{"qom-type":"memory-backend-file","id":"memdimm0","mem-path":"/var/lib/libvirt/qemu/ram","discard-data":true,"share":false,"size":536870912}',
    );
  });

  it("without <pagesize> the domain's huge pages for the device's node apply; <numatune> binds it", () => {
    const top =
      MAX +
      "<memoryBacking><hugepages><page size='1048576' unit='KiB' nodeset='0'/></hugepages></memoryBacking>" +
      "<numatune><memnode cellid='0' mode='preferred' nodeset='3'/></numatune>" +
      NUMA.replace("219136", "1048576");
    const a = build(doc(dimm(), top));
    expect(values(a, "-object")).to.include(
      '{"qom-type":"memory-backend-file","id":"memdimm0","mem-path":"/dev/hugepages1G","prealloc":true,"size":536870912,"host-nodes":[3],"policy":"preferred"}',
    );
  });

  it("a page size without a hugetlbfs mount, or an unknown host, is refused naming <pagesize>", () => {
    const big = "<source><pagesize unit='KiB'>16384</pagesize></source>";
    expect(refusal(doc(dimm(undefined, big))).message).to.contain(
      "Unable to find any usable hugetlbfs mount for 16384 KiB",
    );
    const e = refusal(doc(dimm(undefined, HUGE)), {});
    expect(e.path).to.equal("/domain/devices/memory[1]/source/pagesize");
    expect(e.fix).to.contain("hugetlbfs");
  });

  it("libvirt's rules: NUMA cells with <maxMemory>, <maxMemory> with a device, the node, the slots, the hotplug space", () => {
    expect(refusal(doc("", MAX)).message).to.contain("At least one numa node has to be configured");
    expect(refusal(doc(dimm(), NUMA)).path).to.equal("/domain/maxMemory");
    expect(refusal(doc(dimm("<size unit='KiB'>523264</size><node>1</node>"))).message).to.contain(
      "can't add memory backend for guest node '1' as the guest has only '1' NUMA nodes configured",
    );
    const two = MAX.replace("16", "1") + NUMA;
    expect(refusal(doc(dimm() + dimm(), two)).message).to.contain(
      "count of memory devices requiring memory slots '2' exceeds slots count '1'",
    );
    const at = (s: string) => dimm().replace("</target>", `</target><address type='dimm' slot='${s}'/>`);
    expect(refusal(doc(at("16"))).message).to.contain("memory device slot '16' exceeds slots count '16'");
    expect(refusal(doc(at("3") + at("3"))).message).to.contain("is already being used by another memory device");
    const small = "<maxMemory slots='16' unit='KiB'>524288</maxMemory>" + NUMA;
    expect(refusal(doc(dimm(), small)).message).to.contain("memory device total size exceeds hotplug space");
    expect(refusal(doc(dimm(undefined, "<source><path>/tmp/x</path></source>"))).path).to.equal(
      "/domain/devices/memory[1]/source/path",
    );
  });
});

describe("QEMU command line: nvdimm memory devices", () => {
  it("an nvdimm maps its file, preallocated, with -machine nvdimm=on (memory-hotplug-nvdimm)", () => {
    const a = build(doc(nvdimm()));
    expect(values(a, "-machine")[0]).to.contain("dump-guest-core=off,nvdimm=on");
    expect(values(a, "-object")).to.include(
      '{"qom-type":"memory-backend-file","id":"memnvdimm0","mem-path":"/tmp/nvdimm","prealloc":true,"size":536870912}',
    );
    expect(values(a, "-device")).to.include(
      '{"driver":"nvdimm","node":0,"memdev":"memnvdimm0","id":"nvdimm0","slot":0}',
    );
  });

  it("access, alignsize, pmem, label and readonly as libvirt writes them", () => {
    const a = build(
      doc(
        nvdimm(
          "<path>/tmp/nvdimm</path><alignsize unit='KiB'>2048</alignsize>",
          "<label><size unit='KiB'>128</size></label><readonly/>",
          " access='private'",
        ) + nvdimm("<path>/tmp/p</path><pmem/>", "", " access='shared'", "1"),
      ),
    );
    expect(values(a, "-object")).to.include.members([
      '{"qom-type":"memory-backend-file","id":"memnvdimm0","mem-path":"/tmp/nvdimm","share":false,"prealloc":true,"size":536870912,"align":2097152}',
      '{"qom-type":"memory-backend-file","id":"memnvdimm1","mem-path":"/tmp/p","share":true,"size":536870912,"pmem":true}',
    ]);
    expect(values(a, "-device")).to.include(
      '{"driver":"nvdimm","node":0,"label-size":131072,"unarmed":true,"memdev":"memnvdimm0","id":"nvdimm0","slot":0}',
    );
  });

  it("no path, a label under 128 KiB, or a dimm-only source are refused", () => {
    expect(refusal(doc(nvdimm(""))).message).to.contain("path is required for model 'nvdimm'");
    expect(refusal(doc(nvdimm(undefined, "<label><size unit='KiB'>64</size></label>"))).message).to.contain(
      "nvdimm label must be at least 128KiB",
    );
    expect(refusal(doc(nvdimm("<path>/x</path><nodemask>0</nodemask>"))).path).to.equal(
      "/domain/devices/memory[1]/source/nodemask",
    );
  });
});

describe("QEMU command line: virtio-mem memory devices", () => {
  it("a virtio-mem reserves nothing; block and requested sizes, node, address (memory-hotplug-virtio-mem)", () => {
    const a = build(
      doc(
        virtioMem() +
          virtioMem(HUGE, "<address base='0x150000000'/>", "0x03", " dynamicMemslots='yes'").replace(
            "<size unit='KiB'>1048576</size>",
            "<size unit='KiB'>2097152</size>",
          ),
      ),
    );
    expect(values(a, "-m")).to.deep.equal(["size=219136k,slots=16,maxmem=1099511627776k"]);
    expect(values(a, "-object")).to.include.members([
      '{"qom-type":"memory-backend-ram","id":"memvirtiomem0","reserve":false,"size":1073741824}',
      '{"qom-type":"memory-backend-file","id":"memvirtiomem1","mem-path":"/dev/hugepages2M","reserve":false,"size":2147483648,"host-nodes":[1,2,3],"policy":"bind"}',
    ]);
    expect(values(a, "-device")).to.include.members([
      '{"driver":"virtio-mem-pci","node":0,"block-size":2097152,"requested-size":536870912,"memdev":"memvirtiomem0","id":"virtiomem0","bus":"pci.0","addr":"0x2"}',
      '{"driver":"virtio-mem-pci","node":0,"block-size":2097152,"requested-size":536870912,"memdev":"memvirtiomem1","prealloc":true,"memaddr":5637144576,"dynamic-memslots":true,"id":"virtiomem1","bus":"pci.0","addr":"0x3"}',
    ]);
  });

  it("libvirt's size rules and overlapping addresses are refused in its words", () => {
    const blk = (b: string, r = "524288") =>
      virtioMem().replace("<block unit='KiB'>2048</block>", `<block unit='KiB'>${b}</block>`).replace("524288", r);
    expect(refusal(doc(blk("3072"))).message).to.contain("block size must be a power of two");
    expect(refusal(doc(blk("2048", "4194304"))).message).to.contain(
      "requested size must be smaller than or equal to @size",
    );
    expect(refusal(doc(blk("2048", "1024"))).message).to.contain(
      "requested size must be an integer multiple of block size",
    );
    const a = virtioMem("", "<address base='0x140000000'/>");
    const b = virtioMem("", "<address base='0x170000000'/>", "0x03");
    expect(refusal(doc(a + b)).message).to.contain(
      "memory device address [0x140000000:0x180000000] overlaps with other memory device (0x170000000)",
    );
    expect(refusal(doc(virtioMem().replace(/<address type='pci'[^>]*>/, ""))).path).to.equal(
      "/domain/devices/memory[1]/address",
    );
  });
});

describe("QEMU command line: other memory device models, <idmap>", () => {
  it("sgx-epc (an SGX host) is refused naming the model", () => {
    const e = refusal(
      doc("<memory model='sgx-epc'><target><size unit='KiB'>16384</size><node>0</node></target></memory>"),
    );
    expect(e.path).to.equal("/domain/devices/memory[1]/@model");
    expect(e.fix).to.contain("SGX");
  });

  it("<idmap> (container user namespaces, ignored by libvirt's QEMU driver) adds no argument", () => {
    const idmap = "<idmap><uid start='0' target='1000' count='10'/><gid start='0' target='1000' count='10'/></idmap>";
    expect(build(doc("", MAX + NUMA + idmap))).to.deep.equal(build(doc("")));
  });
});

describe("QEMU command line: NUMA HMAT (<cell><cache>, <interconnects>)", () => {
  const hmatDoc = (interconnects: string, cache = "") =>
    DomainDef.parse(
      `<domain type='qemu'><name>QEMUGuest</name><uuid>${U}</uuid><memory unit='KiB'>6291456</memory><vcpu>8</vcpu>` +
        `<os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features><cpu><numa>` +
        `<cell id='0' cpus='0-3' memory='2097152' unit='KiB'>${cache}</cell>` +
        `<cell id='1' cpus='4-7' memory='2097152' unit='KiB'/><cell id='2' memory='2097152' unit='KiB'/>` +
        `<interconnects>${interconnects}</interconnects></numa></cpu><devices/></domain>`,
    );
  const CACHE =
    "<cache level='1' associativity='direct' policy='writeback'><size value='10' unit='KiB'/><line value='8' unit='B'/></cache>";
  const LINKS =
    "<latency initiator='0' target='0' type='access' value='5'/>" +
    "<latency initiator='0' target='0' cache='1' type='access' value='10'/>" +
    "<bandwidth initiator='0' target='0' type='access' value='204800' unit='KiB'/>" +
    "<bandwidth initiator='0' target='0' cache='1' type='access' value='208896' unit='KiB'/>";

  it("is -machine hmat=on, initiator= on every node, -numa hmat-lb and hmat-cache (numatune-hmat)", () => {
    const a = build(hmatDoc(LINKS, CACHE));
    expect(values(a, "-machine")[0]).to.contain("dump-guest-core=off,hmat=on,acpi=on");
    expect(values(a, "-numa")).to.deep.equal([
      "node,nodeid=0,cpus=0-3,initiator=0,memdev=ram-node0",
      "node,nodeid=1,cpus=4-7,initiator=1,memdev=ram-node1",
      "node,nodeid=2,initiator=0,memdev=ram-node2",
      "hmat-lb,initiator=0,target=0,hierarchy=memory,data-type=access-latency,latency=5",
      "hmat-lb,initiator=0,target=0,hierarchy=first-level,data-type=access-latency,latency=10",
      "hmat-lb,initiator=0,target=0,hierarchy=memory,data-type=access-bandwidth,bandwidth=204800K",
      "hmat-lb,initiator=0,target=0,hierarchy=first-level,data-type=access-bandwidth,bandwidth=208896K",
      "hmat-cache,node-id=0,size=10K,level=1,associativity=direct,policy=write-back,line=8",
    ]);
  });

  it("a cell without vCPUs takes the initiator of its lowest latency (virDomainNumaGetNodeInitiator)", () => {
    const links =
      "<latency initiator='0' target='2' type='access' value='30'/><latency initiator='1' target='2' type='access' value='20'/>";
    expect(values(build(hmatDoc(links)), "-numa")).to.include("node,nodeid=2,initiator=1,memdev=ram-node2");
  });

  it("links to missing cells, a CPU-less initiator, or a cache the target lacks are refused in libvirt's words", () => {
    expect(refusal(hmatDoc("<latency initiator='0' target='7' type='access' value='5'/>")).message).to.contain(
      "'target' refers to a non-existent NUMA node",
    );
    expect(refusal(hmatDoc("<latency initiator='2' target='0' type='access' value='5'/>")).message).to.contain(
      "NUMA nodes without CPUs can't be initiator",
    );
    expect(
      refusal(hmatDoc("<latency initiator='0' target='1' cache='1' type='access' value='5'/>")).message,
    ).to.contain("'cache' refers to a non-existent NUMA node cache");
  });
});
