/**
 * Memory and CPU placement for the QEMU command line builder (issue 12, task A3): what libvirt
 * does for `<vcpu cpuset>` and `<memoryBacking>` (src/qemu/qemu_process.c, qemu_command.c).
 *
 * Pure: no I/O. What needs the host (the CPU affinity of the QEMU process) is returned beside
 * the argument vector for the backend to apply when it spawns QEMU.
 */
import { DomainXmlError } from "../xml/errors";
import { XmlElement, childElements, firstChild, getAttr, textContent } from "../xml/tree";
import { canonicalBitmap, parseBitmap } from "../xml/bitmap";
import { toKiB } from "../xml/units";
import { unsupported } from "./argv";

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
  /** `<access mode=>`: `shared` or `private`, or undefined. */
  readonly access: string | undefined;
  /** `<allocation mode='immediate'>`: the backend's `prealloc`. */
  readonly prealloc: boolean;
  /** `<allocation threads=>`: the backend's `prealloc-threads`. */
  readonly preallocThreads: number | undefined;
  /** `<discard/>`: a file backend's `discard-data`. */
  readonly discard: boolean;
  /** `<allocation mode='ondemand'>` stated: hugepages are not preallocated then. */
  readonly onDemand: boolean;
  /** `<hugepages>`: its pages (size in KiB, undefined for the host's default; the guest NUMA cells they serve). */
  readonly hugepages:
    readonly { readonly sizeKiB: bigint | undefined; readonly nodeset: readonly number[] | undefined }[] | undefined;
}

/** A hugetlbfs mount of the host: the page size it serves and where it is mounted. */
export interface HugetlbfsMount {
  readonly sizeKiB: number;
  readonly path: string;
}

/** What the builder may know of the host for guest memory (libvirt probes it; the builder is pure). */
export interface HostMemoryInfo {
  /**
   * The host's online NUMA nodes: a `<numatune>` nodeset naming another is refused, as libvirt
   * refuses it ("NUMA node N is unavailable"). @default not checked (QEMU fails to bind at start)
   */
  readonly hostNumaNodes?: readonly number[];
  /**
   * The host's hugetlbfs mounts and its default huge page size (KiB), for `<hugepages>`.
   * @default unknown: `<hugepages>` is refused
   */
  readonly hugetlbfs?: { readonly mounts: readonly HugetlbfsMount[]; readonly defaultSizeKiB: number };
}

/** The system page size of x86 (KiB): a `<page>` of this size asks for no huge pages. */
const SYSTEM_PAGE_KIB = 4n;

const BACKING_CHILDREN = new Set(["locked", "nosharepages", "source", "access", "allocation", "discard", "hugepages"]);
const P = "/domain/memoryBacking";

/**
 * Reads `<memoryBacking>` (none: undefined); anything not in {@link MemoryBacking} is refused.
 * Huge pages are resolved per RAM block by {@link hugepageFor} (they need the host's mounts).
 */
