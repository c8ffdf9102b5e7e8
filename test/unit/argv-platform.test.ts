/**
 * The platform family of the QEMU command line (issue 12, session 3; provider/qemu/platform.ts):
 * `<features>` (kvm, pmu, ps2, vmport, ioapic, vmcoreinfo, async-teardown, tcg), ACPI tables,
 * SeaBIOS's reboot timeout, clock offsets, the PCI root's 64-bit hole, the RNG backends and the
 * virtio options of RNG and balloon, each as libvirt 11 writes it (the corpus .args files), and
 * the refusals of what needs libvirt (cputune, numad placement) or what libvirt refuses.
 */
import { expect } from "chai";
import { DomainDef } from "../../provider/xml/domain";
import { DomainXmlError } from "../../provider/xml/errors";
import { buildQemuArgv } from "../../provider/qemu/argv";
import { argv, devices, refusalOrAccepted, values } from "../support/argv";

const U = "33721861-ccee-4dc2-858c-5f1e4629771f";

const doc = (o: { rest?: string; devices?: string; type?: string; machine?: string; os?: string; cpu?: string } = {}) =>
  DomainDef.parse(
    `<domain type='${o.type ?? "qemu"}'><name>d</name><uuid>${U}</uuid><memory unit='KiB'>219136</memory><vcpu>1</vcpu>` +
      `<os><type arch='x86_64' machine='${o.machine ?? "pc"}'>hvm</type>${o.os ?? ""}</os>${o.cpu ?? ""}${o.rest ?? ""}` +
      `<devices>${o.devices ?? ""}</devices></domain>`,
  );

function refused(d: DomainDef): DomainXmlError {
  const r = refusalOrAccepted(d);
  expect(r, "refused").to.not.equal("accepted");
  const e = r as DomainXmlError;
  expect(e.fix, "every refusal names a fix").to.be.a("string").and.not.equal("");
  return e;
}

