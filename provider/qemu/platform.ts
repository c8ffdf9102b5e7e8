/**
 * The platform family of the QEMU command line (issue 12, session 3): what libvirt builds from
 * `<features>`, `<os><acpi>`/`<bios>`, `<clock offset>`, the PCI root's `<pcihole64>` and the
 * virtio RNG and balloon options, each as libvirt 11 writes it (src/qemu/qemu_command.c), and
 * the parts of `<cputune>` and `<vcpu placement>` that need libvirt's host set-up (cgroups,
 * numad), refused naming the fix.
 *
 * Pure: no I/O.
 */
import { DomainXmlError } from "../xml/errors";
import { XmlElement, childElements, firstChild, getAttr, textContent } from "../xml/tree";
import { toKiB } from "../xml/units";
import { canonicalBitmap } from "../xml/bitmap";
import { chardevBackend, unsupported, xmlWholeNumber } from "./argv";
import { virtioOptionsProps } from "./storage";

const featuresOf = (root: XmlElement) => firstChild(root, "features");

/** A feature element's `state` (`on`/`off`; absent is `on`, as libvirt reads a bare element). */
function featureState(el: XmlElement, path: string, attr = "state", on = "on", off = "off"): boolean {
  const value = getAttr(el, attr);
  if (value === undefined) return true;
  if (value !== on && value !== off)
    throw new DomainXmlError("invalid feature state", {
      path: `${path}/@${attr}`,
      value,
      allowed: `${on}, ${off}`,
      fix: `write ${attr}='${on}' or ${attr}='${off}'`,
    });
  return value === on;
}

/** Refuses any attribute of `el` not in `allowed`. */
function onlyAttrs(el: XmlElement, path: string, allowed: readonly string[]): void {
  for (const a of el.attrs)
    if (!allowed.includes(a.name))
      throw unsupported(
        `${path}/@${a.name}`,
        a.value,
        `${el.name} takes ${allowed.length ? allowed.join(", ") : "no attributes"} here: remove it or apply through libvirt`,
      );
}

// ---------------------------------------------------------------------------------------------
// -machine, -accel, -cpu options from <features>

/** The `-machine` options of `<features>`, split where libvirt puts `smm=` between them. */
export interface PlatformMachineOptions {
  /** Before `smm=`: `vmport=`. */
  readonly beforeSmm: string[];
  /** After `smm=`: `kernel_irqchip=` (`<ioapic>`), `i8042=` (`<ps2>`). */
  readonly afterSmm: string[];
}

/**
 * `<vmport state>`, `<ioapic driver>` and `<ps2 state>` as libvirt writes them on `-machine`
 * (qemuAppendDomainFeaturesMachineParam): `vmport=on|off`, `kernel_irqchip=split` for the QEMU
 * (split) I/O APIC and `on` for KVM's, `i8042=on|off`. libvirt's rules are checked: the vmport
 * and PS/2 inputs need the PS/2 controller (`<ps2 state='off'>` refuses both).
 */
