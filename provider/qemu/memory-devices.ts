/**
 * `<devices><memory>` as libvirt writes them (qemuBuildMemoryDeviceCommandLine,
 * qemuBuildMemoryBackendProps, qemuBuildMemoryDeviceProps): per device a `-object memory-backend-*`
 * (`mem` + the device's alias) and its `-device` — `pc-dimm` and `nvdimm` in a `<maxMemory slots>`
 * slot, `virtio-mem-pci` and `virtio-pmem-pci` at their PCI address. The `sgx-epc` model (Intel
 * SGX enclave memory, host hardware) is refused naming the model.
 *
 * Pure: the host's hugetlbfs mounts and NUMA nodes come in {@link HostMemoryInfo}.
 */
import { DomainXmlError } from "../xml/errors";
import { XmlElement, childElements, firstChild, getAttr, textContent } from "../xml/tree";
import { toKiB } from "../xml/units";
import { parseBitmap } from "../xml/bitmap";
import {
  CellMemory,
  HostMemoryInfo,
  HostNumaBinding,
  HugePage,
  MemoryBacking,
  hugepageFor,
  readCellMemory,
  readMemoryBacking,
  readNumatune,
} from "./memory-cpu";
import { libvirtRule as invalid, unsupportedAllowed as refuse } from "./argv";

/** The memory device models the builder writes, with their alias prefix (qemuAssignDeviceMemoryAlias). */
const MODELS: Readonly<Record<string, string>> = {
  dimm: "dimm",
  nvdimm: "nvdimm",
  "virtio-mem": "virtiomem",
  "virtio-pmem": "virtiopmem",
};

/** What each model may state under `<source>` and `<target>` (libvirt's schema and validation). */
const SOURCE_CHILDREN: Readonly<Record<string, readonly string[]>> = {
  dimm: ["nodemask", "pagesize"],
  "virtio-mem": ["nodemask", "pagesize"],
  nvdimm: ["path", "alignsize", "pmem"],
  "virtio-pmem": ["path"],
};
const TARGET_CHILDREN: Readonly<Record<string, readonly string[]>> = {
  dimm: ["size", "node"],
  nvdimm: ["size", "node", "label", "readonly"],
  "virtio-mem": ["size", "node", "block", "requested", "address"],
  "virtio-pmem": ["size", "address"],
};

/**
 * Memory module sizes on x86 are rounded up to 2 MiB (qemuDomainGetMemoryModuleSizeAlignment:
 * "dimm memory modules require 2MiB alignment").
 */
const MODULE_ALIGN_KIB = 2048n;

/** The guest NUMA cells: id, and what each says of its own RAM (memAccess, discard). */
function guestCells(root: XmlElement): { id: number; mem: CellMemory }[] {
  const numa = firstChild(firstChild(root, "cpu") ?? root, "numa");
  return (numa ? childElements(numa, "cell") : []).map((c, i) => ({
    id: Number(getAttr(c, "id") ?? i),
    mem: readCellMemory(c, `/domain/cpu/numa/cell[${i + 1}]`),
  }));
}

/** A size element (`<size unit=>`, `<block>`, ...) in KiB, refused when missing. */
function sizeOf(el: XmlElement | undefined, path: string, what: string): bigint {
  if (!el) throw invalid(`missing ${what}`, path, undefined, "a size", `state <${what} unit='KiB'>N</${what}>`);
  return toKiB(textContent(el) ?? "", getAttr(el, "unit"), path);
}

/** An address in bytes (`base='0x100000000'`). */
function addressBytes(value: string, path: string): bigint {
  if (!/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(value))
    throw invalid("invalid address", path, value, "an address in bytes", "write base='0x140000000'");
  return BigInt(value);
}

/** One memory device read and checked. */
interface MemoryDevice {
  readonly el: XmlElement;
  readonly path: string;
  readonly model: string;
  readonly sizeKiB: bigint;
  readonly node: number | undefined;
  readonly base: bigint | undefined;
  slot?: number;
}

