/**
 * `<devices><memory model='virtio-pmem'>` as libvirt writes it
 * (qemuBuildMemoryDeviceCommandLine): `-object memory-backend-file` (the source path, shared or
 * not, the size) and `-device virtio-pmem-pci` at its PCI address. Other memory device models
 * (dimm, nvdimm, virtio-mem, sgx-epc) are refused naming the model.
 */
import { DomainXmlError } from "../xml/errors";
import { XmlElement, childElements, firstChild, getAttr, textContent } from "../xml/tree";
import { toKiB } from "../xml/units";

function refuse(path: string, value: string | undefined, allowed: string, fix: string): DomainXmlError {
  return new DomainXmlError("cannot be expressed on the QEMU command line without libvirt", {
    path,
    value,
    allowed,
    category: "unsupported configuration",
    fix,
  });
}

/**
 * The arguments of the memory devices: a lone virtio-pmem device with its source path, size and
 * an explicit PCI address; anything else is refused.
 * @param root the `<domain>` element
 * @param memories the `<memory>` elements of `<devices>`
 * @param add appends arguments to the command line
 * @param pciAddress the PCI properties of a device's explicit `<address>`
 */
export function buildMemoryDevices(
  root: XmlElement,
  memories: readonly XmlElement[],
  add: (...a: string[]) => void,
  pciAddress: (el: XmlElement, path: string) => Record<string, unknown>,
): void {
  if (memories.length === 0) return;
  const at = "/domain/devices/memory[1]";
  if (memories.length > 1)
    throw refuse(
      "/domain/devices/memory[2]",
      getAttr(memories[1], "model"),
      "one virtio-pmem device",
      "keep one memory device",
    );
  const m = memories[0]!;
  const model = getAttr(m, "model");
  if (model !== "virtio-pmem")
    throw refuse(`${at}/@model`, model, "virtio-pmem", "remove the memory device, or use the libvirt backend");
  if (!firstChild(root, "maxMemory"))
    throw refuse(
      "/domain/maxMemory",
      undefined,
      "<maxMemory> beside a memory device",
      "state <maxMemory> (libvirt requires it for memory devices)",
    );
  const access = getAttr(m, "access");
  if (access !== undefined && access !== "shared" && access !== "private")
    throw refuse(`${at}/@access`, access, "shared, private", "write access='shared' or 'private'");
  const source = firstChild(m, "source");
  const pathEl = source && firstChild(source, "path");
  const path = pathEl && textContent(pathEl)?.trim();
  if (!pathEl || !path || childElements(source).length !== 1)
    throw refuse(
      `${at}/source`,
      undefined,
      "<source><path>FILE</path></source>",
      "give the backing file as <source><path>",
    );
  const target = firstChild(m, "target");
  const sizeEl = target && firstChild(target, "size");
  if (!sizeEl) throw refuse(`${at}/target/size`, undefined, "a size", "state <target><size unit='KiB'>N</size>");
  const bytes = toKiB(textContent(sizeEl) ?? "", getAttr(sizeEl, "unit"), `${at}/target/size`) * 1024n;
  const addr = firstChild(m, "address");
  if (!addr || getAttr(addr, "type") !== "pci")
    throw refuse(
      `${at}/address`,
      addr && getAttr(addr, "type"),
      "an explicit PCI address",
      "state <address type='pci' .../> for the virtio-pmem device",
    );
  const base = target && firstChild(target, "address");
  const id = "virtiopmem0";
  const obj: Record<string, unknown> = { "qom-type": "memory-backend-file", id: `mem${id}`, "mem-path": path };
  if (access !== undefined) obj.share = access === "shared";
  obj.size = Number(bytes);
  add("-object", JSON.stringify(obj));
  const dev: Record<string, unknown> = { driver: "virtio-pmem-pci", memdev: `mem${id}` };
  const b = base && getAttr(base, "base");
  if (b !== undefined) {
    if (!/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(b))
      throw refuse(`${at}/target/address/@base`, b, "an address in bytes", "write base='0x140000000'");
    dev.memaddr = Number(BigInt(b));
  }
  add("-device", JSON.stringify({ ...dev, id, ...pciAddress(m, at) }));
}
