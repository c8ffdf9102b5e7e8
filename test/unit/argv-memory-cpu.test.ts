/**
 * Memory and CPU placement on the QEMU-direct path (issue 12, task A3): `<vcpu cpuset>` is the
 * CPU affinity the backend gives QEMU (no argument, as in libvirt), and the checks libvirt makes
 * that such definitions reach (memory overflow after alignment, emulator arch, PCI root model).
 */
import { expect } from "chai";
import { DomainDef } from "../../provider/xml/domain";
import { DomainXmlError } from "../../provider/xml/errors";
import { buildQemuArgv } from "../../provider/qemu/argv";
import { withCpuAffinity } from "../../provider/qemu/memory-cpu";
import { refusalOrAccepted } from "../support/argv";

const U = "33721861-ccee-4dc2-858c-5f1e4629771f";

const doc = (vcpu = "<vcpu>2</vcpu>", rest = "", type = "<type arch='x86_64' machine='pc'>hvm</type>", devices = "") =>
  DomainDef.parse(
    `<domain type='qemu'><name>d</name><uuid>${U}</uuid><memory unit='KiB'>219100</memory>${vcpu}${rest}<os>${type}</os><devices>${devices}</devices></domain>`,
  );

const refusal = refusalOrAccepted;

describe("QEMU command line: memory and CPU placement", () => {
  it("<vcpu cpuset> is the CPU affinity beside argv (canonical ranges), no argument", () => {
    const plain = buildQemuArgv(doc());
    const pinned = buildQemuArgv(doc("<vcpu placement='static' cpuset='0-3,^2,8'>2</vcpu>"));
    expect(pinned.cpuAffinity).to.equal("0-1,3,8");
    expect(plain.cpuAffinity).to.equal(undefined);
    expect(pinned.argv).to.deep.equal(plain.argv);
  });

  it("an invalid or empty cpuset is refused naming /domain/vcpu/@cpuset, as libvirt refuses it", () => {
    for (const bad of ["aaa", "0-", "3,^3"]) {
      const e = refusal(doc(`<vcpu cpuset='${bad}'>2</vcpu>`));
      expect(e).to.not.equal("accepted");
      const err = e as DomainXmlError;
      expect(err.path).to.equal("/domain/vcpu/@cpuset");
      expect(err.value).to.equal(bad);
      expect(err.fix).to.be.a("string");
    }
  });

  it("placement='auto' (numad) stays refused beside a cpuset", () => {
    const e = refusal(doc("<vcpu placement='auto' cpuset='0'>2</vcpu>"));
    expect(e).to.not.equal("accepted");
    expect((e as DomainXmlError).path).to.equal("/domain/vcpu/@placement");
  });

  it("withCpuAffinity starts QEMU through taskset --cpu-list as an argument array", () => {
    expect(withCpuAffinity(["qemu", "-m", "64"], undefined)).to.deep.equal(["qemu", "-m", "64"]);
    expect(withCpuAffinity(["qemu", "-m", "64"], "0-1")).to.deep.equal([
      "taskset",
      "--cpu-list",
      "0-1",
      "qemu",
      "-m",
      "64",
    ]);
  });

  it("a NUMA cell that overflows once aligned is refused as libvirt refuses it (memory-align-fail)", () => {
    const e = refusal(
      doc("<vcpu>2</vcpu>", "<cpu><numa><cell id='0' cpus='0-1' memory='9007199254740991' unit='KiB'/></numa></cpu>"),
    );
    expect(e).to.not.equal("accepted");
    expect((e as DomainXmlError).message).to.contain("memory size of NUMA node '0' overflowed after alignment");
  });

  it("an emulator that does not run the arch is refused (missing-machine)", () => {
    const e = refusal(
      doc("<vcpu>1</vcpu>", "", "<type arch='alpha'>hvm</type>", "<emulator>/usr/bin/qemu-system-x86_64</emulator>"),
    );
    expect(e).to.not.equal("accepted");
    expect((e as DomainXmlError).path).to.equal("/domain/os/type/@arch");
    expect(
      refusal(
        doc("<vcpu>1</vcpu>", "", "<type arch='i686'>hvm</type>", "<emulator>/usr/bin/qemu-system-x86_64</emulator>"),
      ),
    ).to.equal("accepted");
  });

  it("the PCI controller index 0 must be the machine's root model (q35-wrong-root, 440fx-wrong-root)", () => {
    const q35 = "<type arch='x86_64' machine='q35'>hvm</type>";
    const e = refusal(doc("<vcpu>1</vcpu>", "", q35, "<controller type='pci' index='0' model='pci-root'/>"));
    expect(e).to.not.equal("accepted");
    expect((e as DomainXmlError).message).to.contain("must be model='pcie-root'");
    const pc = refusal(doc("<vcpu>1</vcpu>", "", undefined, "<controller type='pci' index='0' model='pcie-root'/>"));
    expect(pc).to.not.equal("accepted");
    expect((pc as DomainXmlError).message).to.contain("must be model='pci-root'");
    expect(refusal(doc("<vcpu>1</vcpu>", "", q35, "<controller type='pci' index='0' model='pcie-root'/>"))).to.equal(
      "accepted",
    );
  });

  it("an empty <backend model='random'/> is libvirt's /dev/random (virtio-rng-default)", () => {
    const a = buildQemuArgv(
      doc("<vcpu>1</vcpu>", "", undefined, "<rng model='virtio'><backend model='random'/></rng>"),
    );
    expect(a.argv.join(" ")).to.contain('"filename":"/dev/random"');
  });

  it("a unix channel without a source path gets one in the channel directory (libvirt makes that path itself)", () => {
    const d = doc(
      "<vcpu>1</vcpu>",
      "",
      undefined,
      "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>",
    );
    expect(buildQemuArgv(d).argv).to.include(
      "socket,id=charchannel0,path=/run/libvirt-domain/d/org.qemu.guest_agent.0,server=on,wait=off",
    );
  });
});