/** The page size a device asks for (`<source><pagesize>`), as a hugetlbfs mount, or the domain's hugepages. */
function devicePage(
  d: MemoryDevice,
  source: XmlElement | undefined,
  backing: MemoryBacking | undefined,
  cellIds: readonly number[],
  host: HostMemoryInfo,
): HugePage | undefined {
  const ps = source && firstChild(source, "pagesize");
  if (!ps) return hugepageFor(backing, d.node, cellIds, host);
  const path = `${d.path}/source/pagesize`;
  const kib = sizeOf(ps, path, "pagesize");
  if (kib === 4n) return undefined; // the system page size: no huge pages
  if (!host.hugetlbfs)
    throw refuse(
      path,
      String(kib),
      "a page size a hugetlbfs mount of the host serves",
      "the host's hugetlbfs mounts are unknown here (libvirt needs one too): mount hugetlbfs on the host, or remove <pagesize>",
    );
  const mount = host.hugetlbfs.mounts.find((m) => BigInt(m.sizeKiB) === kib);
  if (!mount)
    throw new DomainXmlError(`Unable to find any usable hugetlbfs mount for ${kib} KiB`, {
      path,
      value: String(kib),
      allowed: host.hugetlbfs.mounts.map((m) => `${m.sizeKiB} KiB (${m.path})`).join(", ") || "no hugetlbfs mount",
      fix: `mount hugetlbfs with pagesize=${kib}K on the host, or use a page size it has a mount for`,
    });
  return { sizeKiB: Number(kib), path: mount.path };
}

/** The host NUMA binding of a device's backend: `<source><nodemask>` (strict), else `<numatune>` for its node. */
function deviceBinding(
  d: MemoryDevice,
  source: XmlElement | undefined,
  root: XmlElement,
  cellIds: readonly number[],
  host: HostMemoryInfo,
): HostNumaBinding | undefined {
  const nm = source && firstChild(source, "nodemask");
  if (nm) {
    const path = `${d.path}/source/nodemask`;
    const text = (textContent(nm) ?? "").trim();
    const nodes = parseBitmap(text);
    if (!nodes || nodes.length === 0)
      throw invalid(
        `Invalid value of 'nodemask': ${text}`,
        path,
        text,
        "a libvirt bitmap of host NUMA nodes",
        "write e.g. 0-1",
      );
    const missing = host.hostNumaNodes && nodes.find((n) => !host.hostNumaNodes!.includes(n));
    if (host.hostNumaNodes && missing !== undefined)
      throw invalid(
        `NUMA node ${missing} is unavailable`,
        path,
        text,
        `the host's NUMA nodes: ${host.hostNumaNodes.join(",")}`,
        "name host NUMA nodes that exist",
      );
    return { nodes, policy: "bind" };
  }
  const nt = readNumatune(root, cellIds, host.hostNumaNodes);
  return (d.node !== undefined ? nt.memnodes.get(d.node) : undefined) ?? nt.memory;
}

/**
 * The `-object` of a device's memory backend as libvirt writes it (qemuBuildMemoryBackendProps):
 * nvdimm and virtio-pmem map their `<source><path>` (a file; nvdimm preallocates it unless
 * `<pmem/>`); dimm and virtio-mem are typed like the RAM (`<memoryBacking>` source, huge pages of
 * `<pagesize>` or of the domain for the device's node, access mode: device, then its node's, then
 * the domain's); discard likewise for a file; virtio-mem reserves nothing (`reserve` false) and
 * leaves preallocation to the device.
 */