export function platformMachineOptions(root: XmlElement): PlatformMachineOptions {
  const f = featuresOf(root);
  const out: PlatformMachineOptions = { beforeSmm: [], afterSmm: [] };
  if (!f) return out;
  const vmport = firstChild(f, "vmport");
  let vmportOn = false;
  if (vmport) {
    onlyAttrs(vmport, "/domain/features/vmport", ["state"]);
    vmportOn = featureState(vmport, "/domain/features/vmport");
    out.beforeSmm.push(`vmport=${vmportOn ? "on" : "off"}`);
  }
  const ioapic = firstChild(f, "ioapic");
  if (ioapic) {
    onlyAttrs(ioapic, "/domain/features/ioapic", ["driver"]);
    const driver = getAttr(ioapic, "driver");
    if (driver === "qemu") out.afterSmm.push("kernel_irqchip=split");
    else if (driver === "kvm") out.afterSmm.push("kernel_irqchip=on");
    else
      throw new DomainXmlError("invalid I/O APIC driver", {
        path: "/domain/features/ioapic/@driver",
        value: driver,
        allowed: "qemu, kvm",
        fix: "write <ioapic driver='qemu'/> (split, needed for IOMMU interrupt remapping) or driver='kvm'",
      });
  }
  const ps2 = firstChild(f, "ps2");
  if (ps2) {
    onlyAttrs(ps2, "/domain/features/ps2", ["state"]);
    const on = featureState(ps2, "/domain/features/ps2");
    if (!on) {
      if (vmportOn)
        throw new DomainXmlError("vmport feature requires the ps2 feature not to be disabled", {
          path: "/domain/features/vmport/@state",
          value: "on",
          category: "unsupported configuration",
          fix: "write <vmport state='off'/> or remove <ps2 state='off'/>",
        });
      const devices = firstChild(root, "devices");
      const ps2Input = devices
        ? childElements(devices, "input").findIndex((i) => (getAttr(i, "bus") ?? "ps2") === "ps2")
        : -1;
      if (ps2Input >= 0)
        throw new DomainXmlError("ps2 bus inputs require the ps2 feature not to be disabled", {
          path: `/domain/devices/input[${ps2Input + 1}]/@bus`,
          value: "ps2",
          category: "unsupported configuration",
          fix: "remove the PS/2 inputs (use USB ones) or remove <ps2 state='off'/>",
        });
    }
    out.afterSmm.push(`i8042=${on ? "on" : "off"}`);
  }
  return out;
}

/**
 * The options of `-accel` from `<features>` (qemuBuildAccelCommandLine): KVM's dirty ring
 * (`<kvm><dirty-ring state='on' size=>`, `dirty-ring-size=`, a power of two from 1024 to 65536)
 * and TCG's translation block cache (`<tcg><tb-cache>`, `tb-size=` in MiB).
 */
export function accelOptions(root: XmlElement, accel: "kvm" | "tcg"): string[] {
  const f = featuresOf(root);
  if (!f) return [];
  const out: string[] = [];
  const kvm = firstChild(f, "kvm");
  const ring = kvm && firstChild(kvm, "dirty-ring");
  if (ring && accel === "kvm") {
    const path = "/domain/features/kvm/dirty-ring";
    if (featureState(ring, path) && getAttr(ring, "size") !== undefined)
      out.push(`dirty-ring-size=${dirtyRingSize(ring, path)}`);
  }
  const tcg = firstChild(f, "tcg");
  if (tcg) {
    const path = "/domain/features/tcg";
    onlyAttrs(tcg, path, []);
    for (const c of childElements(tcg))
      if (c.name !== "tb-cache") throw unsupported(`${path}/${c.name}`, c.name, "remove it or apply through libvirt");
    const tb = firstChild(tcg, "tb-cache");
    if (tb) {
      onlyAttrs(tb, `${path}/tb-cache`, ["unit"]);
      if (accel !== "tcg")
        throw unsupported(
          `${path}/tb-cache`,
          undefined,
          "the translation block cache is TCG's: use <domain type='qemu'> or remove <tcg>",
        );
      const kib = toKiB(textContent(tb) ?? "", getAttr(tb, "unit"), `${path}/tb-cache`);
      if (kib % 1024n !== 0n)
        throw new DomainXmlError("tb-cache must be a whole number of MiB", {
          path: `${path}/tb-cache`,
          value: `${textContent(tb) ?? ""} ${getAttr(tb, "unit") ?? "KiB"}`,
          allowed: "a multiple of 1 MiB",
          fix: "write e.g. <tb-cache unit='MiB'>100</tb-cache>",
        });
      out.push(`tb-size=${kib / 1024n}`);
    }
  }
  return out;
}

function dirtyRingSize(ring: XmlElement, path: string): number {
  const size = xmlWholeNumber(
    `${path}/@size`,
    getAttr(ring, "size"),
    1024,
    65536,
    "write a power of two from 1024 to 65536, e.g. size='4096'",
  );
  if ((size & (size - 1)) !== 0)
    throw new DomainXmlError("dirty ring size must be a power of two", {
      path: `${path}/@size`,
      value: String(size),
      allowed: "a power of two from 1024 to 65536",
      fix: "write e.g. size='4096'",
    });
  return size;
}