describe("QEMU command line: <memoryBacking> and NUMA cell memory", () => {
  const U2 = "33721861-ccee-4dc2-858c-5f1e4629771f";
  const dom = (backing: string, cpu = "") =>
    DomainDef.parse(
      `<domain type='qemu'><name>m</name><uuid>${U2}</uuid><memory unit='KiB'>1048576</memory>${backing}<vcpu>2</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>${cpu}<devices/></domain>`,
    );
  const vals = (a: string[], opt: string) => a.flatMap((x, i) => (x === opt && i + 1 < a.length ? [a[i + 1]!] : []));

  it("<locked/> is -overcommit mem-lock=on, <nosharepages/> -machine mem-merge=off (mlock-on, nosharepages)", () => {
    const a = buildQemuArgv(dom("<memoryBacking><locked/><nosharepages/></memoryBacking>")).argv;
    expect(vals(a, "-overcommit")).to.deep.equal(["mem-lock=on"]);
    expect(vals(a, "-machine")).to.deep.equal(["pc,usb=off,dump-guest-core=off,mem-merge=off,acpi=off"]);
    expect(vals(a, "-object")).to.deep.equal([]);
  });

  it("a file source, shared and preallocated, is the main RAM's own backend in the given directory (memorybacking-set)", () => {
    const d = dom(
      "<memoryBacking><source type='file'/><access mode='shared'/><allocation mode='immediate' threads='2'/><discard/></memoryBacking>",
    );
    const a = buildQemuArgv(d, { memoryBackingDir: "/run/x" }).argv;
    expect(vals(a, "-machine")[0]).to.contain("memory-backend=pc.ram");
    expect(vals(a, "-object").map((o) => JSON.parse(o) as unknown)).to.deep.equal([
      {
        "qom-type": "memory-backend-file",
        id: "pc.ram",
        "mem-path": "/run/x",
        share: true,
        "x-use-canonical-path-for-ramblock-id": false,
        "discard-data": true,
        prealloc: true,
        "prealloc-threads": 2,
        size: 1073741824,
      },
    ]);
  });

  it("memfd, and a stated private access on anonymous memory (a file, as libvirt picks it: memorybacking-unset)", () => {
    const m = vals(
      buildQemuArgv(dom("<memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>")).argv,
      "-object",
    );
    expect(JSON.parse(m[0]!)).to.deep.include({ "qom-type": "memory-backend-memfd", share: true });
    const p = vals(
      buildQemuArgv(dom("<memoryBacking><source type='anonymous'/><access mode='private'/></memoryBacking>")).argv,
      "-object",
    );
    expect(JSON.parse(p[0]!)).to.deep.include({ "qom-type": "memory-backend-file", share: false });
  });

  it("NUMA cells get the backing, memAccess overriding it per cell; -m and -numa still agree (cpu-numa-memshared)", () => {
    const cpu =
      "<cpu><numa><cell id='0' cpus='0' memory='524288' unit='KiB' memAccess='shared'/><cell id='1' cpus='1' memory='524288' unit='KiB'/></numa></cpu>";
    const a = buildQemuArgv(dom("<memoryBacking><allocation mode='immediate'/></memoryBacking>", cpu)).argv;
    expect(vals(a, "-machine")[0]).to.not.contain("memory-backend");
    expect(vals(a, "-m")).to.deep.equal(["size=1048576k"]);
    const objs = vals(a, "-object").map((o) => JSON.parse(o) as Record<string, unknown>);
    expect(objs.map((o) => [o["qom-type"], o.id, o.share, o.prealloc, o.size])).to.deep.equal([
      ["memory-backend-file", "ram-node0", true, true, 536870912],
      ["memory-backend-ram", "ram-node1", undefined, true, 536870912],
    ]);
    expect(vals(a, "-numa")).to.deep.equal([
      "node,nodeid=0,cpus=0,memdev=ram-node0",
      "node,nodeid=1,cpus=1,memdev=ram-node1",
    ]);
  });

  it("hugepages, unknown children and bad values are refused naming them", () => {
    const cases: [string, string][] = [
      ["<memoryBacking><hugepages/></memoryBacking>", "/domain/memoryBacking/hugepages"],
      ["<memoryBacking><source type='disk'/></memoryBacking>", "/domain/memoryBacking/source/@type"],
      ["<memoryBacking><allocation threads='0'/></memoryBacking>", "/domain/memoryBacking/allocation/@threads"],
    ];
    for (const [b, path] of cases) {
      const e = refusal(dom(b));
      expect(e, b).to.not.equal("accepted");
      expect((e as DomainXmlError).path, b).to.equal(path);
    }
    const bad = refusal(
      dom("", "<cpu><numa><cell id='0' cpus='0-1' memory='1048576' unit='KiB' memAccess='invalid'/></numa></cpu>"),
    );
    expect((bad as DomainXmlError).path).to.equal("/domain/cpu/numa/cell[1]/@memAccess");
  });
});