function backendObject(
  d: MemoryDevice,
  id: string,
  root: XmlElement,
  cells: readonly { id: number; mem: CellMemory }[],
  host: HostMemoryInfo,
  ramDir: string,
): { object: string; prealloc: boolean } {
  const b = readMemoryBacking(root);
  const source = firstChild(d.el, "source");
  const cellIds = cells.map((c) => c.id);
  const cell = cells.find((c) => c.id === d.node)?.mem;
  const access = getAttr(d.el, "access") ?? cell?.memAccess ?? b?.access;
  const discardAttr = getAttr(d.el, "discard") ?? cell?.discard;
  const o: Record<string, unknown> = {};
  let prealloc = b?.prealloc ?? false;
  let type: string;
  const pathEl = source && firstChild(source, "path");
  if (d.model === "nvdimm" || d.model === "virtio-pmem") {
    const path = pathEl && textContent(pathEl)?.trim();
    if (!path)
      throw invalid(
        `path is required for model '${d.model}'`,
        `${d.path}/source/path`,
        undefined,
        "<source><path>FILE</path></source>",
        "give the backing file as <source><path>",
      );
    type = "memory-backend-file";
    o["mem-path"] = path;
    const pmem = source && firstChild(source, "pmem");
    prealloc = d.model === "nvdimm" && !pmem;
  } else {
    const page = devicePage(d, source, b, cellIds, host);
    if (b?.source === "memfd") type = "memory-backend-memfd";
    else if (page || b?.source === "file" || access !== undefined) type = "memory-backend-file";
    else type = "memory-backend-ram";
    if (type === "memory-backend-file") o["mem-path"] = page ? page.path : ramDir;
    if (page && type === "memory-backend-memfd") {
      o.hugetlb = true;
      o.hugetlbsize = page.sizeKiB * 1024;
    }
    if (page && !b?.onDemand) prealloc = true;
    if (type === "memory-backend-file" && discardAttr !== undefined) o["discard-data"] = discardAttr === "yes";
    else if (type === "memory-backend-file" && b?.discard) o["discard-data"] = true;
  }
  if (access !== undefined && type !== "memory-backend-ram") o.share = access === "shared";
  if (d.model === "virtio-mem") o.reserve = false;
  const onBackend = prealloc && d.model !== "virtio-mem";
  if (onBackend) o.prealloc = true;
  if (onBackend && b?.preallocThreads !== undefined) o["prealloc-threads"] = b.preallocThreads;
  const align = source && firstChild(source, "alignsize");
  const pmem = source && firstChild(source, "pmem");
  const tail: string[] = [`"size":${d.sizeKiB * 1024n}`];
  if (align) tail.push(`"align":${sizeOf(align, `${d.path}/source/alignsize`, "alignsize") * 1024n}`);
  if (pmem) tail.push(`"pmem":true`);
  const bind = d.model === "virtio-pmem" ? undefined : deviceBinding(d, source, root, cellIds, host);
  if (bind) tail.push(`"host-nodes":${JSON.stringify(bind.nodes)}`, `"policy":${JSON.stringify(bind.policy)}`);
  const head = JSON.stringify({ "qom-type": type, id, ...o }).slice(0, -1);
  return { object: `${head},${tail.join(",")}}`, prealloc };
}

/** Whether `<maxMemory>` is stated, and its `slots`. */
function maxMemorySlots(root: XmlElement): number | undefined {
  const max = firstChild(root, "maxMemory");
  if (!max) return undefined;
  const slots = getAttr(max, "slots");
  return slots !== undefined && /^[0-9]+$/.test(slots) ? Number(slots) : 0;
}

