/**
 * Memory and CPU placement for the QEMU command line builder (issue 12, task A3): what libvirt
 * does for `<vcpu cpuset>` and `<memoryBacking>` (src/qemu/qemu_process.c, qemu_command.c).
 *
 * Pure: no I/O. What needs the host (the CPU affinity of the QEMU process) is returned beside
 * the argument vector for the backend to apply when it spawns QEMU.
 */
import { DomainXmlError } from "../xml/errors";
import { XmlElement, childElements, firstChild, getAttr, textContent } from "../xml/tree";
import { canonicalBitmap } from "../xml/bitmap";
import { toKiB } from "../xml/units";

function unsupported(path: string, value: string | undefined, fix: string): DomainXmlError {
  return new DomainXmlError("cannot be expressed on the QEMU command line without libvirt", {
    path,
    value,
    category: "unsupported configuration",
    fix,
  });
}

/**
 * The host CPUs the QEMU process may run on, from `<vcpu cpuset=>` (canonical ranges such as
 * `0-1,4`), or undefined when the definition states none.
 *
 * libvirt passes no argument for it: it sets the affinity of the QEMU process before exec
 * (qemuProcessInitCpuAffinity, sched_setaffinity) and every thread QEMU starts inherits it.
 * The QEMU-direct backend does the same by starting QEMU through util-linux `taskset`
 * (an argument array, no shell). An invalid bitmap is refused as libvirt refuses it
 * ("Failed to parse bitmap"); an empty set too (no CPU to run on).
 */
export function vcpuCpuAffinity(root: XmlElement): string | undefined {
  const vcpu = firstChild(root, "vcpu");
  const cpuset = getAttr(vcpu, "cpuset");
  if (cpuset === undefined) return undefined;
  const list = canonicalBitmap(cpuset);
  if (list === undefined || list === "")
    throw new DomainXmlError("invalid host CPU set", {
      path: "/domain/vcpu/@cpuset",
      value: cpuset,
      allowed: "a libvirt bitmap of host CPUs with at least one CPU, such as 0-3,^2,8",
      fix: "write e.g. <vcpu cpuset='0-1'>2</vcpu>, or remove cpuset",
    });
  return list;
}

/** How `<memoryBacking>` asks QEMU to back the guest RAM. */
export interface MemoryBacking {
  /** `<locked/>`: `-overcommit mem-lock=on`. */
  readonly locked: boolean;
  /** `<nosharepages/>`: `-machine mem-merge=off`. */
  readonly noSharePages: boolean;
  /** `<source type=>`: `file`, `anonymous`, `memfd`, or undefined (libvirt's default: anonymous). */
  readonly source: string | undefined;
  /** `<access mode='shared'>`: the backend's `share`. */
  readonly shared: boolean | undefined;
  /** `<allocation mode='immediate'>`: the backend's `prealloc`. */
  readonly prealloc: boolean;
  /** `<allocation threads=>`: the backend's `prealloc-threads`. */
  readonly preallocThreads: number | undefined;
  /** `<discard/>`: the backend's `discard-data`. */
  readonly discard: boolean;
}

const BACKING_CHILDREN = new Set(["locked", "nosharepages", "source", "access", "allocation", "discard"]);

/**
 * Reads `<memoryBacking>`. Hugepages need the host's hugetlbfs mounts (libvirt finds them from
 * qemu.conf and /proc/mounts): refused, as is anything not listed in {@link MemoryBacking}.
 */