export function readMemoryBacking(root: XmlElement): MemoryBacking | undefined {
  const mb = firstChild(root, "memoryBacking");
  if (!mb) return undefined;
  for (const a of mb.attrs) throw unsupported(`${P}/@${a.name}`, a.value, "remove it or apply through libvirt");
  for (const c of childElements(mb))
    if (!BACKING_CHILDREN.has(c.name))
      throw unsupported(`${P}/${c.name}`, c.name, "remove it or apply through libvirt");
  const hp = firstChild(mb, "hugepages");
  let hugepages: { sizeKiB: bigint | undefined; nodeset: number[] | undefined }[] | undefined;
  if (hp) {
    for (const a of hp.attrs) throw unsupported(`${P}/hugepages/@${a.name}`, a.value, "remove it");
    hugepages = childElements(hp).map((pg, i) => {
      const path = `${P}/hugepages/page[${i + 1}]`;
      if (pg.name !== "page") throw unsupported(`${P}/hugepages/${pg.name}`, pg.name, "remove it");
      for (const a of pg.attrs)
        if (!["size", "unit", "nodeset"].includes(a.name))
          throw unsupported(`${path}/@${a.name}`, a.value, "remove it");
      const size = getAttr(pg, "size");
      const sizeKiB = size === undefined ? undefined : toKiB(size, getAttr(pg, "unit"), `${path}/@size`);
      const ns = getAttr(pg, "nodeset");
      const members = ns === undefined ? undefined : parseBitmap(ns);
      if (ns !== undefined && (members === undefined || members.length === 0))
        throw new DomainXmlError(`Invalid value of 'nodeset': ${ns}`, {
          path: `${path}/@nodeset`,
          value: ns,
          allowed: "a libvirt bitmap of guest NUMA cells, such as 0-1",
          fix: "write e.g. nodeset='0'",
        });
      return { sizeKiB, nodeset: members };
    });
    const masters = hugepages.filter((x) => x.nodeset === undefined);
    if (masters.length > 1)
      throw new DomainXmlError(
        `two master hugepages detected: ${masters.map((x) => String(x.sizeKiB ?? "")).join(" and ")}`,
        {
          path: `${P}/hugepages`,
          fix: "give every page but one a nodeset",
        },
      );
    if (hugepages.length === 0) hugepages = [{ sizeKiB: undefined, nodeset: undefined }];
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
  const source = oneOf(`${P}/source/@type`, getAttr(only("source", ["type"]), "type"), ["file", "anonymous", "memfd"]);
  const access = oneOf(`${P}/access/@mode`, getAttr(only("access", ["mode"]), "mode"), ["shared", "private"]);
  const allocation = only("allocation", ["mode", "threads"]);
  const mode = oneOf(`${P}/allocation/@mode`, getAttr(allocation, "mode"), ["immediate", "ondemand"]);
  const threads = getAttr(allocation, "threads");
  if (threads !== undefined && !/^[1-9][0-9]{0,4}$/.test(threads))
    throw new DomainXmlError("invalid thread count", {
      path: `${P}/allocation/@threads`,
      value: threads,
      allowed: "a whole number from 1 to 99999",
      fix: "write e.g. threads='4', or remove it",
    });
  return {
    locked: only("locked", []) !== undefined,
    noSharePages: only("nosharepages", []) !== undefined,
    source,
    access,
    prealloc: mode === "immediate",
    preallocThreads: threads === undefined ? undefined : Number(threads),
    discard: only("discard", []) !== undefined,
    onDemand: mode === "ondemand",
    hugepages,
  };
}

/** The huge pages backing one RAM block: their size and the hugetlbfs mount that serves it. */
export interface HugePage {
  readonly sizeKiB: number;
  readonly path: string;
}

/**
 * The huge pages of one RAM block (`cell`: a NUMA cell id, undefined for the main RAM), as
 * libvirt picks them (qemuBuildMemoryBackendProps): the page whose nodeset holds the cell, else
 * the page without nodeset; the host's default size when none is written; none for the system
 * page size. Refused in libvirt's words: a nodeset naming no guest cell, a size no hugetlbfs
 * mount serves; without the host's mounts ({@link HostMemoryInfo.hugetlbfs}), any huge page.
 */
export function hugepageFor(
  b: MemoryBacking | undefined,
  cell: number | undefined,
  cellIds: readonly number[],
  host: HostMemoryInfo,
): HugePage | undefined {
  if (!b?.hugepages) return undefined;
  const cells = cellIds.length === 0 ? [0] : cellIds;
  b.hugepages.forEach((pg, i) => {
    const missing = pg.nodeset?.find((n) => !cells.includes(n));
    if (missing !== undefined)
      throw new DomainXmlError(`hugepages: node ${missing} not found`, {
        path: `${P}/hugepages/page[${i + 1}]/@nodeset`,
        value: pg.nodeset?.join(","),
        allowed: `the guest NUMA cells: ${cells.join(",")}`,
        fix: "name guest NUMA cell ids",
      });
  });
  // without guest NUMA cells every page serves the one RAM block: two pages are two masters
  if (cellIds.length === 0 && b.hugepages.length > 1) {
    const order = [...b.hugepages.filter((pg) => pg.nodeset), ...b.hugepages.filter((pg) => !pg.nodeset)];
    throw new DomainXmlError(
      `two master hugepages detected: ${order.map((pg) => String(pg.sizeKiB ?? host.hugetlbfs?.defaultSizeKiB ?? "")).join(" and ")}`,
      { path: `${P}/hugepages`, fix: "keep one <page> for a guest without NUMA cells" },
    );
  }
  const at = cell ?? 0;
  const page = b.hugepages.find((pg) => pg.nodeset?.includes(at)) ?? b.hugepages.find((pg) => !pg.nodeset);
  if (!page) return undefined;
  if (!host.hugetlbfs)
    throw unsupported(
      `${P}/hugepages`,
      undefined,
      "the host's hugetlbfs mounts are unknown here (libvirt needs one too): mount hugetlbfs on the host, or remove <hugepages>",
    );
  const sizeKiB = page.sizeKiB ?? BigInt(host.hugetlbfs.defaultSizeKiB);
  if (sizeKiB === SYSTEM_PAGE_KIB) return undefined;
  const mount = host.hugetlbfs.mounts.find((m) => BigInt(m.sizeKiB) === sizeKiB);
  if (!mount)
    throw new DomainXmlError(`Unable to find any usable hugetlbfs mount for ${sizeKiB} KiB`, {
      path: `${P}/hugepages`,
      value: String(sizeKiB),
      allowed: host.hugetlbfs.mounts.map((m) => `${m.sizeKiB} KiB (${m.path})`).join(", ") || "no hugetlbfs mount",
      fix: "mount hugetlbfs for that page size on the host, or use a page size it has a mount for",
    });
  return { sizeKiB: Number(sizeKiB), path: mount.path };
}

function oneOf(path: string, value: string | undefined, allowed: readonly string[]): string | undefined {
  if (value !== undefined && !allowed.includes(value))
    throw new DomainXmlError("invalid value", {
      path,
      value,
      allowed: allowed.join(", "),
      fix: `write one of ${allowed.join(", ")}`,
    });
  return value;
}

/**
 * What a NUMA cell says of its own RAM: `memAccess` (shared, private) and `discard` (yes, no),
 * each overriding `<memoryBacking>` for that cell, as in libvirt.
 */
export interface CellMemory {
  readonly memAccess?: string;
  readonly discard?: string;
}

/** Reads and checks a cell's `memAccess` and `discard` (libvirt: "Invalid value for attribute 'memAccess'"). */
export function readCellMemory(cell: XmlElement, path: string): CellMemory {
  const memAccess = oneOf(`${path}/@memAccess`, getAttr(cell, "memAccess"), ["shared", "private"]);
  const discard = oneOf(`${path}/@discard`, getAttr(cell, "discard"), ["yes", "no"]);
  return { ...(memAccess === undefined ? {} : { memAccess }), ...(discard === undefined ? {} : { discard }) };
}

/**
 * The `-machine` options of `<memoryBacking>`, after dump-guest-core as libvirt writes them:
 * `mem-merge=off` for `<nosharepages/>`, `nvdimm=on` beside an nvdimm memory device, `hmat=on` for a
 * NUMA HMAT ({@link readHmat}), and
 * `memory-backend=pc.ram` when the main RAM needs its own backend object ({@link mainRamBackend}).
 */
export function machineMemoryOptions(root: XmlElement, hasNumaCells: boolean, host: HostMemoryInfo): string[] {
  const b = readMemoryBacking(root);
  const out: string[] = [];
  if (b?.noSharePages) out.push("mem-merge=off");
  if (hasNvdimm(root)) out.push("nvdimm=on");
  if (hasHmat(root)) out.push("hmat=on");
  if (
    !hasNumaCells &&
    needsRamObject(b, undefined, readNumatune(root, [], host.hostNumaNodes).memory, hugepageFor(b, undefined, [], host))
  )
    out.push("memory-backend=pc.ram");
  return out;
}

/** Whether the definition has an nvdimm memory device: libvirt then writes `-machine nvdimm=on`. */
function hasNvdimm(root: XmlElement): boolean {
  const devices = firstChild(root, "devices");
  return !!devices && childElements(devices, "memory").some((m) => getAttr(m, "model") === "nvdimm");
}

/**
 * The QOM type of a RAM backend as libvirt picks it (qemuBuildMemoryBackendProps): memfd for
 * `<source type='memfd'>`; a file for `<source type='file'>` or whenever the access mode is stated
 * (shared or private: a mapping QEMU can share needs a file); else plain RAM.
 */
function ramBackendType(b: MemoryBacking | undefined, cell: CellMemory | undefined, page?: HugePage): string {
  if (b?.source === "memfd") return "memory-backend-memfd";
  const access = cell?.memAccess ?? b?.access;
  if (page || b?.source === "file" || access !== undefined) return "memory-backend-file";
  return "memory-backend-ram";
}

/**
 * One RAM backend object as libvirt writes it (qemuBuildMemoryBackendProps), as QEMU JSON: the
 * type ({@link ramBackendType}); a file's `mem-path` is `dir` (QEMU makes an unlinked file in
 * that directory, so nothing is left behind; libvirt names a file in its own memory_backing_dir);
 * `share` when the access mode is stated; `x-use-canonical-path-for-ramblock-id` false for the
 * main RAM of a file or memfd (so its RAM block keeps the name `pc.ram`); `discard-data` for a
 * file when discard is asked; `prealloc` (and its threads) for immediate allocation; the size.
 */
export function ramBackendObject(
  b: MemoryBacking | undefined,
  cell: CellMemory | undefined,
  id: string,
  bytes: bigint,
  dir: string,
  host?: HostNumaBinding,
  page?: HugePage,
): string {
  const type = ramBackendType(b, cell, page);
  const o: Record<string, unknown> = { "qom-type": type, id };
  if (type === "memory-backend-file") o["mem-path"] = page ? page.path : dir;
  if (page && type === "memory-backend-memfd") {
    o.hugetlb = true;
    o.hugetlbsize = page.sizeKiB * 1024;
  }
  const access = cell?.memAccess ?? b?.access;
  if (access !== undefined && type !== "memory-backend-ram") o.share = access === "shared";
  if (id === "pc.ram" && type !== "memory-backend-ram") o["x-use-canonical-path-for-ramblock-id"] = false;
  // a cell's discard is written as stated (true or false), the domain's <discard/> as true
  if (type === "memory-backend-file" && cell?.discard !== undefined) o["discard-data"] = cell.discard === "yes";
  else if (type === "memory-backend-file" && b?.discard) o["discard-data"] = true;
  // huge pages are preallocated unless allocation is on demand (libvirt: hugepages imply prealloc)
  const prealloc = (b?.prealloc ?? false) || (page !== undefined && !b?.onDemand);
  if (prealloc) o.prealloc = true;
  if (prealloc && b?.preallocThreads !== undefined) o["prealloc-threads"] = b.preallocThreads;
  // the size as a JSON number of any length (a bigint has no JSON form), then the host binding
  const bind = host ? `,"host-nodes":${JSON.stringify(host.nodes)},"policy":${JSON.stringify(host.policy)}` : "";
  return `${JSON.stringify(o).slice(0, -1)},"size":${bytes}${bind}}`;
}

/** Whether a RAM block needs a backend other than the plain RAM QEMU makes from `-m` alone. */
export function needsRamObject(
  b: MemoryBacking | undefined,
  cell: CellMemory | undefined,
  host?: HostNumaBinding,
  page?: HugePage,
): boolean {
  return ramBackendType(b, cell, page) !== "memory-backend-ram" || (b?.prealloc ?? false) || host !== undefined;
}

/**
 * The main RAM backend `pc.ram` of a definition without NUMA cells, when `<memoryBacking>` asks
 * for more than plain RAM (libvirt writes a plain one too; QEMU makes that one itself from `-m`).
 */
export function mainRamBackend(root: XmlElement, bytes: bigint, dir: string, info: HostMemoryInfo): string | undefined {
  const b = readMemoryBacking(root);
  const host = readNumatune(root, [], info.hostNumaNodes).memory;
  const page = hugepageFor(b, undefined, [], info);
  return needsRamObject(b, undefined, host, page)
    ? ramBackendObject(b, undefined, "pc.ram", bytes, dir, host, page)
    : undefined;
}

/** `-overcommit mem-lock=`: on for `<memoryBacking><locked/>`. */
export function memLock(root: XmlElement): string {
  return readMemoryBacking(root)?.locked ? "mem-lock=on" : "mem-lock=off";
}

/** A host NUMA binding of guest RAM: the backend's `host-nodes` and `policy` (QEMU's mbind). */
export interface HostNumaBinding {
  readonly nodes: readonly number[];
  readonly policy: string;
}

/** `<numatune>` modes as QEMU's memory backend policies (libvirt's qemuBuildMemoryBackendProps). */
const NUMATUNE_POLICY: Readonly<Record<string, string>> = {
  strict: "bind",
  preferred: "preferred",
  interleave: "interleave",
};

/** `<numatune>` read for the RAM backends: the domain's binding and each cell's (`memnode`). */
export interface Numatune {
  /** `<memory mode nodeset>`: every RAM block without its own memnode. */
  readonly memory: HostNumaBinding | undefined;
  /** `<memnode cellid>`: that cell's RAM. */
  readonly memnodes: ReadonlyMap<number, HostNumaBinding>;
}

/**
 * Reads `<numatune>` as libvirt builds it on the command line: each RAM backend (the main RAM,
 * or each NUMA cell's) gets `host-nodes` and `policy` from its `<memnode>`, else from `<memory>`.
 * Refused: `placement='auto'` (numad picks the nodes: libvirt asks numad, we cannot) and the
 * `restrictive` mode (libvirt applies it through the cgroup cpuset controller only, no argument,
 * and the QEMU-direct backend manages no cgroups). libvirt's own rules are checked: a nodeset is
 * required, a valid non-empty bitmap; memnode needs guest NUMA cells and names one of them; with
 * `hostNodes` (the host's online NUMA nodes) every node must exist ("NUMA node N is unavailable").
 */
export function readNumatune(root: XmlElement, cellIds: readonly number[], hostNodes?: readonly number[]): Numatune {
  const nt = firstChild(root, "numatune");
  if (!nt) return { memory: undefined, memnodes: new Map() };
  const T = "/domain/numatune";
  for (const a of nt.attrs) throw unsupported(`${T}/@${a.name}`, a.value, "remove it or apply through libvirt");
  const binding = (el: XmlElement, path: string, allowed: readonly string[]): HostNumaBinding => {
    for (const a of el.attrs)
      if (!allowed.includes(a.name))
        throw unsupported(`${path}/@${a.name}`, a.value, "remove it or apply through libvirt");
    const placement = getAttr(el, "placement");
    if (placement === "auto")
      throw unsupported(
        `${path}/@placement`,
        placement,
        "automatic NUMA placement asks numad, which only libvirt does: write placement='static' with a nodeset, or apply through libvirt",
      );
    oneOf(`${path}/@placement`, placement, ["static"]);
    const mode = getAttr(el, "mode") ?? "strict";
    if (mode === "restrictive")
      throw unsupported(
        `${path}/@mode`,
        mode,
        "libvirt applies 'restrictive' through the cgroup cpuset controller, which the QEMU-direct backend does not manage: use strict, preferred or interleave, or apply through libvirt",
      );
    const policy = NUMATUNE_POLICY[oneOf(`${path}/@mode`, mode, Object.keys(NUMATUNE_POLICY))!]!;
    const nodeset = getAttr(el, "nodeset");
    if (nodeset === undefined)
      throw new DomainXmlError("nodeset for NUMA memory tuning must be set if 'placement' is 'static'", {
        path: `${path}/@nodeset`,
        fix: "write the host NUMA nodes, e.g. nodeset='0'",
      });
    const list = canonicalBitmap(nodeset);
    const nodes: number[] = [];
    for (const r of list ? list.split(",").filter((x) => x !== "") : []) {
      const [lo, hi] = r.split("-").map(Number);
      for (let n = lo!; n <= (hi ?? lo!); n++) nodes.push(n);
    }
    if (nodes.length === 0)
      throw new DomainXmlError(`Invalid value of 'nodeset': ${nodeset}`, {
        path: `${path}/@nodeset`,
        value: nodeset,
        allowed: "a libvirt bitmap of host NUMA nodes with at least one node, such as 0-1",
        fix: "write e.g. nodeset='0'",
      });
    const missing = hostNodes && nodes.find((n) => !hostNodes.includes(n));
    if (hostNodes && missing !== undefined)
      throw new DomainXmlError(`NUMA node ${missing} is unavailable`, {
        path: `${path}/@nodeset`,
        value: nodeset,
        allowed: `the host's NUMA nodes: ${hostNodes.join(",")}`,
        fix: "name host NUMA nodes that exist",
      });
    return { nodes, policy };
  };
  const children = childElements(nt);
  for (const c of children)
    if (c.name !== "memory" && c.name !== "memnode")
      throw unsupported(`${T}/${c.name}`, c.name, "remove it or apply through libvirt");
  const memEl = firstChild(nt, "memory");
  const memory = memEl ? binding(memEl, `${T}/memory`, ["mode", "nodeset", "placement"]) : undefined;
  const memnodes = new Map<number, HostNumaBinding>();
  childElements(nt, "memnode").forEach((m, i) => {
    const path = `${T}/memnode[${i + 1}]`;
    if (cellIds.length === 0)
      throw new DomainXmlError("Element 'memnode' is invalid without any guest NUMA cells", {
        path,
        fix: "add <cpu><numa><cell .../></numa></cpu>, or remove <memnode>",
      });
    const cellid = getAttr(m, "cellid");
    const id = cellid !== undefined && /^[0-9]+$/.test(cellid) ? Number(cellid) : NaN;
    if (!cellIds.includes(id))
      throw new DomainXmlError("memnode names no guest NUMA cell", {
        path: `${path}/@cellid`,
        value: cellid,
        allowed: cellIds.join(", "),
        fix: "write the id of a <cell>",
      });
    if (memnodes.has(id))
      throw new DomainXmlError("two memnode elements for one cell", {
        path: `${path}/@cellid`,
        value: cellid,
        fix: "keep one",
      });
    memnodes.set(id, binding(m, path, ["cellid", "mode", "nodeset"]));
  });
  return { memory, memnodes };
}

/** libvirt's directory for file-backed guest RAM (qemu.conf `memory_backing_dir`). */
export const LIBVIRT_MEMORY_BACKING_DIR = "/var/lib/libvirt/qemu/ram";

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

/**
 * The `-cpu` options of `<cpu><cache>` and `<cpu><maxphysaddr>` as libvirt writes them after the
 * model, features and timers (qemuBuildCpuCommandLine):
 * - cache `emulate` (level 3 only): `l3-cache=on`, and `host-cache-info=off` for a host-passthrough
 *   or maximum CPU; `passthrough` (no level; host-passthrough or maximum only):
 *   `host-cache-info=on,l3-cache=off`; `disable`: `host-cache-info=off` (host-passthrough or
 *   maximum) and `l3-cache=off`;
 * - maxphysaddr `passthrough` (host-passthrough or maximum; no bits): `host-phys-bits=on` and
 *   `host-phys-bits-limit=N` for `limit`; `emulate`: `phys-bits=N` for `bits`, without bits
 *   `host-phys-bits=off` (host-passthrough or maximum).
 * What libvirt refuses is refused in its words.
 */
export function cpuCacheAndAddressOptions(root: XmlElement, mode: string): string[] {
  const cpu = firstChild(root, "cpu");
  if (!cpu) return [];
  const hostCpu = mode === "host-passthrough" || mode === "maximum";
  const out: string[] = [];
  const invalid = (reason: string, path: string, value: string | undefined, fix: string) =>
    new DomainXmlError(reason, { path, value, category: "unsupported configuration", fix });
  const cache = firstChild(cpu, "cache");
  if (cache) {
    const C = "/domain/cpu/cache";
    for (const a of cache.attrs)
      if (a.name !== "mode" && a.name !== "level") throw unsupported(`${C}/@${a.name}`, a.value, "remove it");
    const cmode = oneOf(`${C}/@mode`, getAttr(cache, "mode"), ["emulate", "passthrough", "disable"]);
    const level = getAttr(cache, "level");
    if (cmode === undefined)
      throw new DomainXmlError("missing cache mode", {
        path: `${C}/@mode`,
        fix: "write mode='emulate', 'passthrough' or 'disable'",
      });
    if (cmode === "emulate" && level !== "3")
      throw invalid(
        "CPU cache mode 'emulate' can only be used with level='3'",
        `${C}/@level`,
        level,
        "write level='3'",
      );
    if (cmode !== "emulate" && level !== undefined)
      throw invalid(`unsupported CPU cache level for mode '${cmode}'`, `${C}/@level`, level, "remove level");
    if (cmode === "passthrough" && !hostCpu)
      throw invalid(
        "CPU cache mode 'passthrough' can only be used with 'host-passthrough' / 'maximum' CPUs",
        `${C}/@mode`,
        cmode,
        "use <cpu mode='host-passthrough'>, or cache mode='emulate' level='3'",
      );
    if (cmode === "emulate") out.push("l3-cache=on");
    if (cmode === "passthrough") out.push("host-cache-info=on");
    if (cmode !== "passthrough" && hostCpu) out.push("host-cache-info=off");
    if (cmode !== "emulate") out.push("l3-cache=off");
  }
  const addr = firstChild(cpu, "maxphysaddr");
  if (addr) {
    const A = "/domain/cpu/maxphysaddr";
    for (const a of addr.attrs)
      if (!["mode", "bits", "limit"].includes(a.name)) throw unsupported(`${A}/@${a.name}`, a.value, "remove it");
    const amode = oneOf(`${A}/@mode`, getAttr(addr, "mode"), ["passthrough", "emulate"]);
    const num = (attr: string) => {
      const v = getAttr(addr, attr);
      if (v === undefined) return undefined;
      if (!/^[0-9]{1,3}$/.test(v) || Number(v) > 255)
        throw new DomainXmlError("invalid number of address bits", {
          path: `${A}/@${attr}`,
          value: v,
          allowed: "a whole number from 0 to 255",
          fix: `write e.g. ${attr}='42'`,
        });
      return Number(v);
    };
    const bits = num("bits");
    const limit = num("limit");
    if (amode === "passthrough") {
      if (bits !== undefined)
        throw invalid(
          "CPU maximum physical address bits number specification cannot be used with mode='passthrough'",
          `${A}/@bits`,
          String(bits),
          "remove bits, or use mode='emulate'",
        );
      if (!hostCpu)
        throw unsupported(
          `${A}/@mode`,
          amode,
          "maxphysaddr passthrough needs <cpu mode='host-passthrough'> or 'maximum'",
        );
      out.push("host-phys-bits=on");
      if (limit !== undefined && limit > 0) out.push(`host-phys-bits-limit=${limit}`);
    } else if (amode === "emulate") {
      if (limit !== undefined) throw unsupported(`${A}/@limit`, String(limit), "limit goes with mode='passthrough'");
      if (bits !== undefined) out.push(`phys-bits=${bits}`);
      else if (hostCpu) out.push("host-phys-bits=off");
      else throw unsupported(`${A}/@bits`, undefined, "write the number of bits, e.g. bits='42'");
    } else
      throw new DomainXmlError("missing maxphysaddr mode", {
        path: `${A}/@mode`,
        fix: "write mode='passthrough' or 'emulate'",
      });
  }
  return out;
}

/** `<hyperv>` enlightenments in libvirt's order (virDomainHyperv) with QEMU's `-cpu` property names. */
const HYPERV_FEATURES: readonly (readonly [string, string])[] = [
  ["relaxed", "hv-relaxed"],
  ["vapic", "hv-vapic"],
  ["spinlocks", "hv-spinlocks"],
  ["vpindex", "hv-vpindex"],
  ["runtime", "hv-runtime"],
  ["synic", "hv-synic"],
  ["stimer", "hv-stimer"],
  ["reset", "hv-reset"],
  ["vendor_id", "hv-vendor-id"],
  ["frequencies", "hv-frequencies"],
  ["reenlightenment", "hv-reenlightenment"],
  ["tlbflush", "hv-tlbflush"],
  ["ipi", "hv-ipi"],
  ["evmcs", "hv-evmcs"],
  ["avic", "hv-avic"],
  ["emsr_bitmap", "hv-emsr-bitmap"],
  ["xmm_input", "hv-xmm-input"],
];

function onOff(el: XmlElement, path: string): boolean {
  const state = oneOf(`${path}/@state`, getAttr(el, "state"), ["on", "off"]);
  if (state === undefined)
    throw new DomainXmlError("missing state", { path: `${path}/@state`, fix: "write state='on' or 'off'" });
  return state === "on";
}

/**
 * The `-cpu` options of `<features>` libvirt writes after the paravirtual EOI
 * (qemuBuildCpuCommandLine): `<pvspinlock state>` as `kvm-pv-unhalt=on|off`, then `<hyperv>`:
 * `mode='passthrough'` as `hv-passthrough=on`, else each enlightenment that is on, in libvirt's
 * order (spinlocks with its retries in hex, vendor_id with its value, stimer's and tlbflush's
 * sub-features). An element or attribute not listed is refused naming it.
 */
export function featureCpuOptions(root: XmlElement): string[] {
  const features = firstChild(root, "features");
  if (!features) return [];
  const out: string[] = [];
  const pv = firstChild(features, "pvspinlock");
  if (pv) {
    for (const a of pv.attrs)
      if (a.name !== "state") throw unsupported(`/domain/features/pvspinlock/@${a.name}`, a.value, "remove it");
    out.push(`kvm-pv-unhalt=${onOff(pv, "/domain/features/pvspinlock") ? "on" : "off"}`);
  }
  const hv = firstChild(features, "hyperv");
  if (!hv) return out;
  const H = "/domain/features/hyperv";
  const mode = oneOf(`${H}/@mode`, getAttr(hv, "mode"), ["custom", "passthrough"]) ?? "custom";
  for (const a of hv.attrs) if (a.name !== "mode") throw unsupported(`${H}/@${a.name}`, a.value, "remove it");
  if (mode === "passthrough") {
    if (childElements(hv).length > 0)
      throw unsupported(
        `${H}/${childElements(hv)[0]!.name}`,
        undefined,
        "with mode='passthrough' the host's enlightenments are all passed: remove the children",
      );
    return [...out, "hv-passthrough=on"];
  }
  const known = new Map(HYPERV_FEATURES);
  for (const c of childElements(hv))
    if (!known.has(c.name)) throw unsupported(`${H}/${c.name}`, c.name, "remove it or apply through libvirt");
  for (const [name, prop] of HYPERV_FEATURES) {
    const el = firstChild(hv, name);
    if (!el) continue;
    const path = `${H}/${name}`;
    const allowedAttrs =
      name === "spinlocks" ? ["state", "retries"] : name === "vendor_id" ? ["state", "value"] : ["state"];
    for (const a of el.attrs)
      if (!allowedAttrs.includes(a.name)) throw unsupported(`${path}/@${a.name}`, a.value, "remove it");
    const subs = name === "stimer" ? ["direct"] : name === "tlbflush" ? ["direct", "extended"] : [];
    for (const k of childElements(el))
      if (!subs.includes(k.name)) throw unsupported(`${path}/${k.name}`, k.name, "remove it");
    if (!onOff(el, path)) continue;
    if (name === "spinlocks") {
      const r = getAttr(el, "retries");
      const n = r !== undefined && /^[0-9]+$/.test(r) ? Number(r) : NaN;
      if (!Number.isSafeInteger(n) || n < 4095 || n > 0xffffffff)
        throw new DomainXmlError("HyperV spinlock retry count must be at least 4095", {
          path: `${path}/@retries`,
          value: r,
          allowed: "a whole number from 4095",
          fix: "write e.g. retries='4096'",
        });
      out.push(`${prop}=0x${n.toString(16)}`);
    } else if (name === "vendor_id") {
      const value = getAttr(el, "value") ?? "";
      if (value === "" || value.length > 12 || /[,]/.test(value))
        throw new DomainXmlError("HyperV vendor_id value must not be empty nor more than 12 characters", {
          path: `${path}/@value`,
          value,
          allowed: "1 to 12 characters, no comma",
          fix: "write e.g. value='KVM Hv'",
        });
      out.push(`${prop}=${value}`);
    } else out.push(`${prop}=on`);
    for (const k of childElements(el)) {
      if (!onOff(k, `${path}/${k.name}`)) continue;
      out.push(
        name === "stimer"
          ? "hv-stimer-direct=on"
          : k.name === "direct"
            ? "hv-tlbflush-direct=on"
            : "hv-tlbflush-ext=on",
      );
    }
  }
  return out;
}

/**
 * `<features><smm state>`: `-machine smm=on|off` (written after usb=off, as libvirt does) and, for
 * `<tseg>` on q35, `-global mch.extended-tseg-mbytes=N`, refused as libvirt refuses it elsewhere
 * or when not a whole number of MiB.
 */
export function smmOptions(root: XmlElement): { machine: string[]; globals: string[] } {
  const smm = firstChild(firstChild(root, "features") ?? root, "smm");
  if (!smm || !firstChild(root, "features")) return { machine: [], globals: [] };
  const S = "/domain/features/smm";
  for (const a of smm.attrs) if (a.name !== "state") throw unsupported(`${S}/@${a.name}`, a.value, "remove it");
  const on = onOff(smm, S);
  const globals: string[] = [];
  for (const k of childElements(smm)) if (k.name !== "tseg") throw unsupported(`${S}/${k.name}`, k.name, "remove it");
  const tseg = firstChild(smm, "tseg");
  if (tseg && on) {
    const machine = getAttr(firstChild(firstChild(root, "os") ?? root, "type"), "machine") ?? "pc";
    if (!/^(q35|pc-q35-)/.test(machine))
      throw new DomainXmlError("SMM TSEG is only supported with q35 machine type", {
        path: `${S}/tseg`,
        category: "unsupported configuration",
        fix: "use a q35 machine type, or remove <tseg>",
      });
    const kib = toKiB(textContent(tseg)?.trim() ?? "", getAttr(tseg, "unit") ?? "MiB", `${S}/tseg`);
    if (kib % 1024n !== 0n)
      throw new DomainXmlError("SMM TSEG size must be divisible by 1 MiB", {
        path: `${S}/tseg`,
        value: textContent(tseg),
        category: "unsupported configuration",
        fix: "write a whole number of MiB, e.g. <tseg unit='MiB'>48</tseg>",
      });
    globals.push(`mch.extended-tseg-mbytes=${kib / 1024n}`);
  }
  return { machine: [`smm=${on ? "on" : "off"}`], globals };
}

/**
 * `<iothreads>` and `<iothreadids>` as libvirt writes them after `-smp`
 * (qemuBuildIOThreadCommandLine): one `-object iothread` per thread, the `<iothread id>`s in
 * document order first, then the lowest unused ids up to the `<iothreads>` count. Thread pool
 * sizes, polling and `<defaultiothread>` are not built: refused, naming them.
 */
export function iothreadObjects(root: XmlElement): string[] {
  const count = firstChild(root, "iothreads");
  const idsEl = firstChild(root, "iothreadids");
  if (!count && !idsEl) return [];
  const T = "/domain/iothreadids";
  const ids: number[] = [];
  (idsEl ? childElements(idsEl) : []).forEach((t, i) => {
    const path = `${T}/${t.name}[${i + 1}]`;
    if (t.name !== "iothread") throw unsupported(`${T}/${t.name}`, t.name, "remove it");
    for (const a of t.attrs)
      if (a.name !== "id")
        throw unsupported(
          `${path}/@${a.name}`,
          a.value,
          "thread pools are not built: remove it or apply through libvirt",
        );
    for (const k of childElements(t))
      throw unsupported(`${path}/${k.name}`, k.name, "remove it or apply through libvirt");
    const v = getAttr(t, "id");
    const id = v !== undefined && /^[0-9]{1,9}$/.test(v) ? Number(v) : 0;
    if (id < 1)
      throw new DomainXmlError("invalid iothread id", {
        path: `${path}/@id`,
        value: v,
        allowed: "a whole number from 1",
        fix: "write e.g. id='1'",
      });
    if (ids.includes(id))
      throw new DomainXmlError(`duplicate iothread id '${id}' found`, {
        path: `${path}/@id`,
        value: v,
        fix: "give each iothread its own id",
      });
    ids.push(id);
  });
  if (count) for (const a of count.attrs) throw unsupported(`/domain/iothreads/@${a.name}`, a.value, "remove it");
  const text = count ? (textContent(count) ?? "").trim() : String(ids.length);
  if (!/^[0-9]{1,5}$/.test(text))
    throw new DomainXmlError("invalid iothreads count", {
      path: "/domain/iothreads",
      value: text,
      allowed: "a whole number",
      fix: "write e.g. <iothreads>2</iothreads>",
    });
  const all = [...ids];
  for (let n = 1; all.length < Number(text); n++) if (!all.includes(n)) all.push(n);
  return all.map((id) => JSON.stringify({ "qom-type": "iothread", id: `iothread${id}` }));
}

/**
 * The balloon target of `<currentMemory>` in bytes, when it is below `<memory>` (libvirt caps a
 * larger one at `<memory>`, and an equal one sets no target). No argument carries it: libvirt
 * sets it over QMP (`balloon`) once QEMU runs (qemuProcessSetupBalloon), and the QEMU-direct
 * backend does the same. Without a balloon device (`<memballoon model='none'>`) nothing can lower
 * the guest's memory: refused.
 */
export function balloonTargetBytes(root: XmlElement): number | undefined {
  const cur = firstChild(root, "currentMemory");
  const mem = firstChild(root, "memory");
  if (!cur || !mem) return undefined;
  const curKiB = toKiB(textContent(cur)?.trim() ?? "", getAttr(cur, "unit"), "/domain/currentMemory");
  const memKiB = toKiB(textContent(mem)?.trim() ?? "", getAttr(mem, "unit"), "/domain/memory");
  if (curKiB >= memKiB) return undefined;
  const balloon = firstChild(firstChild(root, "devices") ?? root, "memballoon");
  if (balloon && getAttr(balloon, "model") === "none")
    throw unsupported(
      "/domain/currentMemory",
      textContent(cur)?.trim(),
      "a current memory below <memory> needs a balloon device: remove <memballoon model='none'> (or use model='virtio'), or make currentMemory equal to memory",
    );
  return Number(curKiB * 1024n);
}

/** A guest NUMA cell as HMAT needs it: its id, whether it has vCPUs, its `<cache>` elements. */
export interface HmatCell {
  readonly id: number;
  readonly hasCpus: boolean;
  readonly el: XmlElement;
  readonly path: string;
}

/** The HMAT of the guest NUMA cells (`<cell><cache>`, `<interconnects>`), as libvirt writes it. */
export interface Hmat {
  /** Each cell's `initiator=` on `-numa node` (libvirt's virDomainNumaGetNodeInitiator). */
  readonly initiators: ReadonlyMap<number, number>;
  /** The `-numa hmat-lb,...` and `-numa hmat-cache,...` values, in libvirt's order. */
  readonly numaArgs: readonly string[];
}

const HMAT_ASSOCIATIVITY: Readonly<Record<string, string>> = { none: "none", direct: "direct", full: "complex" };
const HMAT_POLICY: Readonly<Record<string, string>> = {
  none: "none",
  writeback: "write-back",
  writethrough: "write-through",
};
const HMAT_HIERARCHY = ["memory", "first-level", "second-level", "third-level"];

/** `<size value unit>` / `<line value unit>` of a cache, in KiB or bytes. */
function hmatValue(el: XmlElement | undefined, path: string, unitOf: "KiB" | "B"): bigint {
  const v = getAttr(el, "value");
  if (!el || v === undefined)
    throw new DomainXmlError("missing value", {
      path,
      fix: `state <${path.split("/").pop()} value='N' unit='${unitOf}'/>`,
    });
  const kib = toKiB(v, getAttr(el, "unit") ?? unitOf, `${path}/@value`);
  if (unitOf === "KiB") return kib;
  // bytes: toKiB rounds up to KiB, so scale the written value ourselves
  const unit = getAttr(el, "unit") ?? "B";
  if (unit !== "B" && unit !== "b" && unit !== "bytes")
    throw new DomainXmlError("invalid unit", {
      path: `${path}/@unit`,
      value: unit,
      allowed: "B",
      fix: "write unit='B'",
    });
  return BigInt(v);
}

/**
 * Reads the HMAT of `<cpu><numa>` (none when it states no `<cache>` nor `<interconnects>`) as
 * libvirt builds it (qemuBuildNumaCommandLine): `-machine hmat=on`, each cell's initiator (itself
 * when it has vCPUs, else the initiator of its best latency, else of its best bandwidth, else the
 * first cell with vCPUs), then per `<latency>`/`<bandwidth>` a `-numa hmat-lb` and per cell cache a
 * `-numa hmat-cache`. libvirt's rules are checked: interconnects name existing cells, an initiator
 * has vCPUs, a `cache` level exists in the target cell.
 */
export function readHmat(numa: XmlElement | undefined, cells: readonly HmatCell[]): Hmat | undefined {
  if (!numa) return undefined;
  const ics = childElements(numa, "interconnects");
  const hasCache = cells.some((c) => childElements(c.el, "cache").length > 0);
  if (ics.length === 0 && !hasCache) return undefined;
  const N = "/domain/cpu/numa";
  const byId = new Map(cells.map((c) => [c.id, c]));
  const cacheLevels = new Map<number, number[]>();
  const cacheArgs: string[] = [];
  for (const c of cells) {
    const levels: number[] = [];
    childElements(c.el, "cache").forEach((k, i) => {
      const path = `${c.path}/cache[${i + 1}]`;
      for (const a of k.attrs)
        if (!["level", "associativity", "policy"].includes(a.name))
          throw unsupported(`${path}/@${a.name}`, a.value, "remove it or apply through libvirt");
      for (const ch of childElements(k))
        if (ch.name !== "size" && ch.name !== "line")
          throw unsupported(`${path}/${ch.name}`, ch.name, "remove it or apply through libvirt");
      const level = getAttr(k, "level") ?? "";
      if (!/^[1-3]$/.test(level))
        throw new DomainXmlError("invalid cache level", {
          path: `${path}/@level`,
          value: level,
          allowed: "1, 2, 3",
          fix: "write level='1'",
        });
      if (levels.includes(Number(level)))
        throw new DomainXmlError(`Duplicate cache level '${level}' for NUMA node '${c.id}'`, {
          path: `${path}/@level`,
          value: level,
          fix: "describe each cache level once",
        });
      levels.push(Number(level));
      const assoc = oneOf(`${path}/@associativity`, getAttr(k, "associativity"), Object.keys(HMAT_ASSOCIATIVITY));
      const policy = oneOf(`${path}/@policy`, getAttr(k, "policy"), Object.keys(HMAT_POLICY));
      if (assoc === undefined || policy === undefined)
        throw new DomainXmlError("missing cache associativity or policy", {
          path,
          fix: "write associativity='direct' policy='writeback' (or none)",
        });
      const size = hmatValue(firstChild(k, "size"), `${path}/size`, "KiB");
      const line = firstChild(k, "line") ? hmatValue(firstChild(k, "line"), `${path}/line`, "B") : 0n;
      cacheArgs.push(
        `hmat-cache,node-id=${c.id},size=${size}K,level=${level},associativity=${HMAT_ASSOCIATIVITY[assoc]},policy=${HMAT_POLICY[policy]},line=${line}`,
      );
    });
    cacheLevels.set(c.id, levels);
  }
  const links: { type: string; initiator: number; target: number; value: bigint }[] = [];
  const lbArgs: string[] = [];
  if (ics.length > 1) throw unsupported(`${N}/interconnects[2]`, undefined, "write one <interconnects>");
  for (const ic of ics) {
    for (const a of ic.attrs) throw unsupported(`${N}/interconnects/@${a.name}`, a.value, "remove it");
    childElements(ic).forEach((l, i) => {
      const path = `${N}/interconnects/${l.name}[${i + 1}]`;
      if (l.name !== "latency" && l.name !== "bandwidth")
        throw unsupported(path, l.name, "write <latency> or <bandwidth>");
      for (const a of l.attrs)
        if (!["initiator", "target", "cache", "type", "value", "unit"].includes(a.name))
          throw unsupported(`${path}/@${a.name}`, a.value, "remove it");
      const num = (attr: string) => {
        const v = getAttr(l, attr);
        if (v === undefined || !/^[0-9]+$/.test(v))
          throw new DomainXmlError(`invalid ${attr}`, {
            path: `${path}/@${attr}`,
            value: v,
            allowed: "a whole number",
            fix: `write ${attr}='0'`,
          });
        return Number(v);
      };
      const initiator = num("initiator");
      const target = num("target");
      for (const [attr, id] of [
        ["initiator", initiator],
        ["target", target],
      ] as const)
        if (!byId.has(id))
          throw new DomainXmlError(`'${attr}' refers to a non-existent NUMA node`, {
            path: `${path}/@${attr}`,
            value: String(id),
            allowed: `a guest NUMA cell: ${cells.map((c) => c.id).join(", ")}`,
            fix: "name a <cell> id",
          });
      if (!byId.get(initiator)!.hasCpus)
        throw new DomainXmlError("NUMA nodes without CPUs can't be initiator", {
          path: `${path}/@initiator`,
          value: String(initiator),
          fix: "name a cell with cpus as the initiator",
        });
      const cache = getAttr(l, "cache") === undefined ? 0 : num("cache");
      if (cache > 0 && !cacheLevels.get(target)!.includes(cache))
        throw new DomainXmlError("'cache' refers to a non-existent NUMA node cache", {
          path: `${path}/@cache`,
          value: String(cache),
          allowed: `the cache levels of cell ${target}: ${cacheLevels.get(target)!.join(", ") || "none"}`,
          fix: "describe that cache in the target cell, or remove cache",
        });
      const type = oneOf(`${path}/@type`, getAttr(l, "type"), ["access", "read", "write"]) ?? "access";
      let value: bigint;
      let arg: string;
      if (l.name === "latency") {
        value = BigInt(num("value"));
        arg = `latency=${value}`;
      } else {
        value = toKiB(getAttr(l, "value") ?? "", getAttr(l, "unit") ?? "KiB", `${path}/@value`);
        arg = `bandwidth=${value}K`;
      }
      links.push({ type: l.name, initiator, target, value });
      lbArgs.push(
        `hmat-lb,initiator=${initiator},target=${target},hierarchy=${HMAT_HIERARCHY[cache]},data-type=${type}-${l.name},${arg}`,
      );
    });
  }
  const firstWithCpus = cells.find((c) => c.hasCpus)?.id;
  const initiators = new Map<number, number>();
  for (const c of cells) {
    if (c.hasCpus) {
      initiators.set(c.id, c.id);
      continue;
    }
    let best: { latency?: [bigint, number]; bandwidth?: [bigint, number] } = {};
    for (const l of links) {
      if (l.target !== c.id) continue;
      if (l.type === "latency" && (!best.latency || l.value < best.latency[0]))
        best = { ...best, latency: [l.value, l.initiator] };
      if (l.type === "bandwidth" && (!best.bandwidth || l.value > best.bandwidth[0]))
        best = { ...best, bandwidth: [l.value, l.initiator] };
    }
    const chosen = best.latency?.[1] ?? best.bandwidth?.[1] ?? firstWithCpus;
    if (chosen === undefined)
      throw new DomainXmlError("no NUMA node with CPUs to be the initiator", {
        path: `${c.path}`,
        fix: "give at least one cell cpus",
      });
    initiators.set(c.id, chosen);
  }
  return { initiators, numaArgs: [...lbArgs, ...cacheArgs] };
}

/** Whether `<cpu><numa>` states HMAT (a `<cell><cache>` or `<interconnects>`): libvirt then writes `-machine hmat=on`. */
function hasHmat(root: XmlElement): boolean {
  const numa = firstChild(firstChild(root, "cpu") ?? root, "numa");
  if (!numa) return false;
  return (
    childElements(numa, "interconnects").length > 0 ||
    childElements(numa, "cell").some((c) => childElements(c, "cache").length > 0)
  );
}