/** Reads one `<memory>` device: model, size (aligned), node, base address; anything unexpected is refused. */
function readDevice(el: XmlElement, i: number, cellIds: readonly number[]): MemoryDevice {
  const path = `/domain/devices/memory[${i + 1}]`;
  const model = getAttr(el, "model");
  if (model === "sgx-epc")
    throw refuse(
      `${path}/@model`,
      model,
      Object.keys(MODELS).join(", "),
      "SGX enclave memory needs an SGX host (and QEMU's -machine sgx-epc): remove the device, or apply through libvirt",
    );
  if (model === undefined || MODELS[model] === undefined)
    throw refuse(`${path}/@model`, model, Object.keys(MODELS).join(", "), "write one of those models");
  for (const a of el.attrs) {
    if (a.name === "model") continue;
    if (a.name === "access") {
      if (!["shared", "private"].includes(a.value))
        throw invalid(
          "invalid access mode",
          `${path}/@access`,
          a.value,
          "shared, private",
          "write access='shared' or 'private'",
        );
    } else if (a.name === "discard" && model !== "virtio-pmem") {
      if (!["yes", "no"].includes(a.value))
        throw invalid("invalid discard", `${path}/@discard`, a.value, "yes, no", "write discard='yes' or 'no'");
    } else throw refuse(`${path}/@${a.name}`, a.value, "model, access, discard", "remove it or apply through libvirt");
  }
  for (const c of childElements(el))
    if (!["source", "target", "address"].includes(c.name))
      throw refuse(`${path}/${c.name}`, c.name, "source, target, address", "remove it or apply through libvirt");
  const source = firstChild(el, "source");
  for (const a of source?.attrs ?? []) throw refuse(`${path}/source/@${a.name}`, a.value, "none", "remove it");
  for (const c of source ? childElements(source) : [])
    if (!SOURCE_CHILDREN[model]!.includes(c.name))
      throw refuse(
        `${path}/source/${c.name}`,
        c.name,
        SOURCE_CHILDREN[model]!.join(", "),
        `a ${model} device takes no <${c.name}>: remove it`,
      );
  const target = firstChild(el, "target");
  for (const a of target?.attrs ?? [])
    if (!(model === "virtio-mem" && a.name === "dynamicMemslots"))
      throw refuse(`${path}/target/@${a.name}`, a.value, "dynamicMemslots (virtio-mem)", "remove it");
  for (const c of target ? childElements(target) : [])
    if (!TARGET_CHILDREN[model]!.includes(c.name))
      throw refuse(
        `${path}/target/${c.name}`,
        c.name,
        TARGET_CHILDREN[model]!.join(", "),
        `a ${model} device takes no <${c.name}>: remove it or apply through libvirt`,
      );
  const raw = sizeOf(target && firstChild(target, "size"), `${path}/target/size`, "size");
  const sizeKiB = ((raw + MODULE_ALIGN_KIB - 1n) / MODULE_ALIGN_KIB) * MODULE_ALIGN_KIB;
  const nodeEl = target && firstChild(target, "node");
  let node: number | undefined;
  if (nodeEl) {
    const text = (textContent(nodeEl) ?? "").trim();
    if (!/^[0-9]+$/.test(text))
      throw invalid(
        "invalid target node",
        `${path}/target/node`,
        text,
        "a guest NUMA cell id",
        "write e.g. <node>0</node>",
      );
    node = Number(text);
    if (node >= cellIds.length)
      throw invalid(
        `can't add memory backend for guest node '${node}' as the guest has only '${cellIds.length}' NUMA nodes configured`,
        `${path}/target/node`,
        text,
        `a guest NUMA cell id below ${cellIds.length}`,
        "name a <cell> id of <cpu><numa>",
      );
  }
  // dimm-like devices take their address on <address type='dimm' base>, virtio ones on <target><address base>
  const addr = firstChild(el, "address");
  let base: bigint | undefined;
  let slot: number | undefined;
  if (model === "dimm" || model === "nvdimm") {
    if (addr) {
      const type = getAttr(addr, "type");
      if (type !== "dimm")
        throw refuse(`${path}/address/@type`, type, "dimm", "write <address type='dimm' slot='N'/>, or remove it");
      for (const a of addr.attrs)
        if (!["type", "slot", "base"].includes(a.name))
          throw refuse(`${path}/address/@${a.name}`, a.value, "type, slot, base", "remove it");
      const s = getAttr(addr, "slot");
      if (s !== undefined) {
        if (!/^[0-9]+$/.test(s))
          throw invalid("invalid memory slot", `${path}/address/@slot`, s, "a whole number", "write e.g. slot='0'");
        slot = Number(s);
      }
      const b = getAttr(addr, "base");
      if (b !== undefined) base = addressBytes(b, `${path}/address/@base`);
    }
  } else {
    if (addr && getAttr(addr, "type") !== "pci")
      throw refuse(
        `${path}/address/@type`,
        getAttr(addr, "type"),
        "pci",
        `write <address type='pci' .../> for the ${model} device`,
      );
    if (!addr)
      throw refuse(
        `${path}/address`,
        undefined,
        "an explicit PCI address",
        `state <address type='pci' .../> for the ${model} device`,
      );
    const ta = target && firstChild(target, "address");
    for (const a of ta?.attrs ?? [])
      if (a.name !== "base") throw refuse(`${path}/target/address/@${a.name}`, a.value, "base", "remove it");
    const b = ta && getAttr(ta, "base");
    if (b !== undefined) base = addressBytes(b, `${path}/target/address/@base`);
  }
  const dev: MemoryDevice = { el, path, model, sizeKiB, node, base };
  if (slot !== undefined) dev.slot = slot;
  return dev;
}