const KVM_FEATURES = ["hidden", "hint-dedicated", "poll-control", "pv-ipi", "dirty-ring"];

/**
 * The `-cpu` options of `<features><kvm>` and `<pmu>` libvirt writes after the Hyper-V ones
 * (qemuBuildCpuCommandLine): `<hidden state='on'>` is `kvm=off`, `<hint-dedicated state='on'>`
 * `kvm-hint-dedicated=on` (host-passthrough CPUs only, as libvirt checks), `<poll-control
 * state='on'>` `kvm-poll-control=on`, `<pv-ipi state='off'>` `kvm-pv-ipi=off` (the other states
 * are QEMU's defaults: nothing), then `<pmu state>` as `pmu=on|off`.
 */
export function kvmPmuCpuOptions(root: XmlElement): string[] {
  const f = featuresOf(root);
  if (!f) return [];
  const out: string[] = [];
  const kvm = firstChild(f, "kvm");
  if (kvm) {
    const K = "/domain/features/kvm";
    onlyAttrs(kvm, K, []);
    for (const c of childElements(kvm))
      if (!KVM_FEATURES.includes(c.name))
        throw unsupported(`${K}/${c.name}`, c.name, "remove it or apply through libvirt");
    const state = (name: string): boolean | undefined => {
      const el = firstChild(kvm, name);
      if (!el) return undefined;
      onlyAttrs(el, `${K}/${name}`, name === "dirty-ring" ? ["state", "size"] : ["state"]);
      if (getAttr(el, "state") === undefined)
        throw new DomainXmlError("missing state", { path: `${K}/${name}/@state`, fix: "write state='on' or 'off'" });
      return featureState(el, `${K}/${name}`);
    };
    if (state("hidden")) out.push("kvm=off");
    if (state("hint-dedicated")) {
      if (getAttr(firstChild(root, "cpu"), "mode") !== "host-passthrough")
        throw new DomainXmlError("kvm-hint-dedicated=on is only applicable for cpu host-passthrough", {
          path: `${K}/hint-dedicated/@state`,
          value: "on",
          category: "unsupported configuration",
          fix: "use <cpu mode='host-passthrough'> or write <hint-dedicated state='off'/>",
        });
      out.push("kvm-hint-dedicated=on");
    }
    if (state("poll-control")) out.push("kvm-poll-control=on");
    if (state("pv-ipi") === false) out.push("kvm-pv-ipi=off");
    const ring = firstChild(kvm, "dirty-ring");
    if (ring && state("dirty-ring") && getAttr(ring, "size") !== undefined) dirtyRingSize(ring, `${K}/dirty-ring`);
  }
  const pmu = firstChild(f, "pmu");
  if (pmu) {
    onlyAttrs(pmu, "/domain/features/pmu", ["state"]);
    out.push(`pmu=${featureState(pmu, "/domain/features/pmu") ? "on" : "off"}`);
  }
  return out;
}

/**
 * `<cpu check=>` as the `-cpu` option QEMU checks it with: libvirt itself compares the guest CPU
 * with what the host (or TCG) provides before start (`partial`, qemuProcessStartValidateGuestCPU)
 * and also the CPU QEMU made after start (`full`), and refuses to start a CPU that would lack a
 * feature; without libvirt QEMU makes that check with `enforce=on` (it refuses to start when a
 * feature of the model or a required one is unavailable). `none` checks nothing.
 */
export function cpuCheckOptions(root: XmlElement): string[] {
  const check = getAttr(firstChild(root, "cpu"), "check");
  if (check === undefined || check === "none") return [];
  if (check === "partial" || check === "full") {
    // QEMU's check is all or nothing: it cannot spare the optional features libvirt's check spares
    const cpu = firstChild(root, "cpu")!;
    const i = childElements(cpu, "feature").findIndex((f) => getAttr(f, "policy") === "optional");
    if (i >= 0)
      throw unsupported(
        `/domain/cpu/feature[${i + 1}]/@policy`,
        "optional",
        `with check='${check}' QEMU refuses a CPU that lacks any feature, optional ones included: write policy='require' or 'disable', or check='none', or apply through libvirt`,
      );
    return ["enforce=on"];
  }
  throw new DomainXmlError("invalid CPU check", {
    path: "/domain/cpu/@check",
    value: check,
    allowed: "none, partial, full",
    fix: "write check='none', 'partial' or 'full'",
  });
}