export function readMemoryBacking(root: XmlElement): MemoryBacking | undefined {
  const mb = firstChild(root, "memoryBacking");
  if (!mb) return undefined;
  const P = "/domain/memoryBacking";
  for (const a of mb.attrs) throw unsupported(`${P}/@${a.name}`, a.value, "remove it or apply through libvirt");
  for (const c of childElements(mb)) {
    if (c.name === "hugepages")
      throw unsupported(
        `${P}/hugepages`,
        undefined,
        "hugepages need the host's hugetlbfs mounts, which libvirt finds: remove <hugepages> or apply through libvirt",
      );
    if (!BACKING_CHILDREN.has(c.name))
      throw unsupported(`${P}/${c.name}`, c.name, "remove it or apply through libvirt");
  }
  const only = (name: string, attrs: readonly string[]) => {
    const el = firstChild(mb, name);
    for (const a of el?.attrs ?? [])
      if (!attrs.includes(a.name))
        throw unsupported(`${P}/${name}/@${a.name}`, a.value, "remove it or apply through libvirt");
    for (const k of el ? childElements(el) : [])
      throw unsupported(`${P}/${name}/${k.name}`, k.name, "remove it or apply through libvirt");
    return el;
  };
  const oneOf = (path: string, value: string | undefined, allowed: readonly string[]) => {
    if (value !== undefined && !allowed.includes(value))
      throw new DomainXmlError("invalid value", {
        path,
        value,
        allowed: allowed.join(", "),
        fix: `write one of ${allowed.join(", ")}`,
      });
    return value;
  };
  const source = oneOf(`${P}/source/@type`, getAttr(only("source", ["type"]), "type"), ["file", "anonymous", "memfd"]);
  const access = oneOf(`${P}/access/@mode`, getAttr(only("access", ["mode"]), "mode"), ["shared", "private"]);
  const allocation = only("allocation", ["mode", "threads"]);
  const mode = oneOf(`${P}/allocation/@mode`, getAttr(allocation, "mode"), ["immediate", "ondemand"]);
  const threads = getAttr(allocation, "threads");
  if (threads !== undefined && !/^[1-9][0-9]{0,4}$/.test(threads))
    throw new DomainXmlError("invalid thread count", {
      path: `${P}/allocation/@threads`,
      value: threads,
      allowed: "a whole number from 1",
      fix: "write e.g. threads='4', or remove it",
    });
  return {
    locked: only("locked", []) !== undefined,
    noSharePages: only("nosharepages", []) !== undefined,
    source,
    shared: access === undefined ? undefined : access === "shared",
    prealloc: mode === "immediate",
    preallocThreads: threads === undefined ? undefined : Number(threads),
    discard: only("discard", []) !== undefined,
  };
}

/** Where the builder puts the files of a file-backed guest RAM (libvirt: qemu.conf memory_backing_dir). */
export interface MemoryBackingFiles {
  /** The directory the RAM files go in; QEMU creates the files. */
  readonly dir: string;
}

/**
 * Whether the guest RAM needs an explicit backend object (libvirt's qemuBuildMemoryBackendProps
 * writes the main RAM as `-machine memory-backend=pc.ram` when the backing asks for anything a
 * plain `-m` cannot say).
 */
export function needsRamBackend(b: MemoryBacking | undefined): b is MemoryBacking {
  return (
    b !== undefined &&
    (b.source === "file" || b.source === "memfd" || b.shared !== undefined || b.prealloc || b.discard)
  );
}

/**
 * The JSON of one RAM backend object as libvirt writes it (qemuBuildMemoryBackendProps): the
 * qom-type from the source, `mem-path` for a file, then share, prealloc, size, in libvirt's key
 * order. `mainRam` is the machine's `pc.ram` (libvirt adds x-use-canonical-path-for-ramblock-id
 * false there so the RAM block keeps its migration name).
 */
export function ramBackendJson(
  b: MemoryBacking,
  id: string,
  bytes: bigint,
  files: MemoryBackingFiles,
  mainRam: boolean,
): string {
  const props: string[] = [];
  const type =
    b.source === "file" ? "memory-backend-file" : b.source === "memfd" ? "memory-backend-memfd" : "memory-backend-ram";
  props.push(`"qom-type":"${type}"`, `"id":${JSON.stringify(id)}`);
  if (b.source === "file") props.push(`"mem-path":${JSON.stringify(`${files.dir}/${id}`)}`);
  if (b.shared !== undefined) props.push(`"share":${b.shared}`);
  if (b.source === "file" && mainRam) props.push(`"x-use-canonical-path-for-ramblock-id":false`);
  if (b.discard && b.source === "file") props.push(`"discard-data":true`);
  if (b.prealloc) props.push(`"prealloc":true`);
  if (b.prealloc && b.preallocThreads !== undefined) props.push(`"prealloc-threads":${b.preallocThreads}`);
  props.push(`"size":${bytes}`);
  return `{${props.join(",")}}`;
}