/**
 * libvirt's slot rules for dimm and nvdimm (qemuDomainAssignMemorySlots,
 * qemuDomainDefValidateMemoryHotplug): every slot below `<maxMemory slots>`, none used twice; a
 * device without one takes the lowest free slot, in document order.
 */
function assignSlots(devs: readonly MemoryDevice[], slots: number): void {
  const dimms = devs.filter((d) => d.model === "dimm" || d.model === "nvdimm");
  if (dimms.length > slots)
    throw invalid(
      `count of memory devices requiring memory slots '${dimms.length}' exceeds slots count '${slots}'`,
      "/domain/maxMemory/@slots",
      String(slots),
      `at least ${dimms.length}`,
      `write <maxMemory slots='${dimms.length}'>`,
    );
  const used = new Set<number>();
  for (const d of dimms) {
    if (d.slot === undefined) continue;
    if (d.slot >= slots)
      throw invalid(
        `memory device slot '${d.slot}' exceeds slots count '${slots}'`,
        `${d.path}/address/@slot`,
        String(d.slot),
        `a slot below ${slots}`,
        "write a lower slot, or more <maxMemory slots>",
      );
    if (used.has(d.slot))
      throw invalid(
        `memory device slot '${d.slot}' is already being used by another memory device`,
        `${d.path}/address/@slot`,
        String(d.slot),
        "a slot no other memory device uses",
        "give each memory device its own slot, or remove <address>",
      );
    used.add(d.slot);
  }
  for (const d of dimms) {
    if (d.slot !== undefined) continue;
    let s = 0;
    while (used.has(s)) s++;
    used.add(s);
    d.slot = s;
  }
}

/**
 * libvirt's checks of virtio-mem sizes (virDomainMemoryDefValidate): the block size a power of
 * two, the size and the requested size multiples of it, the requested size at most the size, the
 * base address aligned to it.
 */
function virtioMemSizes(d: MemoryDevice): { blockKiB: bigint; requestedKiB: bigint } {
  const target = firstChild(d.el, "target");
  const blockKiB = sizeOf(target && firstChild(target, "block"), `${d.path}/target/block`, "block");
  const requestedKiB = sizeOf(target && firstChild(target, "requested"), `${d.path}/target/requested`, "requested");
  const fail = (reason: string, path: string, value: bigint, fix: string) =>
    invalid(reason, path, String(value), `a multiple of the block size (${blockKiB} KiB)`, fix);
  if (blockKiB === 0n || (blockKiB & (blockKiB - 1n)) !== 0n)
    throw invalid(
      "block size must be a power of two",
      `${d.path}/target/block`,
      String(blockKiB),
      "a power of two (KiB), such as 2048",
      "write e.g. <block unit='KiB'>2048</block>",
    );
  if (d.sizeKiB % blockKiB !== 0n)
    throw fail(
      "memory device size must be an integer multiple of block size",
      `${d.path}/target/size`,
      d.sizeKiB,
      "round the size to the block size",
    );
  if (requestedKiB % blockKiB !== 0n)
    throw fail(
      "requested size must be an integer multiple of block size",
      `${d.path}/target/requested`,
      requestedKiB,
      "round the requested size to the block size",
    );
  if (requestedKiB > d.sizeKiB)
    throw invalid(
      "requested size must be smaller than or equal to @size",
      `${d.path}/target/requested`,
      String(requestedKiB),
      `at most ${d.sizeKiB} KiB`,
      "request at most the device's size",
    );
  if (d.base !== undefined && d.base % (blockKiB * 1024n) !== 0n)
    throw invalid(
      "memory device address must be aligned to blocksize",
      `${d.path}/target/address/@base`,
      `0x${d.base.toString(16)}`,
      `a multiple of ${blockKiB} KiB`,
      "align the base address to the block size",
    );
  return { blockKiB, requestedKiB };
}