describe("QEMU command line: <numatune> as host-nodes and policy of the RAM backends", () => {
  const U3 = "33721861-ccee-4dc2-858c-5f1e4629771f";
  const dom = (numatune: string, cells = "") =>
    DomainDef.parse(
      `<domain type='qemu'><name>n</name><uuid>${U3}</uuid><memory unit='KiB'>65536</memory><vcpu>2</vcpu>${numatune}<os><type arch='x86_64' machine='pc'>hvm</type></os>${cells ? `<cpu><numa>${cells}</numa></cpu>` : ""}<devices/></domain>`,
    );
  const objects = (d: DomainDef, hostNumaNodes?: number[]) =>
    buildQemuArgv(d, hostNumaNodes ? { hostNumaNodes } : {})
      .argv.flatMap((x, i, a) => (x === "-object" ? [a[i + 1]!] : []))
      .map((o) => JSON.parse(o) as Record<string, unknown>);
  const CELLS = "<cell id='0' cpus='0' memory='32768' unit='KiB'/><cell id='1' cpus='1' memory='32768' unit='KiB'/>";

  it("<memory mode='strict' nodeset> without cells binds the main RAM (numatune-system-memory)", () => {
    const d = dom("<numatune><memory mode='strict' nodeset='0'/></numatune>");
    expect(objects(d)).to.deep.equal([
      { "qom-type": "memory-backend-ram", id: "pc.ram", size: 67108864, "host-nodes": [0], policy: "bind" },
    ]);
    expect(buildQemuArgv(d).argv.join(" ")).to.contain("memory-backend=pc.ram");
  });

  it("memnode binds its cell, <memory> the others (numatune-memnode, numatune-memnode-no-memory)", () => {
    const d = dom(
      "<numatune><memnode cellid='0' mode='preferred' nodeset='3'/><memory mode='interleave' nodeset='0-3,^1'/></numatune>",
      CELLS,
    );
    expect(objects(d).map((o) => [o.id, o["host-nodes"], o.policy])).to.deep.equal([
      ["ram-node0", [3], "preferred"],
      ["ram-node1", [0, 2, 3], "interleave"],
    ]);
    const only = dom("<numatune><memnode cellid='1' mode='strict' nodeset='0'/></numatune>", CELLS);
    expect(objects(only).map((o) => [o.id, o["host-nodes"], o.policy])).to.deep.equal([
      ["ram-node0", undefined, undefined],
      ["ram-node1", [0], "bind"],
    ]);
  });

  it("refuses what libvirt refuses and what needs numad or cgroups, naming the path", () => {
    const cases: [DomainDef, string, string][] = [
      [
        dom("<numatune><memory mode='strict' placement='auto'/></numatune>"),
        "/domain/numatune/memory/@placement",
        "numad",
      ],
      [dom("<numatune><memory mode='restrictive' nodeset='0'/></numatune>"), "/domain/numatune/memory/@mode", "cgroup"],
      [dom("<numatune><memory mode='strict'/></numatune>"), "/domain/numatune/memory/@nodeset", "must be set"],
      [dom("<numatune><memory nodeset='0,^0'/></numatune>"), "/domain/numatune/memory/@nodeset", "Invalid value"],
      [
        dom("<numatune><memnode cellid='0' nodeset='0'/></numatune>"),
        "/domain/numatune/memnode[1]",
        "without any guest NUMA cells",
      ],
      [
        dom("<numatune><memnode cellid='5' nodeset='0'/></numatune>", CELLS),
        "/domain/numatune/memnode[1]/@cellid",
        "no guest NUMA cell",
      ],
    ];
    for (const [d, path, words] of cases) {
      const e = refusal(d);
      expect(e, path).to.not.equal("accepted");
      expect((e as DomainXmlError).path, path).to.equal(path);
      expect((e as DomainXmlError).message, path).to.contain(words);
    }
  });

  it("with the host's NUMA nodes, a node it lacks is refused as libvirt refuses it (numatune-static-nodeset-exceed-hostnode)", () => {
    const d = dom("<numatune><memory mode='strict' nodeset='0-4'/></numatune>");
    expect(objects(d)[0]).to.deep.include({ "host-nodes": [0, 1, 2, 3, 4] });
    let msg = "";
    try {
      buildQemuArgv(d, { hostNumaNodes: [0, 1, 2, 3] });
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).to.contain("NUMA node 4 is unavailable");
  });
});