/** CPUID bits the guest OS sets itself (CR4.OSXSAVE, CR4.PKE): QEMU has no property for them. */
const OS_CONTROLLED_CPU_FEATURES = ["osxsave", "ospke"];

/**
 * Whether a CPU `<feature>` is one of the bits the guest OS sets itself (osxsave, ospke), which
 * QEMU has no property for (it refuses `osxsave=on`): `optional` (on where available) asks for
 * what the guest gets anyway and is written as nothing, as libvirt writes it
 * (cpu-no-removed-features); any other policy is refused naming the fix.
 */
export function osControlledCpuFeature(name: string, policy: string, path: string): boolean {
  if (!OS_CONTROLLED_CPU_FEATURES.includes(name)) return false;
  if (policy === "optional") return true;
  throw unsupported(
    `${path}/@name`,
    name,
    `${name} is set by the guest OS itself (a CR4 bit) and QEMU has no such CPU property: remove the feature, or write policy='optional'`,
  );
}

/**
 * The devices of `<features>`: `<vmcoreinfo>` (state on, or bare) as the `vmcoreinfo` device
 * (qemuBuildVMCoreInfoCommandLine), through which the guest kernel tells where its crash dump notes are.
 */
export function buildFeatureDevices(root: XmlElement, add: (...a: string[]) => void): void {
  const f = featuresOf(root);
  if (!f) return;
  const core = firstChild(f, "vmcoreinfo");
  if (core) {
    onlyAttrs(core, "/domain/features/vmcoreinfo", ["state"]);
    if (featureState(core, "/domain/features/vmcoreinfo")) add("-device", JSON.stringify({ driver: "vmcoreinfo" }));
  }
}

/**
 * `<features><async-teardown enabled='yes|no'>` as libvirt writes it: `-run-with async-teardown=on|off`
 * (QEMU tears the guest's memory down in a separate process after exit; `-run-with` is QEMU >= 8.1's).
 */
export function buildRunWith(root: XmlElement, add: (...a: string[]) => void): void {
  const at = firstChild(featuresOf(root) ?? root, "async-teardown");
  if (!at || !featuresOf(root)) return;
  onlyAttrs(at, "/domain/features/async-teardown", ["enabled"]);
  const on = featureState(at, "/domain/features/async-teardown", "enabled", "yes", "no");
  add("-run-with", `async-teardown=${on ? "on" : "off"}`);
}

// ---------------------------------------------------------------------------------------------
// <clock offset>

/** What `<clock offset>` gives: the `-rtc base=` value and the environment QEMU runs with. */
export interface RtcBase {
  readonly base: string;
  readonly env: Record<string, string>;
}

/** An epoch time as QEMU's `-rtc base=` date, UTC: `YYYY-MM-DDTHH:MM:SS`. */
function rtcDate(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().slice(0, 19);
}

/**
 * `<clock offset=>` as libvirt writes `-rtc base=` (qemuBuildClockArgStr): `utc` and `localtime`
 * as such; `timezone` as `localtime` with QEMU run in that zone (`TZ=`); `absolute` (`start=`,
 * seconds since the epoch) and `variable` with `basis='utc'` (`adjustment=` seconds from UTC) as
 * the date the guest clock starts at, from `nowEpochSeconds` for the latter. `basis='localtime'`
 * depends on the host's time zone and is refused.
 */