/**
 * libvirt refuses virtio-mem and virtio-pmem devices whose address ranges overlap
 * (virDomainMemoryDefCheckConflict); dimm addresses it leaves to QEMU.
 */
function checkOverlap(devs: readonly MemoryDevice[]): void {
  const placed = devs.filter((d) => d.base !== undefined && d.model.startsWith("virtio-"));
  for (const a of placed)
    for (const b of placed) {
      if (a === b) continue;
      const start = a.base!;
      const end = start + a.sizeKiB * 1024n;
      if (b.base! >= start && b.base! < end)
        throw invalid(
          `memory device address [0x${start.toString(16)}:0x${end.toString(16)}] overlaps with other memory device (0x${b.base!.toString(16)})`,
          `${a.path}`,
          `0x${start.toString(16)}`,
          "address ranges that do not overlap",
          "move one device's base address past the other's range, or remove the base addresses",
        );
    }
}

/**
 * libvirt refuses memory devices larger together than `<maxMemory>` less the initial memory (the
 * guest NUMA cells, each aligned to 1 MiB): "memory device total size exceeds hotplug space".
 */
function checkHotplugSpace(root: XmlElement, devs: readonly MemoryDevice[]): void {
  const max = firstChild(root, "maxMemory")!;
  const maxKiB = toKiB(textContent(max) ?? "", getAttr(max, "unit"), "/domain/maxMemory");
  const numa = firstChild(firstChild(root, "cpu") ?? root, "numa");
  const initialKiB = (numa ? childElements(numa, "cell") : []).reduce((sum, c, i) => {
    const kib = toKiB(getAttr(c, "memory") ?? "", getAttr(c, "unit"), `/domain/cpu/numa/cell[${i + 1}]/@memory`);
    return sum + ((kib + 1023n) / 1024n) * 1024n;
  }, 0n);
  const total = devs.reduce((sum, d) => sum + d.sizeKiB, 0n);
  if (total > maxKiB - initialKiB)
    throw invalid(
      "memory device total size exceeds hotplug space",
      "/domain/maxMemory",
      String(maxKiB),
      `at least ${initialKiB + total} KiB (the NUMA cells and the memory devices)`,
      "raise <maxMemory>, or make the memory devices smaller",
    );
}

/**
 * The arguments of the memory devices, in document order, as libvirt writes them: for each an
 * `-object` backend `mem<alias>` and its `-device` (pc-dimm and nvdimm with `node`, nvdimm's
 * `label-size` and `unarmed` (readonly), `slot` and `addr`; virtio-mem-pci with `node`,
 * `block-size`, `requested-size`, `prealloc`, `memaddr`, `dynamic-memslots` and its PCI address;
 * virtio-pmem-pci with `memaddr` and its PCI address). libvirt's rules are checked: `<maxMemory>`
 * and guest NUMA cells with it (x86), the device's node among the cells, slots, virtio-mem sizes,
 * overlapping addresses, total size within `<maxMemory>`.
 * @param root the `<domain>` element
 * @param memories the `<memory>` elements of `<devices>`
 * @param add appends arguments to the command line
 * @param pciAddress the PCI properties of a device's explicit `<address>`
 * @param host what the builder knows of the host (hugetlbfs mounts, NUMA nodes)
 * @param ramDir the directory file-backed RAM is made in
 */