describe("QEMU command line: <cpu><cache> and <maxphysaddr>", () => {
  const U4 = "33721861-ccee-4dc2-858c-5f1e4629771f";
  const dom = (cpu: string) =>
    DomainDef.parse(
      `<domain type='kvm'><name>c</name><uuid>${U4}</uuid><memory unit='KiB'>65536</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>${cpu}<devices/></domain>`,
    );
  const cpuArg = (cpu: string) => {
    const a = buildQemuArgv(dom(cpu)).argv;
    return a[a.indexOf("-cpu") + 1];
  };
  const HP = (inner: string) => `<cpu mode='host-passthrough'>${inner}</cpu>`;

  it("cache modes as libvirt writes them (cpu-cache-disable, -emulate-l3, -passthrough)", () => {
    expect(cpuArg(HP("<cache mode='disable'/>"))).to.equal("host,migratable=on,host-cache-info=off,l3-cache=off");
    expect(cpuArg(HP("<cache level='3' mode='emulate'/>"))).to.equal(
      "host,migratable=on,l3-cache=on,host-cache-info=off",
    );
    expect(cpuArg(HP("<cache mode='passthrough'/>"))).to.equal("host,migratable=on,host-cache-info=on,l3-cache=off");
    expect(cpuArg("<cpu><model>qemu64</model><cache level='3' mode='emulate'/></cpu>")).to.equal("qemu64,l3-cache=on");
  });

  it("maxphysaddr modes as libvirt writes them (cpu-phys-bits-*)", () => {
    expect(cpuArg(HP("<maxphysaddr mode='passthrough' limit='39'/>"))).to.equal(
      "host,migratable=on,host-phys-bits=on,host-phys-bits-limit=39",
    );
    expect(cpuArg(HP("<maxphysaddr mode='passthrough'/>"))).to.equal("host,migratable=on,host-phys-bits=on");
    expect(cpuArg(HP("<maxphysaddr mode='emulate'/>"))).to.equal("host,migratable=on,host-phys-bits=off");
    expect(cpuArg("<cpu><model>qemu64</model><maxphysaddr mode='emulate' bits='42'/></cpu>")).to.equal(
      "qemu64,phys-bits=42",
    );
  });

  it("refuses what libvirt refuses, in its words", () => {
    const cases: [string, string][] = [
      [HP("<cache level='2' mode='emulate'/>"), "can only be used with level='3'"],
      [HP("<cache level='3' mode='passthrough'/>"), "unsupported CPU cache level for mode 'passthrough'"],
      [
        "<cpu mode='host-model'><cache mode='passthrough'/></cpu>",
        "can only be used with 'host-passthrough' / 'maximum' CPUs",
      ],
      [HP("<maxphysaddr mode='passthrough' bits='42'/>"), "cannot be used with mode='passthrough'"],
    ];
    for (const [cpu, words] of cases) {
      const e = refusal(dom(cpu));
      expect(e, cpu).to.not.equal("accepted");
      expect((e as DomainXmlError).message, cpu).to.contain(words);
    }
  });
});