export function rtcBase(root: XmlElement, nowEpochSeconds: number): RtcBase {
  const clock = firstChild(root, "clock");
  const P = "/domain/clock";
  const offset = getAttr(clock, "offset") ?? "utc";
  const allowedHere: Readonly<Record<string, readonly string[]>> = {
    utc: ["offset"],
    localtime: ["offset"],
    timezone: ["offset", "timezone"],
    absolute: ["offset", "start"],
    variable: ["offset", "adjustment", "basis"],
  };
  const allowed = allowedHere[offset];
  if (!allowed)
    throw unsupported(`${P}/@offset`, offset, "use offset='utc', 'localtime', 'timezone', 'absolute' or 'variable'");
  for (const a of clock?.attrs ?? [])
    if (!allowed.includes(a.name))
      throw unsupported(`${P}/@${a.name}`, a.value, `offset='${offset}' takes ${allowed.join(", ")}: remove it`);
  if (offset === "utc" || offset === "localtime") return { base: offset, env: {} };
  if (offset === "timezone") {
    const tz = getAttr(clock, "timezone") ?? "";
    if (!/^[A-Za-z0-9_+:/.-]+$/.test(tz))
      throw new DomainXmlError("invalid timezone", {
        path: `${P}/@timezone`,
        value: tz,
        allowed: "a time zone name such as Europe/Paris",
        fix: "write e.g. timezone='Europe/Paris'",
      });
    return { base: "localtime", env: { TZ: tz } };
  }
  if (offset === "absolute") {
    const start = xmlWholeNumber(
      `${P}/@start`,
      getAttr(clock, "start"),
      0,
      253402300799,
      "write the start time in seconds since 1970-01-01 UTC, e.g. start='1234567890'",
    );
    return { base: rtcDate(start), env: {} };
  }
  const basis = getAttr(clock, "basis") ?? "utc";
  if (basis !== "utc")
    throw unsupported(
      `${P}/@basis`,
      basis,
      "an adjustment from the host's local time depends on the host's time zone: write basis='utc' with the adjustment from UTC, or apply through libvirt",
    );
  const adj = getAttr(clock, "adjustment") ?? "0";
  const seconds = /^[+-]?[0-9]+$/.test(adj) ? Number(adj) : NaN;
  if (!Number.isSafeInteger(seconds))
    throw new DomainXmlError("invalid clock adjustment", {
      path: `${P}/@adjustment`,
      value: adj,
      allowed: "a whole number of seconds, signed",
      fix: "write e.g. adjustment='3600'",
    });
  return { base: rtcDate(nowEpochSeconds + seconds), env: {} };
}

// ---------------------------------------------------------------------------------------------
// <controller type='pci'><pcihole64>

/**
 * The PCI root's `<pcihole64 unit=>SIZE</pcihole64>` as libvirt writes it
 * (qemuBuildGlobalControllerCommandLine): `-global i440FX-pcihost.pci-hole64-size=NK` on the PC
 * machine's pci-root, `q35-pcihost` on Q35's pcie-root; other controllers are refused as libvirt
 * refuses them.
 */