export function buildMemoryDevices(
  root: XmlElement,
  memories: readonly XmlElement[],
  add: (...a: string[]) => void,
  pciAddress: (el: XmlElement, path: string) => Record<string, unknown>,
  host: HostMemoryInfo = {},
  ramDir = "/var/lib/libvirt/qemu/ram",
): void {
  const cells = guestCells(root);
  const cellIds = cells.map((c) => c.id);
  const slots = maxMemorySlots(root);
  // libvirt enforces guest NUMA cells with memory hotplug except on ppc64 and s390 (QEMU would add one silently)
  const arch = getAttr(firstChild(firstChild(root, "os") ?? root, "type"), "arch") ?? "x86_64";
  if (slots !== undefined && cells.length === 0 && !/^(ppc64|s390)/.test(arch))
    throw invalid(
      "At least one numa node has to be configured when enabling memory hotplug",
      "/domain/maxMemory",
      undefined,
      "<maxMemory> with guest NUMA cells",
      "add <cpu><numa><cell id='0' cpus='0-N' memory='...'/></numa></cpu>, or remove <maxMemory>",
    );
  if (memories.length === 0) return;
  if (slots === undefined)
    throw invalid(
      "cannot use/hotplug a memory device when domain 'maxMemory' is not defined",
      "/domain/maxMemory",
      undefined,
      "<maxMemory> beside a memory device",
      "state <maxMemory slots='16' unit='GiB'>N</maxMemory> (libvirt requires it for memory devices)",
    );
  const devs = memories.map((m, i) => readDevice(m, i, cellIds));
  assignSlots(devs, slots);
  checkOverlap(devs);
  checkHotplugSpace(root, devs);
  const count = new Map<string, number>();
  for (const d of devs) {
    const prefix = MODELS[d.model]!;
    let alias: string;
    if (d.slot !== undefined) alias = `${prefix}${d.slot}`;
    else {
      const n = count.get(prefix) ?? 0;
      count.set(prefix, n + 1);
      alias = `${prefix}${n}`;
    }
    const memdev = `mem${alias}`;
    const backend = backendObject(d, memdev, root, cells, host, ramDir);
    const target = firstChild(d.el, "target");
    const dev: Record<string, unknown> = {};
    if (d.model === "dimm" || d.model === "nvdimm") {
      dev.driver = d.model === "dimm" ? "pc-dimm" : "nvdimm";
      if (d.node !== undefined) dev.node = d.node;
      const label = target && firstChild(target, "label");
      if (label) {
        for (const c of childElements(label))
          if (c.name !== "size") throw refuse(`${d.path}/target/label/${c.name}`, c.name, "size", "remove it");
        const kib = sizeOf(firstChild(label, "size"), `${d.path}/target/label/size`, "size");
        if (kib < 128n)
          throw invalid(
            "nvdimm label must be at least 128KiB",
            `${d.path}/target/label/size`,
            String(kib),
            "at least 128 KiB",
            "write <size unit='KiB'>128</size>",
          );
        if (kib >= d.sizeKiB)
          throw invalid(
            "label size must be smaller than NVDIMM size",
            `${d.path}/target/label/size`,
            String(kib),
            `below ${d.sizeKiB} KiB`,
            "write a smaller label",
          );
        dev["label-size"] = Number(kib * 1024n);
      }
      if (target && firstChild(target, "readonly")) dev.unarmed = true;
      dev.memdev = memdev;
      dev.id = alias;
      dev.slot = d.slot;
      if (d.base !== undefined) dev.addr = Number(d.base);
    } else if (d.model === "virtio-mem") {
      const { blockKiB, requestedKiB } = virtioMemSizes(d);
      dev.driver = "virtio-mem-pci";
      if (d.node !== undefined) dev.node = d.node;
      dev["block-size"] = Number(blockKiB * 1024n);
      dev["requested-size"] = Number(requestedKiB * 1024n);
      dev.memdev = memdev;
      if (backend.prealloc) dev.prealloc = true;
      if (d.base !== undefined) dev.memaddr = Number(d.base);
      const dyn = getAttr(target, "dynamicMemslots");
      if (dyn !== undefined && dyn !== "yes" && dyn !== "no")
        throw invalid(
          "invalid dynamicMemslots",
          `${d.path}/target/@dynamicMemslots`,
          dyn,
          "yes, no",
          "write yes or no",
        );
      if (dyn === "yes") dev["dynamic-memslots"] = true;
      dev.id = alias;
      Object.assign(dev, pciAddress(d.el, d.path));
    } else {
      dev.driver = "virtio-pmem-pci";
      dev.memdev = memdev;
      if (d.base !== undefined) dev.memaddr = Number(d.base);
      dev.id = alias;
      Object.assign(dev, pciAddress(d.el, d.path));
    }
    add("-object", backend.object);
    add("-device", JSON.stringify(dev));
  }
}