describe("QEMU command line: <hugepages> on the host's hugetlbfs mounts", () => {
  const U5 = "33721861-ccee-4dc2-858c-5f1e4629771f";
  const HOST = {
    hugetlbfs: {
      mounts: [
        { sizeKiB: 2048, path: "/dev/hugepages2M" },
        { sizeKiB: 1048576, path: "/dev/hugepages1G" },
      ],
      defaultSizeKiB: 2048,
    },
  };
  const dom = (backing: string, cells = "") =>
    DomainDef.parse(
      `<domain type='qemu'><name>h</name><uuid>${U5}</uuid><memory unit='KiB'>2097152</memory><memoryBacking>${backing}</memoryBacking><vcpu>2</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>${cells ? `<cpu><numa>${cells}</numa></cpu>` : ""}<devices/></domain>`,
    );
  const objects = (d: DomainDef) =>
    buildQemuArgv(d, HOST)
      .argv.flatMap((x, i, a) => (x === "-object" ? [a[i + 1]!] : []))
      .map((o) => JSON.parse(o) as Record<string, unknown>);
  const CELLS =
    "<cell id='0' cpus='0' memory='1048576' unit='KiB'/><cell id='1' cpus='1' memory='1048576' unit='KiB' discard='yes'/>";

  it("default size: the main RAM is a preallocated file on the default mount (hugepages-default)", () => {
    expect(objects(dom("<hugepages/>"))).to.deep.equal([
      {
        "qom-type": "memory-backend-file",
        id: "pc.ram",
        "mem-path": "/dev/hugepages2M",
        "x-use-canonical-path-for-ramblock-id": false,
        prealloc: true,
        size: 2147483648,
      },
    ]);
  });

  it("pages per cell by nodeset, the master page for the rest, a cell's discard as stated (hugepages-numa-nodeset)", () => {
    const o = objects(
      dom(
        "<hugepages><page size='1' unit='GiB' nodeset='1'/><page size='2048' unit='KiB'/></hugepages><allocation mode='ondemand'/>",
        CELLS,
      ),
    );
    expect(o.map((x) => [x.id, x["mem-path"], x.prealloc, x["discard-data"]])).to.deep.equal([
      ["ram-node0", "/dev/hugepages2M", undefined, undefined],
      ["ram-node1", "/dev/hugepages1G", undefined, true],
    ]);
  });

  it("memfd with huge pages is hugetlb on memfd; the system page size asks for none (hugepages-default-system-size)", () => {
    const [m] = objects(dom("<hugepages/><source type='memfd'/>"));
    expect(m).to.deep.include({
      "qom-type": "memory-backend-memfd",
      hugetlb: true,
      hugetlbsize: 2097152,
      prealloc: true,
    });
    expect(objects(dom("<hugepages><page size='4' unit='KiB'/></hugepages>"))).to.deep.equal([]);
  });

  it("refuses in libvirt's words: no mount for the size, a node that is no cell, two masters, an unknown host", () => {
    const msg = (d: DomainDef, opts: object = HOST) => {
      try {
        buildQemuArgv(d, opts);
      } catch (e) {
        if (DomainXmlError.isInstance(e)) return e.message;
        throw e;
      }
      return "accepted";
    };
    expect(msg(dom("<hugepages><page size='5120' unit='KiB'/></hugepages>"))).to.contain(
      "Unable to find any usable hugetlbfs mount for 5120 KiB",
    );
    expect(msg(dom("<hugepages><page size='2048' unit='KiB' nodeset='4'/></hugepages>", CELLS))).to.contain(
      "hugepages: node 4 not found",
    );
    expect(
      msg(dom("<hugepages><page size='1048576' unit='KiB'/><page size='2048' unit='KiB' nodeset='0'/></hugepages>")),
    ).to.contain("two master hugepages detected: 2048 and 1048576");
    expect(msg(dom("<hugepages/>"), {})).to.contain("/domain/memoryBacking/hugepages");
  });
});