/** Re-exported for the memory builder: a size in KiB. */
export { toKiB };

/** The program that sets the CPU affinity of the QEMU process: util-linux `taskset`, found on PATH. */
export const TASKSET = "taskset";

/**
 * The command that starts QEMU with the CPU affinity of {@link vcpuCpuAffinity}: `argv` itself
 * without one, else `taskset --cpu-list LIST argv...` (taskset sets the affinity, then execs QEMU,
 * which keeps it and hands it to every thread, as libvirt's sched_setaffinity before exec does).
 */
export function withCpuAffinity(argv: readonly string[], cpuAffinity: string | undefined): string[] {
  return cpuAffinity === undefined ? [...argv] : [TASKSET, "--cpu-list", cpuAffinity, ...argv];
}

/**
 * Largest memory size in KiB libvirt accepts after aligning it (qemuDomainAlignMemorySizes:
 * virMemoryMaxValue(false) >> 10, i.e. LLONG_MAX bytes).
 */
export const MEMORY_MAX_KIB = 9223372036854775807n >> 10n;

/**
 * Refuses a size that overflowed libvirt's limit once aligned, in libvirt's words
 * ("memory size of NUMA node '0' overflowed after alignment"); `cell` is the NUMA cell id, if any.
 */
export function checkAlignedMemoryKiB(
  alignedKiB: bigint,
  path: string,
  value: string | undefined,
  cell?: number,
): void {
  if (alignedKiB <= MEMORY_MAX_KIB) return;
  throw new DomainXmlError(
    cell === undefined
      ? "memory size overflowed after alignment"
      : `memory size of NUMA node '${cell}' overflowed after alignment`,
    {
      path,
      value,
      allowed: `at most ${MEMORY_MAX_KIB} KiB once aligned to 1 MiB`,
      fix: "write a smaller memory size",
    },
  );
}

/**
 * What libvirt checks before it builds a command line that a definition with `<vcpu cpuset>`
 * (newly expressed) may otherwise slip through with:
 * - an `<emulator>` named `qemu-system-ARCH` must run the `<type arch>` ("Emulator ... does not
 *   support arch"): the x86_64 one runs x86_64 and i686, the i386 one i686;
 * - the PCI controller with index 0 must be the machine's root: `pcie-root` on q35, `pci-root`
 *   on the others ("The PCI controller with index='0' must be model=...").
 */
export function checkMachineBasics(root: XmlElement): void {
  const os = firstChild(root, "os");
  const arch = getAttr(firstChild(os ?? root, "type"), "arch");
  const emulator = firstChild(firstChild(root, "devices") ?? root, "emulator");
  const bin = /(?:^|\/)qemu-system-([a-z0-9_]+)$/.exec(textContent(emulator)?.trim() ?? "");
  const runs: Readonly<Record<string, readonly string[]>> = { x86_64: ["x86_64", "i686"], i386: ["i686"] };
  const can = bin ? runs[bin[1]!] : undefined;
  if (arch !== undefined && can !== undefined && !can.includes(arch))
    throw new DomainXmlError(`Emulator 'qemu-system-${bin![1]}' does not support arch '${arch}'`, {
      path: "/domain/os/type/@arch",
      value: arch,
      allowed: can.join(", "),
      fix: `write arch='${can[0]}', or name the emulator for ${arch} in <emulator>`,
    });
  const machine = getAttr(firstChild(os ?? root, "type"), "machine") ?? "pc";
  const want = /^(q35|pc-q35-)/.test(machine) ? "pcie-root" : "pci-root";
  const devices = firstChild(root, "devices");
  (devices ? childElements(devices, "controller") : []).forEach((c, i) => {
    const model = getAttr(c, "model");
    if (getAttr(c, "type") !== "pci" || getAttr(c, "index") !== "0" || model === undefined || model === want) return;
    if (model !== "pci-root" && model !== "pcie-root") return;
    throw new DomainXmlError(
      `The PCI controller with index='0' must be model='${want}' for this machine type, but model='${model}' was found instead`,
      {
        path: `/domain/devices/controller[${i + 1}]/@model`,
        value: model,
        allowed: want,
        fix: `write model='${want}' for machine '${machine}'`,
      },
    );
  });
}