describe("QEMU command line: platform (features, firmware tables, clock, pcihole64, rng, balloon)", () => {
  it("<pcihole64> of the PC pci-root and the Q35 pcie-root as -global ...pcihost.pci-hole64-size (pcihole64*)", () => {
    const pc = doc({
      devices: "<controller type='pci' index='0' model='pci-root'><pcihole64 unit='GiB'>1</pcihole64></controller>",
    });
    expect(values(argv(pc), "-global")).to.include("i440FX-pcihost.pci-hole64-size=1048576K");
    const q35 = doc({
      machine: "q35",
      devices:
        "<controller type='pci' index='0' model='pcie-root'><pcihole64 unit='KiB'>1048576</pcihole64></controller>",
    });
    expect(values(argv(q35), "-global")).to.include("q35-pcihost.pci-hole64-size=1048576K");
  });

  it("<pcihole64> of any other controller is refused naming it, as libvirt refuses it", () => {
    const e = refused(
      doc({
        devices:
          "<controller type='pci' index='0' model='pci-root'/><controller type='pci' index='1' model='pci-bridge'><pcihole64>1048576</pcihole64></controller>",
      }),
    );
    expect(e.path).to.equal("/domain/devices/controller[2]/pcihole64");
  });

  it("<memballoon><driver> and <rng><driver> virtio options as iommu_platform/ats/packed (virtio-options-*)", () => {
    const d = doc({
      devices:
        "<rng model='virtio'><backend model='random'>/dev/random</backend><driver iommu='on' ats='off' packed='on'/></rng>" +
        "<memballoon model='virtio'><driver ats='on' iommu='off'/></memballoon>",
    });
    const devs = devices(d);
    const rng = devs.find((x) => x.driver === "virtio-rng-pci")!;
    expect(rng).to.include({ iommu_platform: true, ats: false, packed: true, rng: "objrng0", id: "rng0" });
    const balloon = devs.find((x) => x.driver === "virtio-balloon-pci")!;
    expect(balloon).to.include({ ats: true, iommu_platform: false, id: "balloon0" });
  });

  it("<memballoon autodeflate freePageReporting> as deflate-on-oom and free-page-reporting; <stats period> is set after start", () => {
    const d = doc({
      devices: "<memballoon model='virtio' autodeflate='on' freePageReporting='on'><stats period='10'/></memballoon>",
    });
    const c = buildQemuArgv(d);
    const balloon = values(c.argv, "-device")
      .map((v) => JSON.parse(v) as Record<string, unknown>)
      .find((x) => x.driver === "virtio-balloon-pci");
    expect(balloon).to.include({ "deflate-on-oom": true, "free-page-reporting": true });
    expect(c.balloonStatsPeriodSeconds).to.equal(10);
    const plain = buildQemuArgv(
      doc({ devices: "<memballoon model='virtio' autodeflate='on' freePageReporting='on'/>" }),
    );
    expect(c.argv).to.deep.equal(plain.argv);
    expect(plain.balloonStatsPeriodSeconds).to.equal(undefined);
    const off = buildQemuArgv(doc({ devices: "<memballoon model='virtio'><stats period='0'/></memballoon>" }));
    expect(off.balloonStatsPeriodSeconds).to.equal(undefined);
    expect(refused(doc({ devices: "<memballoon model='virtio'><stats period='-1'/></memballoon>" })).path).to.equal(
      "/domain/devices/memballoon[1]/stats/@period",
    );
  });

  it("<timer name='hypervclock' present='yes'> as hv-time=on; a catchup timer's <catchup> tuning has no argument (clock-timer-hyperv-rtc, clock-catchup)", () => {
    expect(
      values(argv(doc({ rest: "<clock offset='utc'><timer name='hypervclock' present='yes'/></clock>" })), "-cpu"),
    ).to.deep.equal(["qemu64,hv-time=on"]);
    const a = argv(
      doc({
        rest: "<clock offset='utc'><timer name='rtc' tickpolicy='catchup'><catchup slew='4636'/></timer></clock>",
      }),
    );
    expect(values(a, "-rtc")).to.deep.equal(["base=utc,driftfix=slew"]);
    expect(
      refused(
        doc({
          rest: "<clock offset='utc'><timer name='rtc' tickpolicy='delay'><catchup slew='4636'/></timer></clock>",
        }),
      ).path,
    ).to.equal("/domain/clock/timer[1]/catchup");
  });

  it("<rng><rate> as max-bytes and period (1000 ms unstated) (virtio-rng-random)", () => {
    const rng = (rate: string) =>
      devices(
        doc({ devices: `<rng model='virtio'><rate ${rate}/><backend model='random'>/dev/urandom</backend></rng>` }),
      ).find((x) => x.driver === "virtio-rng-pci")!;
    expect(rng("bytes='123' period='1234'")).to.include({ "max-bytes": 123, period: 1234 });
    expect(rng("bytes='123'")).to.include({ "max-bytes": 123, period: 1000 });
  });

  it("<rng><backend model='builtin'> as rng-builtin, 'egd' as rng-egd over its chardev (virtio-rng-builtin, -egd)", () => {
    const a = argv(doc({ devices: "<rng model='virtio'><backend model='builtin'/></rng>" }));
    expect(values(a, "-object")).to.include(JSON.stringify({ "qom-type": "rng-builtin", id: "objrng0" }));
    const egd = argv(
      doc({
        devices:
          "<rng model='virtio'><backend model='random'/></rng>" +
          "<rng model='virtio'><backend model='egd' type='tcp'><source mode='connect' host='1.2.3.4' service='1234'/><protocol type='raw'/></backend></rng>",
      }),
    );
    expect(values(egd, "-chardev")).to.include("socket,id=charrng1,host=1.2.3.4,port=1234");
    expect(values(egd, "-object")).to.include(
      JSON.stringify({ "qom-type": "rng-egd", id: "objrng1", chardev: "charrng1" }),
    );
    const unix = argv(
      doc({
        devices:
          "<rng model='virtio'><backend model='egd' type='unix'><source mode='bind' path='/tmp/rng.socket'/></backend></rng>",
      }),
    );
    expect(values(unix, "-chardev")).to.include("socket,id=charrng0,path=/tmp/rng.socket,server=on,wait=off");
  });

  it("an EGD backend without a socket path is refused, as libvirt refuses it (virtio-rng-egd-crash)", () => {
    const e = refused(
      doc({ devices: "<rng model='virtio'><backend model='egd' type='unix'><source mode='bind'/></backend></rng>" }),
    );
    expect(e.path).to.equal("/domain/devices/rng[1]/backend/source/@path");
  });

  it("<features><kvm> and <pmu> on -cpu after the Hyper-V options, in libvirt's order (kvm-features*, pmu-feature*)", () => {
    const on = doc({
      type: "kvm",
      cpu: "<cpu mode='host-passthrough' migratable='off'/>",
      rest: "<features><kvm><hidden state='on'/><hint-dedicated state='on'/><poll-control state='on'/><pv-ipi state='on'/><dirty-ring state='on' size='4096'/></kvm><pmu/></features>",
    });
    const a = argv(on);
    expect(values(a, "-cpu")).to.deep.equal([
      "host,migratable=off,kvm=off,kvm-hint-dedicated=on,kvm-poll-control=on,pmu=on",
    ]);
    expect(values(a, "-accel")).to.deep.equal(["kvm,dirty-ring-size=4096"]);
    const off = doc({
      rest: "<features><kvm><hidden state='off'/><pv-ipi state='off'/></kvm><pmu state='off'/></features>",
    });
    expect(values(argv(off), "-cpu")).to.deep.equal(["qemu64,kvm-pv-ipi=off,pmu=off"]);
  });

  it("<cpu check='partial'|'full'> as -cpu ...,enforce=on: QEMU refuses a CPU it cannot provide, as libvirt does (cpu-check-*)", () => {
    const cpu = (check: string) =>
      values(
        argv(
          doc({
            cpu: `<cpu mode='custom' match='exact' check='${check}'><model fallback='forbid'>core2duo</model></cpu>`,
          }),
        ),
        "-cpu",
      );
    expect(cpu("full")).to.deep.equal(["core2duo,enforce=on"]);
    expect(cpu("partial")).to.deep.equal(["core2duo,enforce=on"]);
    expect(cpu("none")).to.deep.equal(["core2duo"]);
    expect(refused(doc({ cpu: "<cpu mode='custom' check='most'><model>core2duo</model></cpu>" })).path).to.equal(
      "/domain/cpu/@check",
    );
  });

  it("the OS-controlled CPUID bits (osxsave, ospke) QEMU has no property for: optional writes nothing, other policies refuse (cpu-no-removed-features)", () => {
    const cpu = (f: string) => doc({ cpu: `<cpu match='exact'><model>core2duo</model>${f}</cpu>` });
    expect(
      values(argv(cpu("<feature name='osxsave' policy='optional'/><feature name='ospke' policy='optional'/>")), "-cpu"),
    ).to.deep.equal(["core2duo"]);
    expect(refused(cpu("<feature name='osxsave' policy='require'/>")).path).to.equal("/domain/cpu/feature[1]/@name");
  });

  it("kvm hint-dedicated without host-passthrough and a dirty ring size not a power of two are refused", () => {
    expect(refused(doc({ rest: "<features><kvm><hint-dedicated state='on'/></kvm></features>" })).path).to.equal(
      "/domain/features/kvm/hint-dedicated/@state",
    );
    expect(
      refused(doc({ type: "kvm", rest: "<features><kvm><dirty-ring state='on' size='5000'/></kvm></features>" })).path,
    ).to.equal("/domain/features/kvm/dirty-ring/@size");
  });

  it("<vmport>, <ioapic> and <ps2> on -machine around smm= (machine-vmport-opt, machine-i8042-*, intel-iommu-*)", () => {
    const m = (rest: string, machine = "pc") => values(argv(doc({ rest, machine })), "-machine")[0];
    expect(m("<features><vmport state='off'/></features>")).to.match(/^pc,usb=off,vmport=off,dump-guest-core=off/);
    expect(m("<features><ps2 state='on'/></features>", "q35")).to.match(/^q35,usb=off,i8042=on,dump-guest-core=off/);
    expect(m("<features><ps2 state='off'/></features>", "q35")).to.match(/^q35,usb=off,i8042=off,dump-guest-core=off/);
    expect(m("<features><ioapic driver='qemu'/></features>", "q35")).to.match(/^q35,usb=off,kernel_irqchip=split,/);
    expect(m("<features><ioapic driver='kvm'/></features>", "q35")).to.match(/^q35,usb=off,kernel_irqchip=on,/);
  });

  it("the IOMMU's interrupt remapping is built over the split I/O APIC (intel-iommu-eim)", () => {
    const d = doc({
      machine: "q35",
      rest: "<features><ioapic driver='qemu'/></features>",
      devices: "<iommu model='intel'><driver intremap='on' eim='on'/></iommu>",
    });
    expect(devices(d).find((x) => x.driver === "intel-iommu")).to.include({ intremap: "on", eim: "on" });
  });

  it("PS/2 off refuses PS/2 inputs and vmport on, as libvirt refuses them (machine-i8042-off-*)", () => {
    const off = "<features><ps2 state='off'/></features>";
    expect(refused(doc({ machine: "q35", rest: off, devices: "<input type='mouse' bus='ps2'/>" })).path).to.equal(
      "/domain/devices/input[1]/@bus",
    );
    expect(
      refused(doc({ machine: "q35", rest: "<features><vmport state='on'/><ps2 state='off'/></features>" })).path,
    ).to.equal("/domain/features/vmport/@state");
  });

  it("<vmcoreinfo> as the vmcoreinfo device, <async-teardown> as -run-with, <tcg><tb-cache> as tb-size", () => {
    const a = argv(
      doc({
        rest: "<features><vmcoreinfo/><async-teardown enabled='yes'/><tcg><tb-cache unit='KiB'>102400</tb-cache></tcg></features>",
      }),
    );
    expect(values(a, "-device")).to.include(JSON.stringify({ driver: "vmcoreinfo" }));
    expect(values(a, "-run-with")).to.deep.equal(["async-teardown=on"]);
    expect(values(a, "-accel")).to.deep.equal(["tcg,tb-size=100"]);
    const off = argv(doc({ rest: "<features><vmcoreinfo state='off'/><async-teardown enabled='no'/></features>" }));
    expect(values(off, "-run-with")).to.deep.equal(["async-teardown=off"]);
    expect(values(off, "-device").some((v) => v.includes("vmcoreinfo"))).to.equal(false);
  });

  it("<os><acpi><table> as -acpitable, SLIC and MSDM with their signature (acpi-table*)", () => {
    const a = argv(
      doc({
        os: "<acpi><table type='raw'>/a/exm1.dat</table><table type='slic'>/a/slic.dat</table><table type='msdm'>/a/m,sdm.dat</table></acpi>",
        rest: "<features><acpi/></features>",
      }),
    );
    expect(values(a, "-acpitable")).to.deep.equal([
      "file=/a/exm1.dat",
      "sig=SLIC,file=/a/slic.dat",
      "sig=MSDM,file=/a/m,,sdm.dat",
    ]);
    expect(refused(doc({ os: "<acpi><table type='dsdt'>/a/x.dat</table></acpi>" })).path).to.equal(
      "/domain/os/acpi/table[1]/@type",
    );
  });

  it("<os><bios rebootTimeout> as -boot reboot-timeout= before strict=on (reboot-timeout-*)", () => {
    expect(values(argv(doc({ os: "<bios rebootTimeout='-1'/>" })), "-boot")).to.deep.equal([
      "reboot-timeout=-1,strict=on",
    ]);
    expect(values(argv(doc({ os: "<bios useserial='no' rebootTimeout='128'/>" })), "-boot")).to.deep.equal([
      "reboot-timeout=128,strict=on",
    ]);
    expect(refused(doc({ os: "<bios rebootTimeout='65536'/>" })).path).to.equal("/domain/os/bios/@rebootTimeout");
    expect(refused(doc({ os: "<bios useserial='yes'/>" })).path).to.equal("/domain/os/bios/@useserial");
  });

  it("<clock offset> absolute, variable (from UTC) and timezone as -rtc base= (clock-absolute, -variable, -france)", () => {
    const rtc = (clock: string, now?: number) => {
      const c = buildQemuArgv(doc({ rest: clock }), now === undefined ? {} : { nowEpochSeconds: now });
      return { rtc: values(c.argv, "-rtc"), env: c.env };
    };
    expect(rtc("<clock offset='absolute' start='253402300799'/>").rtc).to.deep.equal(["base=9999-12-31T23:59:59"]);
    expect(rtc("<clock offset='variable' adjustment='123456' basis='utc'/>", 1234567890).rtc).to.deep.equal([
      "base=2009-02-15T09:49:06",
    ]);
    expect(rtc("<clock offset='variable' adjustment='-3600'/>", 1234567890).rtc).to.deep.equal([
      "base=2009-02-13T22:31:30",
    ]);
    const tz = rtc("<clock offset='timezone' timezone='Europe/Paris'/>");
    expect(tz.rtc).to.deep.equal(["base=localtime"]);
    expect(tz.env).to.deep.equal({ TZ: "Europe/Paris" });
  });

  it("a variable clock counted from the host's local time and stray clock attributes are refused", () => {
    expect(refused(doc({ rest: "<clock offset='variable' adjustment='3600' basis='localtime'/>" })).path).to.equal(
      "/domain/clock/@basis",
    );
    expect(refused(doc({ rest: "<clock offset='utc' start='1'/>" })).path).to.equal("/domain/clock/@start");
  });

  it("<cputune> pins: emulatorpin is the CPU affinity, vcpupin/iothreadpin the threads' after start; no argument (cputune-cpuset-big-id)", () => {
    const tuned = (tune: string, vcpu = "<vcpu>2</vcpu>") =>
      buildQemuArgv(
        DomainDef.parse(
          `<domain type='qemu'><name>d</name><uuid>${U}</uuid><memory>219136</memory>${vcpu}<iothreads>1</iothreads>${tune}<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>`,
        ),
      );
    const plain = tuned("");
    const c = tuned(
      "<cputune><vcpupin vcpu='1' cpuset='0,16383'/><emulatorpin cpuset='2-3,^3'/><iothreadpin iothread='1' cpuset='4'/></cputune>",
    );
    expect(c.argv).to.deep.equal(plain.argv);
    expect(c.cpuAffinity).to.equal("2");
    expect(c.threadAffinity).to.deep.equal({ vcpus: { 0: undefined, 1: "0,16383" }, iothreads: { iothread1: "4" } });
    expect(plain.threadAffinity).to.equal(undefined);
    // unpinned threads get <vcpu cpuset>, as libvirt gives them
    const withCpuset = tuned("<cputune><vcpupin vcpu='0' cpuset='1'/></cputune>", "<vcpu cpuset='0-1'>2</vcpu>");
    expect(withCpuset.cpuAffinity).to.equal("0-1");
    expect(withCpuset.threadAffinity).to.deep.equal({ vcpus: { 0: "1", 1: "0-1" }, iothreads: { iothread1: "0-1" } });
    const refusedTune = (tune: string, vcpu?: string) => {
      try {
        tuned(tune, vcpu);
      } catch (e) {
        expect(DomainXmlError.isInstance(e)).to.equal(true);
        expect((e as DomainXmlError).fix).to.be.a("string");
        return e as DomainXmlError;
      }
      throw new Error("accepted");
    };
    const shares = refusedTune("<cputune><shares>2048</shares><vcpupin vcpu='0' cpuset='0'/></cputune>");
    expect(shares.path).to.equal("/domain/cputune/shares");
    expect(shares.fix).to.match(/cgroup/);
    expect(refusedTune("<cputune><vcpusched vcpus='0' scheduler='fifo' priority='1'/></cputune>").path).to.equal(
      "/domain/cputune/vcpusched",
    );
    expect(refusedTune("<cputune><iothreadpin iothread='2' cpuset='0'/></cputune>").path).to.equal(
      "/domain/cputune/iothreadpin[1]/@iothread",
    );
    expect(refusedTune("<cputune><vcpupin vcpu='2' cpuset='0'/></cputune>").path).to.equal(
      "/domain/cputune/vcpupin[1]/@vcpu",
    );
    expect(refusedTune("<cputune><vcpupin vcpu='1' cpuset='0'/></cputune>", "<vcpu current='1'>2</vcpu>").fix).to.match(
      /offline at start/,
    );
    expect(refusedTune("<cputune><vcpupin vcpu='0' cpuset='0-'/></cputune>").path).to.equal(
      "/domain/cputune/vcpupin[1]/@cpuset",
    );
    expect(
      refusedTune("<cputune><vcpupin vcpu='0' cpuset='0'/><vcpupin vcpu='0' cpuset='1'/></cputune>").path,
    ).to.equal("/domain/cputune/vcpupin[2]/@vcpu");
  });

  it("<vcpu placement='auto'> is refused naming numad and the static fix", () => {
    const d = DomainDef.parse(
      `<domain type='qemu'><name>d</name><uuid>${U}</uuid><memory>219136</memory><vcpu placement='auto'>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os></domain>`,
    );
    const e = refused(d);
    expect(e.path).to.equal("/domain/vcpu/@placement");
    expect(e.fix)
      .to.match(/numad/)
      .and.match(/placement='static'/);
  });
});