describe("QEMU command line: <features> pvspinlock, hyperv, smm", () => {
  const U6 = "33721861-ccee-4dc2-858c-5f1e4629771f";
  const dom = (features: string, machine = "pc") =>
    DomainDef.parse(
      `<domain type='kvm'><name>f</name><uuid>${U6}</uuid><memory unit='KiB'>65536</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='${machine}'>hvm</type></os><features>${features}</features><devices/></domain>`,
    );
  const opt = (d: DomainDef, o: string) => {
    const a = buildQemuArgv(d).argv;
    return a.flatMap((x, i) => (x === o ? [a[i + 1]!] : []));
  };

  it("pvspinlock is kvm-pv-unhalt after the EOI (pv-spinlock-*, cpu-translation)", () => {
    expect(opt(dom("<apic eoi='on'/><pvspinlock state='on'/>"), "-cpu")).to.deep.equal([
      "qemu64,kvm-pv-eoi=on,kvm-pv-unhalt=on",
    ]);
    expect(opt(dom("<pvspinlock state='off'/>"), "-cpu")).to.deep.equal(["qemu64,kvm-pv-unhalt=off"]);
  });

  it("hyperv enlightenments in libvirt's order, passthrough as hv-passthrough (hyperv, hyperv-stimer-direct)", () => {
    const hv =
      "<hyperv><vendor_id state='on' value='KVM Hv'/><spinlocks state='on' retries='12287'/><relaxed state='on'/><stimer state='on'><direct state='on'/></stimer><tlbflush state='on'><extended state='on'/></tlbflush><ipi state='off'/></hyperv>";
    expect(opt(dom(hv), "-cpu")).to.deep.equal([
      "qemu64,hv-relaxed=on,hv-spinlocks=0x2fff,hv-stimer=on,hv-stimer-direct=on,hv-vendor-id=KVM Hv,hv-tlbflush=on,hv-tlbflush-ext=on",
    ]);
    expect(opt(dom("<hyperv mode='passthrough'/>"), "-cpu")).to.deep.equal(["qemu64,hv-passthrough=on"]);
    const e = refusal(dom("<hyperv><spinlocks state='on' retries='10'/></hyperv>"));
    expect((e as DomainXmlError).path).to.equal("/domain/features/hyperv/spinlocks/@retries");
  });

  it("smm on -machine after usb=off, tseg as the mch global on q35 only, in whole MiB (machine-smm-on, tseg-*)", () => {
    expect(opt(dom("<smm state='on'/>", "q35"), "-machine")).to.deep.equal([
      "q35,usb=off,smm=on,dump-guest-core=off,acpi=off",
    ]);
    expect(opt(dom("<smm state='on'><tseg unit='MiB'>48</tseg></smm>", "q35"), "-global")).to.include(
      "mch.extended-tseg-mbytes=48",
    );
    expect((refusal(dom("<smm state='on'><tseg unit='MiB'>48</tseg></smm>")) as DomainXmlError).message).to.contain(
      "SMM TSEG is only supported with q35 machine type",
    );
    expect(
      (refusal(dom("<smm state='on'><tseg unit='KiB'>12345</tseg></smm>", "q35")) as DomainXmlError).message,
    ).to.contain("SMM TSEG size must be divisible by 1 MiB");
  });
});