export function pciHole64Globals(controllers: readonly XmlElement[]): string[] {
  const out: string[] = [];
  controllers.forEach((c, i) => {
    const hole = firstChild(c, "pcihole64");
    if (!hole) return;
    const path = `/domain/devices/controller[${i + 1}]/pcihole64`;
    onlyAttrs(hole, path, ["unit"]);
    const model = getAttr(c, "model");
    const host =
      getAttr(c, "type") === "pci"
        ? model === "pci-root"
          ? "i440FX-pcihost"
          : model === "pcie-root"
            ? "q35-pcihost"
            : undefined
        : undefined;
    if (!host)
      throw new DomainXmlError("Setting the 64-bit PCI hole size is not supported for this controller", {
        path,
        value: `${getAttr(c, "type") ?? ""} ${model ?? ""}`.trim(),
        allowed: "the pci-root (PC) or pcie-root (Q35) controller",
        category: "unsupported configuration",
        fix: "move <pcihole64> to <controller type='pci' index='0' model='pci-root'> (or pcie-root)",
      });
    const kib = toKiB(textContent(hole) ?? "", getAttr(hole, "unit"), path);
    out.push(`${host}.pci-hole64-size=${kib}K`);
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// <rng>, <memballoon>

/**
 * The backend object of `<rng>` number `index` as libvirt writes it (qemuBuildRNGBackendProps):
 * `rng-random` with its file (empty: `/dev/random`), `rng-builtin`, or `rng-egd` with the
 * character device `charrngN` (built as the other character devices: a TCP or unix socket, ...).
 * Adds the chardev of an EGD backend and returns the object's JSON.
 */
export function rngBackendObject(el: XmlElement, index: number, add: (...a: string[]) => void): string {
  const path = `/domain/devices/rng[${index + 1}]`;
  const id = `objrng${index}`;
  const b = firstChild(el, "backend");
  if (!b) return JSON.stringify({ "qom-type": "rng-random", id, filename: "/dev/urandom" });
  const model = getAttr(b, "model");
  if (model === "random")
    // an empty <backend model='random'/> is libvirt's /dev/random (the corpus: virtio-rng-default)
    return JSON.stringify({
      "qom-type": "rng-random",
      id,
      filename: (textContent(b) ?? "").trim() || "/dev/random",
    });
  if (model === "builtin") return JSON.stringify({ "qom-type": "rng-builtin", id });
  if (model === "egd") {
    const char = `charrng${index}`;
    const source = firstChild(b, "source");
    add("-chardev", chardevBackend(getAttr(b, "type"), char, getAttr(source, "path"), `${path}/backend`, b));
    return JSON.stringify({ "qom-type": "rng-egd", id, chardev: char });
  }
  throw unsupported(`${path}/backend/@model`, model, "use <backend model='random'>, 'builtin' or 'egd'");
}

/**
 * The `virtio-rng-pci` properties of `<rng>`'s `<rate bytes= period=>` (`max-bytes`, `period`:
 * 1000 ms when unstated) and `<driver>` virtio options (iommu, ats, packed, page_per_vq).
 */
export function rngDeviceProps(el: XmlElement, index: number): Record<string, unknown> {
  const path = `/domain/devices/rng[${index + 1}]`;
  const props: Record<string, unknown> = { ...virtioOptionsProps(firstChild(el, "driver"), `${path}/driver`) };
  const rate = firstChild(el, "rate");
  if (rate) {
    onlyAttrs(rate, `${path}/rate`, ["bytes", "period"]);
    const bytes = xmlWholeNumber(
      `${path}/rate/@bytes`,
      getAttr(rate, "bytes"),
      1,
      2 ** 32 - 1,
      "write e.g. bytes='1234'",
    );
    const period = getAttr(rate, "period");
    props["max-bytes"] = bytes;
    props.period =
      period === undefined
        ? 1000
        : xmlWholeNumber(`${path}/rate/@period`, period, 1, 2 ** 32 - 1, "write the period in ms, e.g. period='1000'");
  }
  return props;
}

/**
 * The `virtio-balloon-pci` properties of `<memballoon freePageReporting=>` (`free-page-reporting`)
 * and of its `<driver>` (the virtio options).
 */
export function balloonDriverProps(el: XmlElement | undefined): Record<string, unknown> {
  const props = virtioOptionsProps(el && firstChild(el, "driver"), "/domain/devices/memballoon[1]/driver");
  const fpr = getAttr(el, "freePageReporting");
  if (fpr !== undefined)
    props["free-page-reporting"] = featureState(el!, "/domain/devices/memballoon[1]", "freePageReporting");
  return props;
}

/**
 * `<memballoon><stats period='N'>`: the guest statistics polling period in seconds, which libvirt
 * sets over QMP once QEMU runs (qemuProcessSetupBalloon: `guest-stats-polling-interval`), as the
 * QEMU-direct backend does (`QemuCommand.balloonStatsPeriodSeconds`); 0 (off) sets nothing.
 */
export function balloonStatsPeriod(root: XmlElement): number | undefined {
  const balloon = firstChild(firstChild(root, "devices") ?? root, "memballoon");
  const stats = balloon && firstChild(balloon, "stats");
  if (!stats) return undefined;
  const path = "/domain/devices/memballoon[1]/stats";
  onlyAttrs(stats, path, ["period"]);
  if (getAttr(balloon, "model") !== "virtio")
    throw unsupported(path, undefined, "statistics need a virtio balloon: write <memballoon model='virtio'>");
  const n = xmlWholeNumber(
    `${path}/@period`,
    getAttr(stats, "period"),
    0,
    2 ** 31 - 1,
    "write the period in seconds, e.g. period='10' (0: off)",
    "invalid statistics collection period",
  );
  return n === 0 ? undefined : n;
}

// ---------------------------------------------------------------------------------------------
// <cputune>, <vcpu placement>

/**
 * `<vcpu placement='auto'>`: libvirt asks numad for the host CPUs and NUMA nodes at start, which
 * the QEMU-direct backend cannot do: refused naming the fix. `static` is the default.
 */
export function checkVcpuPlacement(root: XmlElement): void {
  const p = getAttr(firstChild(root, "vcpu"), "placement");
  if (p === undefined || p === "static") return;
  if (p === "auto")
    throw unsupported(
      "/domain/vcpu/@placement",
      p,
      "automatic placement asks numad (through libvirt) for the host CPUs: write placement='static' with cpuset='...' (the host CPUs to run on), or apply through libvirt",
    );
  throw new DomainXmlError("invalid vcpu placement", {
    path: "/domain/vcpu/@placement",
    value: p,
    allowed: "static, auto",
    fix: "write placement='static'",
  });
}

/** The `<cputune>` children that are cgroup settings libvirt makes for the QEMU process. */
const CPUTUNE_CGROUPS = [
  "shares",
  "period",
  "quota",
  "global_period",
  "global_quota",
  "emulator_period",
  "emulator_quota",
  "iothread_period",
  "iothread_quota",
];

/**
 * The host CPUs of QEMU's threads after start (`<cputune>` pinning), which no argument carries:
 * libvirt sets them through sched_setaffinity once QEMU runs (qemuProcessSetupVcpus,
 * qemuProcessSetupIOThreads), as the QEMU-direct backend does (taskset --pid on each thread).
 * A thread without a pin of its own gets `<vcpu cpuset>`, or every online host CPU (`undefined`),
 * as in libvirt (qemuProcessSetupPid).
 */
export interface ThreadAffinity {
  /** vCPU index (QMP `cpu-index`) -> host CPUs (canonical list, `undefined`: all online). */
  readonly vcpus: Readonly<Record<number, string | undefined>>;
  /** iothread object id (`iothreadN`) -> host CPUs (canonical list, `undefined`: all online). */
  readonly iothreads: Readonly<Record<string, string | undefined>>;
}

/** A `<cputune>` pin's host CPU set, canonical; an invalid or empty one is refused as libvirt refuses it. */
function pinSet(el: XmlElement, path: string): string {
  const cpuset = getAttr(el, "cpuset");
  const list = cpuset === undefined ? undefined : canonicalBitmap(cpuset);
  if (list === undefined || list === "")
    throw new DomainXmlError("invalid host CPU set", {
      path: `${path}/@cpuset`,
      value: cpuset,
      allowed: "a libvirt bitmap of host CPUs with at least one CPU, such as 0-3,^2,8",
      fix: "write e.g. cpuset='0-1'",
    });
  return list;
}

/** What `<cputune>` asks of the QEMU-direct backend: the process's host CPUs before exec and the threads' after start. */
export interface CputunePinning {
  /** `<emulatorpin cpuset>`: the whole process's host CPUs before exec (libvirt's qemuProcessInitCpuAffinity). */
  readonly emulator: string | undefined;
  /** The vCPU and iothread affinities after start; `undefined` without `<vcpupin>`/`<iothreadpin>`/`<emulatorpin>`. */
  readonly threads: ThreadAffinity | undefined;
}

/**
 * `<cputune>` as the QEMU-direct backend applies it: `<emulatorpin>` as QEMU's CPU affinity
 * before exec, `<vcpupin>` and `<iothreadpin>` as each thread's after start ({@link ThreadAffinity}).
 * No argument carries any of them, in libvirt as here. The cgroup settings (shares, periods,
 * quotas) and the scheduler policies (vcpusched, iothreadsched, emulatorsched) are refused naming
 * the fix; so is a pin of a vCPU offline at start (libvirt pins it when it is plugged).
 * @param vcpuCpuset the canonical `<vcpu cpuset>`, if any
 * @param iothreadIds the iothread object ids QEMU has (`iothreadN`)
 */
export function cputunePinning(
  root: XmlElement,
  vcpuCpuset: string | undefined,
  iothreadIds: readonly string[],
): CputunePinning {
  const tune = firstChild(root, "cputune");
  if (!tune) return { emulator: undefined, threads: undefined };
  onlyAttrs(tune, "/domain/cputune", []);
  const vcpuEl = firstChild(root, "vcpu");
  const max = Number((textContent(vcpuEl) ?? "1").trim()) || 1;
  const current = Number(getAttr(vcpuEl, "current") ?? max) || max;
  const vcpus: Record<number, string | undefined> = {};
  const iothreads: Record<string, string | undefined> = {};
  let emulator: string | undefined;
  const seen: Record<string, number> = {};
  for (const c of childElements(tune)) {
    seen[c.name] = (seen[c.name] ?? 0) + 1;
    const path = `/domain/cputune/${c.name}[${seen[c.name]}]`;
    if (CPUTUNE_CGROUPS.includes(c.name))
      throw unsupported(
        `/domain/cputune/${c.name}`,
        textContent(c)?.trim(),
        "CPU shares, periods and quotas are cgroup settings libvirt makes for the QEMU process: remove them, set them on the cgroup you run QEMU in, or apply through libvirt",
      );
    if (c.name === "emulatorpin") {
      onlyAttrs(c, path, ["cpuset"]);
      if (emulator !== undefined)
        throw new DomainXmlError("only one emulatorpin is supported", { path, fix: "keep one <emulatorpin>" });
      emulator = pinSet(c, path);
    } else if (c.name === "vcpupin") {
      onlyAttrs(c, path, ["vcpu", "cpuset"]);
      const id = xmlWholeNumber(
        `${path}/@vcpu`,
        getAttr(c, "vcpu"),
        0,
        max - 1,
        `write a vCPU id from 0 to ${max - 1}`,
      );
      if (id in vcpus)
        throw new DomainXmlError("duplicate vcpupin for same vcpu", {
          path: `${path}/@vcpu`,
          value: String(id),
          fix: "keep one <vcpupin> per vCPU",
        });
      if (id >= current)
        throw unsupported(
          `${path}/@vcpu`,
          String(id),
          "this vCPU is offline at start (<vcpu current>): libvirt pins it when it is plugged; remove the vcpupin, or apply through libvirt",
        );
      vcpus[id] = pinSet(c, path);
    } else if (c.name === "iothreadpin") {
      onlyAttrs(c, path, ["iothread", "cpuset"]);
      const id = `iothread${getAttr(c, "iothread") ?? ""}`;
      if (!iothreadIds.includes(id))
        throw new DomainXmlError(`Cannot find 'iothread' : ${getAttr(c, "iothread") ?? ""}`, {
          path: `${path}/@iothread`,
          value: getAttr(c, "iothread"),
          allowed: iothreadIds.map((i) => i.slice("iothread".length)).join(", ") || "no iothread is defined",
          category: "unsupported configuration",
          fix: "pin an iothread of <iothreads>/<iothreadids>",
        });
      if (id in iothreads)
        throw new DomainXmlError("duplicate iothreadpin for same iothread", {
          path: `${path}/@iothread`,
          value: getAttr(c, "iothread"),
          fix: "keep one <iothreadpin> per iothread",
        });
      iothreads[id] = pinSet(c, path);
    } else
      throw unsupported(
        `/domain/cputune/${c.name}`,
        c.name,
        "scheduler policies and other thread tuning are applied by libvirt to QEMU's threads after start: remove it, or apply through libvirt",
      );
  }
  // every vCPU and iothread gets its pin, else <vcpu cpuset>, else all online host CPUs (qemuProcessSetupPid)
  for (let i = 0; i < current; i++) if (!(i in vcpus)) vcpus[i] = vcpuCpuset;
  for (const id of iothreadIds) if (!(id in iothreads)) iothreads[id] = vcpuCpuset;
  const any = childElements(tune).length > 0;
  return { emulator, threads: any ? { vcpus, iothreads } : undefined };
}