describe("QEMU command line: <iothreads> and <iothreadids>", () => {
  const U7 = "33721861-ccee-4dc2-858c-5f1e4629771f";
  const dom = (t: string) =>
    DomainDef.parse(
      `<domain type='qemu'><name>t</name><uuid>${U7}</uuid><memory unit='KiB'>65536</memory><vcpu>1</vcpu>${t}<os><type arch='x86_64' machine='pc'>hvm</type></os><devices/></domain>`,
    );
  const threads = (d: DomainDef) => {
    const a = buildQemuArgv(d).argv;
    return a.flatMap((x, i) => (x === "-object" ? [(JSON.parse(a[i + 1]!) as { id: string }).id] : []));
  };

  it("the written ids first, then the lowest free ids up to the count (iothreads-ids-partial)", () => {
    expect(
      threads(dom("<iothreads>4</iothreads><iothreadids><iothread id='5'/><iothread id='6'/></iothreadids>")),
    ).to.deep.equal(["iothread5", "iothread6", "iothread1", "iothread2"]);
    expect(threads(dom("<iothreads>2</iothreads>"))).to.deep.equal(["iothread1", "iothread2"]);
  });

  it("thread pools and duplicate ids are refused naming them", () => {
    expect(
      (
        refusal(
          dom("<iothreads>1</iothreads><iothreadids><iothread id='1' thread_pool_min='2'/></iothreadids>"),
        ) as DomainXmlError
      ).path,
    ).to.equal("/domain/iothreadids/iothread[1]/@thread_pool_min");
    expect(
      (refusal(dom("<iothreadids><iothread id='1'/><iothread id='1'/></iothreadids>")) as DomainXmlError).message,
    ).to.contain("duplicate iothread id");
  });
});

describe("QEMU command line: <currentMemory> as the balloon target beside argv", () => {
  const U8 = "33721861-ccee-4dc2-858c-5f1e4629771f";
  const dom = (cur: string, devices = "") =>
    DomainDef.parse(
      `<domain type='qemu'><name>b</name><uuid>${U8}</uuid><memory unit='MiB'>128</memory>${cur}<vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices>${devices}</devices></domain>`,
    );

  it("below <memory> it is balloonTargetBytes and no argument; equal or above, nothing (cpu-empty)", () => {
    const low = buildQemuArgv(dom("<currentMemory unit='MiB'>64</currentMemory>"));
    expect(low.balloonTargetBytes).to.equal(67108864);
    expect(low.argv).to.deep.equal(buildQemuArgv(dom("")).argv);
    expect(buildQemuArgv(dom("<currentMemory unit='MiB'>128</currentMemory>")).balloonTargetBytes).to.equal(undefined);
    expect(buildQemuArgv(dom("<currentMemory unit='MiB'>256</currentMemory>")).balloonTargetBytes).to.equal(undefined);
  });

  it("without a balloon device a lower current memory is refused naming it", () => {
    const e = refusal(dom("<currentMemory unit='MiB'>64</currentMemory>", "<memballoon model='none'/>"));
    expect((e as DomainXmlError).path).to.equal("/domain/currentMemory");
  });
});
