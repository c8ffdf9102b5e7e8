/**
 * Disks, controllers and filesystems on the QEMU command line: the parts of libvirt's
 * `qemuBuildDiskDeviceProps`, `qemuBuildControllerDevProps`, `qemuBlockStorageSourceGetBackendProps`
 * and `qemuBuildFilesystemCommandLine` (src/qemu/qemu_command.c, qemu_block.c) the QEMU-direct
 * builder ({@link buildQemuArgv}) expresses, called from provider/qemu/argv.ts.
 *
 * Every attribute read here is either built as libvirt builds it, or refused with a
 * {@link DomainXmlError} naming it (never dropped). Pure: no I/O.
 */
import { DomainController, DomainDisk } from "../xml/domain";
import { DomainXmlError } from "../xml/errors";
import { XmlElement, childElements, firstChild, getAttr, removeChild, textContent } from "../xml/tree";
import { unsupported } from "./argv";

/** A refusal of something the builder cannot express (the same shape as argv.ts's). */

/** An `on`/`off` attribute as a boolean; absent is `undefined`; anything else is refused. */
function onOff(el: XmlElement | undefined, attr: string, path: string): boolean | undefined {
  const v = el && getAttr(el, attr);
  if (v === undefined) return undefined;
  if (v === "on" || v === "off") return v === "on";
  throw new DomainXmlError("invalid on/off value", {
    path: `${path}/@${attr}`,
    value: v,
    allowed: "on, off",
    fix: `write ${attr}='on' or ${attr}='off'`,
  });
}

/** A decimal whole number attribute from `min` to `max`, absent is `undefined`. */
function wholeAttr(
  el: XmlElement | undefined,
  attr: string,
  path: string,
  min: number,
  max: number,
): number | undefined {
  const v = el && getAttr(el, attr);
  if (v === undefined) return undefined;
  const n = /^[0-9]+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new DomainXmlError("not a whole number in range", {
      path: `${path}/@${attr}`,
      value: v,
      allowed: `a whole number from ${min} to ${max}`,
      fix: `write a decimal ${attr}, e.g. ${attr}='${Math.max(min, 1)}'`,
    });
  return n;
}

/** Refuses every attribute of `el` not in `allowed`, naming it. */
function onlyAttrs(el: XmlElement, path: string, allowed: readonly string[], what: string): void {
  for (const a of el.attrs)
    if (!allowed.includes(a.name))
      throw unsupported(
        `${path}/@${a.name}`,
        a.value,
        `${what} takes ${allowed.length ? allowed.join(", ") : "no attributes"} here: remove it or apply through libvirt`,
      );
}

/** The virtio options of a `<driver>` (libvirt's qemuBuildVirtioOptionsProps). */
const VIRTIO_OPTIONS: Readonly<Record<string, string>> = {
  iommu: "iommu_platform",
  ats: "ats",
  packed: "packed",
  page_per_vq: "page-per-vq",
};

/** The `<driver>` attributes that are virtio options, each a property of a virtio `-device`. */
export const VIRTIO_OPTION_ATTRS: readonly string[] = Object.keys(VIRTIO_OPTIONS);

/**
 * A virtio device's `<driver iommu= ats= packed= page_per_vq=>` as libvirt writes them
 * (`iommu_platform`, `ats`, `packed`, `page-per-vq`: booleans).
 */
export function virtioOptionsProps(driver: XmlElement | undefined, path: string): Record<string, unknown> {
  const props: Record<string, unknown> = {};
  for (const [attr, prop] of Object.entries(VIRTIO_OPTIONS)) {
    const b = onOff(driver, attr, path);
    if (b !== undefined) props[prop] = b;
  }
  return props;
}

/**
 * A `-device` value as JSON, where a `bigint` property is written as the exact JSON number (a
 * disk's `wwn` is a 64-bit number, beyond what a JavaScript number holds).
 */
export function deviceJson(props: Record<string, unknown>): string {
  return JSON.stringify(props, (_, v: unknown) => (typeof v === "bigint" ? `\u0000bigint:${v}` : v)).replace(
    /"\\u0000bigint:([0-9]+)"/g,
    "$1",
  );
}

// ---------------------------------------------------------------------------------------------
// Controllers

/** USB controller models and their QEMU devices (qemuControllerModelUSBToCaps). */
export const USB_CONTROLLER_DRIVERS: Readonly<Record<string, string>> = {
  "piix3-uhci": "piix3-usb-uhci",
  "piix4-uhci": "piix4-usb-uhci",
  ehci: "usb-ehci",
  "ich9-ehci1": "ich9-usb-ehci1",
  "ich9-uhci1": "ich9-usb-uhci1",
  "ich9-uhci2": "ich9-usb-uhci2",
  "ich9-uhci3": "ich9-usb-uhci3",
  "vt82c686b-uhci": "vt82c686b-usb-uhci",
  "pci-ohci": "pci-ohci",
  "nec-xhci": "nec-usb-xhci",
  "qemu-xhci": "qemu-xhci",
};

/** The ICH9 UHCI companions of an EHCI controller: their PCI function and first port on the EHCI bus. */
export const ICH9_COMPANIONS: Readonly<Record<string, { fn: number; firstPort: number }>> = {
  "ich9-uhci1": { fn: 0, firstPort: 0 },
  "ich9-uhci2": { fn: 1, firstPort: 2 },
  "ich9-uhci3": { fn: 2, firstPort: 4 },
};

/** The `<driver>` attributes each controller kind takes (libvirt's qemuBuildControllerDevProps). */
const CONTROLLER_DRIVER_ATTRS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  "virtio-scsi": { queues: "num_queues", cmd_per_lun: "cmd_per_lun", max_sectors: "max_sectors", ioeventfd: "" },
  "virtio-serial": {},
};

/** The `id` libvirt gives the USB controller of an index (`usb`, `usb1`, ...). */
export function usbControllerId(index: string | undefined): string {
  return index && index !== "0" ? `usb${index}` : "usb";
}

/**
 * The properties of a USB controller's `-device` beyond `driver`, `id` and the PCI address:
 * `ports` as xHCI's `p2`/`p3` (USB 2 and 3 ports; libvirt takes ports for the xHCI models only),
 * an ICH9 UHCI companion's `masterbus` and `firstport` (from `<master startport>`, else the
 * companion's place), and no `id` for a companion (libvirt gives it none).
 */
export function usbControllerProps(
  c: DomainController,
  el: XmlElement | undefined,
  path: string,
  all: readonly DomainController[],
): Record<string, unknown> {
  const model = c.model ?? "piix3-uhci";
  const props: Record<string, unknown> = {};
  const ports = wholeAttr(el, "ports", path, 1, 15);
  if (ports !== undefined) {
    if (model !== "qemu-xhci" && model !== "nec-xhci")
      throw unsupported(
        `${path}/@ports`,
        String(ports),
        "ports are set on the qemu-xhci and nec-xhci models only: remove ports",
      );
    props.p2 = ports;
    props.p3 = ports;
  }
  const master = el && firstChild(el, "master");
  const companion = ICH9_COMPANIONS[model];
  if (master) {
    onlyAttrs(master, `${path}/master`, ["startport"], "<master>");
    if (!companion)
      throw unsupported(
        `${path}/master`,
        undefined,
        "only the ICH9 UHCI companions (ich9-uhci1..3) have a master: remove it",
      );
  }
  if (companion) {
    if (!all.some((o) => o.type === "usb" && o.model === "ich9-ehci1" && (o.index ?? "0") === (c.index ?? "0")))
      throw new DomainXmlError("no master USB controller", {
        path: `${path}/@model`,
        value: model,
        fix: `add <controller type='usb' index='${c.index ?? "0"}' model='ich9-ehci1'/>, the EHCI controller the UHCI companions serve`,
      });
    props.masterbus = `${usbControllerId(c.index)}.0`;
    props.firstport = wholeAttr(master, "startport", `${path}/master`, 0, 15) ?? companion.firstPort;
    props.id = undefined;
  }
  return props;
}

/**
 * A controller's `<driver>` as properties of its `-device` (virtio-scsi `num_queues`,
 * `cmd_per_lun`, `max_sectors`, `ioeventfd`, and the virtio options of the virtio
 * controllers); any attribute the controller does not take is refused, naming it.
 */
export function controllerDriverProps(kind: string, el: XmlElement | undefined, path: string): Record<string, unknown> {
  const driver = el && firstChild(el, "driver");
  if (!driver) return {};
  const dp = `${path}/driver`;
  const own = CONTROLLER_DRIVER_ATTRS[kind];
  if (!own)
    throw unsupported(dp, undefined, `a ${kind} controller takes no <driver> here: remove it or apply through libvirt`);
  // a virtio-scsi controller's iothreads are built by controllers.ts (scsiIothreadProps)
  const iothreads = kind === "virtio-scsi" ? ["iothread"] : [];
  onlyAttrs(driver, dp, [...Object.keys(own), ...VIRTIO_OPTION_ATTRS, ...iothreads], `a ${kind} controller's <driver>`);
  const kids = childElements(driver).filter((k) => !(iothreads.length && k.name === "iothreads"));
  if (kids.length) throw unsupported(`${dp}/${kids[0]!.name}`, undefined, "remove it or apply through libvirt");
  const props: Record<string, unknown> = {};
  for (const [attr, prop] of Object.entries(own)) {
    if (attr === "ioeventfd") {
      const b = onOff(driver, attr, dp);
      if (b !== undefined) props.ioeventfd = b;
    } else {
      const n = wholeAttr(driver, attr, dp, 1, 0xffffffff);
      if (n !== undefined) props[prop] = n;
    }
  }
  return { ...props, ...virtioOptionsProps(driver, dp) };
}

// ---------------------------------------------------------------------------------------------
// Disks

/** `<driver error_policy>` values and QEMU's `werror` spelling. */
const ERROR_POLICIES: Readonly<Record<string, string>> = {
  stop: "stop",
  report: "report",
  ignore: "ignore",
  enospace: "enospc",
};

/** `<geometry trans>` and QEMU's `bios-chs-trans`. */
const GEOMETRY_TRANS: readonly string[] = ["none", "lba", "auto"];

/** A disk's `<wwn>`: 16 hex digits, optionally `0x`-prefixed (libvirt's virValidateWWN). */
function diskWwn(el: XmlElement, path: string): bigint | undefined {
  const w = firstChild(el, "wwn");
  if (!w) return undefined;
  const t = (textContent(w) ?? "").trim();
  if (!/^(0x)?[0-9a-f]{16}$/i.test(t))
    throw new DomainXmlError("malformed wwn", {
      path: `${path}/wwn`,
      value: t,
      allowed: "16 hexadecimal digits, optionally prefixed 0x",
      fix: "write e.g. <wwn>5000c50015ea71ad</wwn>",
    });
  return BigInt(t.startsWith("0x") || t.startsWith("0X") ? t : `0x${t}`);
}

/** A `<vendor>`/`<product>` text: printable ASCII, at most `max` characters (libvirt's limits). */
function inquiryText(el: XmlElement, name: string, path: string, max: number): string | undefined {
  const e = firstChild(el, name);
  if (!e) return undefined;
  const t = textContent(e) ?? "";
  if (t.length === 0 || t.length > max || !/^[\x20-\x7e]+$/.test(t))
    throw new DomainXmlError(`invalid disk ${name}`, {
      path: `${path}/${name}`,
      value: t,
      allowed: `printable ASCII, 1 to ${max} characters`,
      fix: `shorten the ${name}`,
    });
  return t;
}

/**
 * The properties of a disk's `-device` that come from the disk element beyond its bus address
 * (libvirt's qemuBuildDiskDeviceProps): `<wwn>`, `<vendor>`/`<product>`, `<geometry>`,
 * `<blockio>`, `target/@rotation_rate`, `target/@removable`, `<shareable/>` (`share-rw`),
 * `driver/@error_policy`/`@rerror_policy` (`werror`/`rerror`), virtio-blk's `queues` and
 * `queue_size` and its virtio options. What a bus cannot carry is refused, naming it.
 */
export function diskDeviceProps(d: DomainDisk, el: XmlElement, path: string, bus: string): Record<string, unknown> {
  const props: Record<string, unknown> = {};
  const driver = firstChild(el, "driver");
  const target = firstChild(el, "target");
  const scsi = bus === "scsi";
  const ideLike = bus === "ide" || bus === "sata";
  if (d.shareable) props["share-rw"] = true;
  const wwn = diskWwn(el, path);
  if (wwn !== undefined) {
    if (!scsi && !ideLike) throw unsupported(`${path}/wwn`, undefined, "a wwn is set on IDE, SATA and SCSI disks only");
    props.wwn = wwn;
  }
  const vendor = inquiryText(el, "vendor", path, 8);
  const product = inquiryText(el, "product", path, scsi ? 16 : 40);
  if (vendor !== undefined) {
    if (!scsi) throw unsupported(`${path}/vendor`, vendor, "a vendor is set on SCSI disks only");
    props.vendor = vendor;
  }
  if (product !== undefined) {
    if (scsi) props.product = product;
    else if (ideLike) props.model = product;
    else throw unsupported(`${path}/product`, product, "a product is set on IDE, SATA and SCSI disks only");
  }
  const geometry = firstChild(el, "geometry");
  if (geometry) {
    const gp = `${path}/geometry`;
    onlyAttrs(geometry, gp, ["cyls", "heads", "secs", "trans"], "<geometry>");
    const cyls = wholeAttr(geometry, "cyls", gp, 1, 0xffffffff);
    const heads = wholeAttr(geometry, "heads", gp, 1, 0xffffffff);
    const secs = wholeAttr(geometry, "secs", gp, 1, 0xffffffff);
    if (cyls === undefined || heads === undefined || secs === undefined)
      throw new DomainXmlError("incomplete disk geometry", {
        path: gp,
        fix: "write cyls, heads and secs, e.g. <geometry cyls='16383' heads='16' secs='63'/>",
      });
    Object.assign(props, { cyls, heads, secs });
    const trans = getAttr(geometry, "trans");
    if (trans !== undefined) {
      if (!GEOMETRY_TRANS.includes(trans))
        throw new DomainXmlError("invalid geometry translation", {
          path: `${gp}/@trans`,
          value: trans,
          allowed: GEOMETRY_TRANS.join(", "),
          fix: "write trans='lba'",
        });
      if (trans !== "auto") props["bios-chs-trans"] = trans;
    }
  }
  const blockio = firstChild(el, "blockio");
  if (blockio) {
    const bp = `${path}/blockio`;
    onlyAttrs(blockio, bp, ["logical_block_size", "physical_block_size", "discard_granularity"], "<blockio>");
    for (const a of ["logical_block_size", "physical_block_size", "discard_granularity"]) {
      const n = wholeAttr(blockio, a, bp, 0, 0xffffffff);
      if (n !== undefined) props[a] = n;
    }
  }
  const rotation = wholeAttr(target, "rotation_rate", `${path}/target`, 1, 65534);
  if (rotation !== undefined) {
    if (!scsi && !ideLike)
      throw unsupported(
        `${path}/target/@rotation_rate`,
        String(rotation),
        "a rotation rate is set on IDE, SATA and SCSI disks only",
      );
    props.rotation_rate = rotation;
  }
  const removable = onOff(target, "removable", `${path}/target`);
  if (bus === "usb") props.removable = removable ?? false;
  else if (removable !== undefined) {
    if (!scsi || d.device !== "disk")
      throw unsupported(
        `${path}/target/@removable`,
        getAttr(target, "removable"),
        "removable is set on USB and SCSI disks only",
      );
    if (removable) props.removable = true;
  }
  const policy = driver && getAttr(driver, "error_policy");
  const rpolicy = driver && getAttr(driver, "rerror_policy");
  if (policy !== undefined || rpolicy !== undefined) {
    if (bus === "fdc" || bus === "sd")
      throw unsupported(`${path}/driver/@error_policy`, policy ?? rpolicy, "a floppy has no error policy: remove it");
    const werror = policy === undefined ? undefined : ERROR_POLICIES[policy];
    if (policy !== undefined && !werror)
      throw new DomainXmlError("invalid error policy", {
        path: `${path}/driver/@error_policy`,
        value: policy,
        allowed: Object.keys(ERROR_POLICIES).join(", "),
        fix: "write error_policy='stop'",
      });
    if (rpolicy !== undefined && (rpolicy === "enospace" || !ERROR_POLICIES[rpolicy]))
      throw new DomainXmlError("invalid read error policy", {
        path: `${path}/driver/@rerror_policy`,
        value: rpolicy,
        allowed: "stop, report, ignore",
        fix: "write rerror_policy='stop'",
      });
    // libvirt: the read policy follows the write policy unless that is enospace (no read equivalent)
    const rerror = rpolicy ?? (policy !== "enospace" ? policy : undefined);
    if (werror) props.werror = werror;
    if (rerror) props.rerror = rerror;
  }
  const queues = wholeAttr(driver, "queues", `${path}/driver`, 1, 65535);
  const queueSize = wholeAttr(driver, "queue_size", `${path}/driver`, 1, 65535);
  const virtio = virtioOptionsProps(driver, `${path}/driver`);
  // virtio-blk's ioeventfd and event_idx (libvirt: booleans on the -device, virtio disks only)
  const ioeventfd = onOff(driver, "ioeventfd", `${path}/driver`);
  const eventIdx = onOff(driver, "event_idx", `${path}/driver`);
  if (bus === "virtio") {
    if (ioeventfd !== undefined) props.ioeventfd = ioeventfd;
    if (eventIdx !== undefined) props.event_idx = eventIdx;
    if (queues !== undefined) props["num-queues"] = queues;
    if (queueSize !== undefined) props["queue-size"] = queueSize;
    Object.assign(props, virtio);
  } else {
    const a = ["queues", "queue_size", "ioeventfd", "event_idx", ...VIRTIO_OPTION_ATTRS].find(
      (x) => driver && getAttr(driver, x) !== undefined,
    );
    if (a) throw unsupported(`${path}/driver/@${a}`, getAttr(driver, a), "this is set on virtio disks only: remove it");
  }
  return props;
}

/** `<driver io>` values and QEMU's `aio` (libvirt's virDomainDiskIo). */
const DISK_IO: readonly string[] = ["native", "threads", "io_uring"];
/** `<driver discard>` values. */
const DISK_DISCARD: readonly string[] = ["unmap", "ignore"];
/** `<driver detect_zeroes>` values. */
const DISK_DETECT_ZEROES: readonly string[] = ["off", "on", "unmap"];

/** What a disk's `<driver>` adds to its `-blockdev` nodes (libvirt's qemuBlockStorageSourceGetBlockdevProps). */
export interface DiskBlockdevProps {
  /** On the storage node (`aio`). */
  readonly storage: Record<string, unknown>;
  /** On the top node (the format node, or the raw storage node): `discard`, `detect-zeroes`. */
  readonly top: Record<string, unknown>;
  /** `<driver copy_on_read='on'>`: a copy-on-read filter node over the top node. */
  readonly copyOnRead: boolean;
  /** On the format node only (a qcow2 image): `discard-no-unref`, `cache-size`. */
  readonly format: Record<string, unknown>;
}

/** Bytes per unit of a `<max_size unit=...>` (libvirt's virScaleInteger; no unit is bytes). */
const BYTE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  bytes: 1,
  kb: 1000,
  k: 1024,
  kib: 1024,
  mb: 1000 ** 2,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  gb: 1000 ** 3,
  g: 1024 ** 3,
  gib: 1024 ** 3,
};

/** A qcow2 `<metadata_cache><max_size unit=...>` as QEMU's `cache-size` in bytes; absent is `undefined`. */
export function metadataCacheBytes(parent: XmlElement | undefined, path: string): number | undefined {
  const mc = parent && firstChild(parent, "metadata_cache");
  if (!mc) return undefined;
  const max = firstChild(mc, "max_size");
  const unit = (max && getAttr(max, "unit")) ?? "bytes";
  const text = (max && textContent(max)?.trim()) ?? "";
  const scale = BYTE_UNITS[unit.toLowerCase()];
  const n = /^[0-9]+$/.test(text) && scale ? Number(text) * scale : NaN;
  if (!max || !Number.isSafeInteger(n))
    throw new DomainXmlError("invalid metadata cache size", {
      path: `${path}/metadata_cache/max_size`,
      value: text,
      allowed: `a whole number with a unit of ${Object.keys(BYTE_UNITS).join(", ")}`,
      fix: "write <metadata_cache><max_size unit='KiB'>1024</max_size></metadata_cache>",
    });
  return n;
}

/**
 * A disk's `<driver io= discard= detect_zeroes= copy_on_read=>` as libvirt puts them on its
 * `-blockdev` nodes: `aio` on the storage node; `discard` and `detect-zeroes` on the top node,
 * `detect_zeroes='unmap'` written as `on` unless the disk also discards (`unmap` means "unmap
 * zeroes", which needs discard); `copy_on_read` as a filter node.
 */
export function diskBlockdevProps(el: XmlElement, path: string): DiskBlockdevProps {
  const driver = firstChild(el, "driver");
  const dp = `${path}/driver`;
  const pick = (attr: string, allowed: readonly string[]) => {
    const v = driver && getAttr(driver, attr);
    if (v !== undefined && v !== "default" && !allowed.includes(v))
      throw new DomainXmlError(`invalid disk ${attr}`, {
        path: `${dp}/@${attr}`,
        value: v,
        allowed: allowed.join(", "),
        fix: `write ${attr}='${allowed[0]!}' or remove it`,
      });
    return v === "default" ? undefined : v;
  };
  const io = pick("io", DISK_IO);
  const discard = pick("discard", DISK_DISCARD);
  const dz = pick("detect_zeroes", DISK_DETECT_ZEROES);
  const storage: Record<string, unknown> = io ? { aio: io } : {};
  const top: Record<string, unknown> = {};
  if (discard) top.discard = discard;
  if (dz && dz !== "off") top["detect-zeroes"] = dz === "unmap" && discard !== "unmap" ? "on" : dz;
  const format: Record<string, unknown> = {};
  if (onOff(driver, "discard_no_unref", dp) === true) format["discard-no-unref"] = true;
  const cacheSize = metadataCacheBytes(driver, dp);
  if (cacheSize !== undefined) format["cache-size"] = cacheSize;
  return { storage, top, copyOnRead: onOff(driver, "copy_on_read", dp) === true, format };
}

// ---------------------------------------------------------------------------------------------
// Filesystems

/** `<filesystem accessmode>` and QEMU's 9p `security_model`. */
const FS_ACCESS_MODES: readonly string[] = ["passthrough", "mapped", "squash"];

/** What a filesystem's `-fsdev`/`-device` needs from the orchestrator. */
export interface FilesystemContext {
  /** The PCI address properties of a device (argv.ts's pciAddressProps). */
  pciAddress(el: XmlElement, path: string): Record<string, unknown>;
  /** Adds arguments. */
  add(...a: string[]): void;
  /**
   * Whether the guest RAM is shared (`<memoryBacking><access mode='shared'>`, or every NUMA cell
   * `memAccess='shared'`), which a vhost-user device needs. @default false
   */
  sharedMemory?: boolean;
}

/** A filesystem's mount tag, `<target dir=...>` (required; no other attribute), 9p or virtiofs alike. */
function filesystemTag(fs: XmlElement, path: string): string {
  const target = firstChild(fs, "target");
  const tag = target && getAttr(target, "dir");
  if (!target || tag === undefined)
    throw new DomainXmlError("missing filesystem target", {
      path: `${path}/target/@dir`,
      fix: "write <target dir='mount_tag'/>",
    });
  onlyAttrs(target, `${path}/target`, ["dir"], "<target>");
  return tag;
}

/**
 * A virtiofs share served by a virtiofsd the user runs (`<source socket=...>`): QEMU connects to
 * its socket, as libvirt writes it (`-chardev socket,id=chr-vu-fsN,path=...` and a
 * `vhost-user-fs-pci` with `tag` and `queue-size`). libvirt starts no virtiofsd for it, and the
 * guest RAM must be shared with it (libvirt: virtiofs requires shared memory).
 */
function buildVirtiofsSocket(fs: XmlElement, i: number, path: string, ctx: FilesystemContext): void {
  onlyAttrs(fs, path, ["type", "accessmode"], "a virtiofs <filesystem>");
  const access = getAttr(fs, "accessmode");
  if (access !== undefined && access !== "passthrough")
    throw new DomainXmlError("virtiofs supports only accessmode passthrough", {
      path: `${path}/@accessmode`,
      value: access,
      allowed: "passthrough",
      fix: "remove accessmode (virtiofsd applies its own)",
    });
  const driver = firstChild(fs, "driver")!;
  onlyAttrs(driver, `${path}/driver`, ["type", "queue", ...VIRTIO_OPTION_ATTRS], "a virtiofs <driver>");
  const source = firstChild(fs, "source")!;
  onlyAttrs(source, `${path}/source`, ["socket"], "a virtiofs <source socket>");
  const tag = filesystemTag(fs, path);
  for (const c of childElements(fs))
    if (!["driver", "source", "target", "address", "alias"].includes(c.name))
      throw unsupported(
        `${path}/${c.name}`,
        undefined,
        "with <source socket> the virtiofsd is yours: its options (binary, readonly, idmap, ...) are set where you start it; remove it",
      );
  if (!ctx.sharedMemory)
    throw new DomainXmlError("virtiofs requires shared memory", {
      path: `${path}/driver/@type`,
      value: "virtiofs",
      mirrorsLibvirt: true,
      fix: "share the guest RAM with virtiofsd: <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>",
    });
  const chr = `chr-vu-fs${i}`;
  ctx.add("-chardev", `socket,id=${chr},path=${getAttr(source, "socket")!.replace(/,/g, ",,")}`);
  const queue = wholeAttr(driver, "queue", `${path}/driver`, 1, 32768);
  ctx.add(
    "-device",
    JSON.stringify({
      driver: "vhost-user-fs-pci",
      ...virtioOptionsProps(driver, `${path}/driver`),
      id: `fs${i}`,
      chardev: chr,
      ...(queue === undefined ? {} : { "queue-size": queue }),
      tag,
      ...ctx.pciAddress(fs, path),
    }),
  );
}

/**
 * `<filesystem>`: a host directory shared over virtio-9p, as libvirt writes it
 * (`-fsdev local|handle,security_model=...,writeout=...,readonly=on,id=fsdev-fsN,path=...` and a
 * `virtio-9p-pci` with `mount_tag`): QEMU serves 9p itself. virtiofs needs a `virtiofsd` process
 * libvirt starts and supervises, USB MTP a host path libvirt labels: both are refused (apply
 * through libvirt), as are file/block/ram/... filesystem types.
 */
export function buildFilesystems(fss: readonly XmlElement[], ctx: FilesystemContext): void {
  fss.forEach((fs, i) => {
    const path = `/domain/devices/filesystem[${i + 1}]`;
    const type = getAttr(fs, "type") ?? "mount";
    if (type !== "mount")
      throw unsupported(
        `${path}/@type`,
        type,
        "a host directory (type='mount') shared over 9p is built: apply others through libvirt",
      );
    onlyAttrs(fs, path, ["type", "accessmode", "multidevs", "fmode", "dmode"], "<filesystem>");
    const driver = firstChild(fs, "driver");
    const dtype = (driver && getAttr(driver, "type")) ?? "path";
    if (dtype === "virtiofs" && firstChild(fs, "source") && getAttr(firstChild(fs, "source"), "socket") !== undefined) {
      buildVirtiofsSocket(fs, i, path, ctx);
      return;
    }
    if (dtype === "virtiofs")
      throw unsupported(
        `${path}/driver/@type`,
        dtype,
        "virtiofs needs a virtiofsd process per share, which libvirt starts and supervises (the QEMU-direct backend starts no helper daemons): run virtiofsd yourself and write <source socket='/path/to/its.sock'/>, share over 9p (driver type='path'), or apply through libvirt",
      );
    if (dtype !== "path" && dtype !== "handle")
      throw unsupported(
        `${path}/driver/@type`,
        dtype,
        dtype === "mtp"
          ? "a USB MTP share (usb-mtp) takes a port on the guest's USB bus among the other USB devices, which the builder does not lay out for it: share over 9p (driver type='path') or apply through libvirt"
          : "the 9p drivers path and handle are built: apply others through libvirt",
      );
    if (driver)
      onlyAttrs(driver, `${path}/driver`, ["type", "wrpolicy", ...VIRTIO_OPTION_ATTRS], "a 9p filesystem's <driver>");
    const source = firstChild(fs, "source");
    const dir = source && getAttr(source, "dir");
    if (!source || dir === undefined)
      throw new DomainXmlError("missing filesystem source", {
        path: `${path}/source/@dir`,
        fix: "write <source dir='/path/on/host'/>",
      });
    onlyAttrs(source, `${path}/source`, ["dir"], "<source>");
    const tag = filesystemTag(fs, path);
    for (const c of childElements(fs))
      if (!["driver", "source", "target", "readonly", "address", "alias"].includes(c.name))
        throw unsupported(`${path}/${c.name}`, undefined, "remove it or apply through libvirt");
    const parts: string[] = [dtype === "handle" ? "handle" : "local"];
    const access = getAttr(fs, "accessmode") ?? "passthrough";
    if (!FS_ACCESS_MODES.includes(access))
      throw new DomainXmlError("invalid filesystem access mode", {
        path: `${path}/@accessmode`,
        value: access,
        allowed: FS_ACCESS_MODES.join(", "),
        fix: "write accessmode='mapped'",
      });
    if (dtype === "path") parts.push(`security_model=${access === "squash" ? "none" : access}`);
    else if (getAttr(fs, "accessmode") !== undefined && access !== "passthrough")
      throw unsupported(`${path}/@accessmode`, access, "the handle driver has no access mode: remove it");
    const wr = driver && getAttr(driver, "wrpolicy");
    if (wr !== undefined) {
      if (wr !== "immediate")
        throw new DomainXmlError("invalid write policy", {
          path: `${path}/driver/@wrpolicy`,
          value: wr,
          allowed: "immediate",
          fix: "write wrpolicy='immediate' or remove it",
        });
      parts.push("writeout=immediate");
    }
    for (const m of ["fmode", "dmode"]) {
      const v = getAttr(fs, m);
      if (v === undefined) continue;
      if (!/^0?[0-7]{3}$/.test(v) || dtype !== "path" || access !== "mapped")
        throw unsupported(`${path}/@${m}`, v, `${m} is an octal mode for accessmode='mapped' only, e.g. ${m}='0644'`);
      parts.push(`${m}=${v.padStart(4, "0")}`);
    }
    const multidevs = getAttr(fs, "multidevs");
    if (multidevs !== undefined && multidevs !== "default") {
      if (!["remap", "forbid", "warn"].includes(multidevs))
        throw unsupported(`${path}/@multidevs`, multidevs, "write multidevs='remap', 'forbid' or 'warn'");
      parts.push(`multidevs=${multidevs}`);
    }
    const id = `fs${i}`;
    parts.push(`id=fsdev-${id}`, `path=${dir.replace(/,/g, ",,")}`);
    if (firstChild(fs, "readonly")) parts.push("readonly=on");
    ctx.add("-fsdev", parts.join(","));
    ctx.add(
      "-device",
      JSON.stringify({
        driver: "virtio-9p-pci",
        ...virtioOptionsProps(driver, `${path}/driver`),
        id,
        fsdev: `fsdev-${id}`,
        mount_tag: tag,
        ...ctx.pciAddress(fs, path),
      }),
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Order and USB ports

/**
 * The order libvirt keeps controllers in (virDomainControllerInsertPreAlloced): each goes before
 * the first controller of its type with a greater index, else after the last of its type, else
 * last. PCI slots are assigned in this order. Returns indexes into `controllers`.
 */
export function libvirtControllerOrder(controllers: readonly DomainController[]): number[] {
  const idx = (c: DomainController) => (c.index !== undefined && /^[0-9]+$/.test(c.index) ? Number(c.index) : -1);
  const out: number[] = [];
  controllers.forEach((c, i) => {
    let at = -1;
    let lastSame = -1;
    for (let k = out.length - 1; k >= 0; k--) {
      const o = controllers[out[k]!]!;
      if (o.type !== c.type) continue;
      if (lastSame === -1) lastSame = k;
      if (idx(c) === -1) break;
      // a master (an EHCI) goes before the companions of its index
      const companionFirst =
        idx(o) === idx(c) && !ICH9_COMPANIONS[c.model ?? ""] && ICH9_COMPANIONS[o.model ?? ""] !== undefined;
      if (idx(o) > idx(c) || companionFirst) at = k;
    }
    if (at !== -1) out.splice(at, 0, i);
    else if (lastSame !== -1) out.splice(lastSame + 1, 0, i);
    else out.push(i);
  });
  return out;
}

/**
 * The USB ports libvirt gives USB disks (virDomainUSBAddressAssign, inputs first): a written
 * `<address type='usb' port=>` keeps its port, others take the next free port after the USB
 * inputs'. Returns the port of each disk element on the USB bus, by element.
 */
export function usbDiskPorts(inputs: readonly XmlElement[], usbDisks: readonly XmlElement[]): Map<XmlElement, string> {
  let port = 0;
  for (const el of inputs) {
    if (getAttr(el, "bus") !== "usb") continue;
    const a = firstChild(el, "address");
    const p = a && getAttr(a, "port");
    port = p !== undefined && /^[0-9]+$/.test(p) ? Math.max(port, Number(p)) : port + 1;
  }
  const out = new Map<XmlElement, string>();
  for (const el of usbDisks) {
    const a = firstChild(el, "address");
    const p = a && getAttr(a, "port");
    if (p !== undefined && /^[0-9]+$/.test(p)) {
      port = Math.max(port, Number(p));
      out.set(el, p);
    } else out.set(el, String(++port));
  }
  return out;
}

const IMPLICIT_SCSI_KEYS = new Map<number, object>();

/** The key of the implicit SCSI controller of an index (for the PCI slot table). */
export function implicitScsiKey(index: number): object {
  let k = IMPLICIT_SCSI_KEYS.get(index);
  if (!k) IMPLICIT_SCSI_KEYS.set(index, (k = Object.freeze({ implicit: `scsi${index}` })));
  return k;
}

/**
 * The SCSI controllers libvirt adds for SCSI disks (virDomainDefAddDiskControllersForType): every
 * index from 0 to the highest `address/@controller` of a SCSI disk that no `<controller
 * type='scsi'>` states, each an lsilogic controller on x86 (qemuDomainGetSCSIControllerModel).
 */
export function implicitScsiControllers(
  disks: readonly DomainDisk[],
  diskEls: readonly XmlElement[],
  controllers: readonly DomainController[],
): number[] {
  let max = -1;
  disks.forEach((d, i) => {
    if (d.targetBus !== "scsi" && !(d.targetBus === undefined && d.targetDev?.startsWith("sd"))) return;
    const a = diskEls[i] && firstChild(diskEls[i], "address");
    const c = a && getAttr(a, "type") === "drive" ? getAttr(a, "controller") : undefined;
    const n = c !== undefined && /^[0-9]+$/.test(c) ? Number(c) : 0;
    max = Math.max(max, Math.min(n, 255));
  });
  const have = new Set(controllers.filter((c) => c.type === "scsi").map((c) => Number(c.index ?? "0")));
  const out: number[] = [];
  for (let i = 0; i <= max; i++) if (!have.has(i)) out.push(i);
  return out;
}

/** Refuses two disks with the same target name (libvirt: "target 'sda' duplicated"). */
export function checkDiskTargets(disks: readonly DomainDisk[]): void {
  const seen = new Set<string>();
  disks.forEach((d, i) => {
    if (d.targetDev === undefined) return;
    if (seen.has(d.targetDev))
      throw new DomainXmlError("duplicate disk target", {
        path: `/domain/devices/disk[${i + 1}]/target/@dev`,
        value: d.targetDev,
        fix: "give every disk its own target name (sda, sdb, ...)",
      });
    seen.add(d.targetDev);
  });
}

// ---------------------------------------------------------------------------------------------
// Network disks

/** The default port of each network protocol (libvirt's virStorageSourceNetworkDefaultPort). */
const NETWORK_DEFAULT_PORTS: Readonly<Record<string, string>> = {
  nbd: "10809",
  rbd: "6789",
  iscsi: "3260",
  http: "80",
  https: "443",
  ftp: "21",
  ftps: "990",
  ssh: "22",
};

interface NetworkHost {
  readonly name?: string;
  readonly port: string;
  readonly socket?: string;
}

function networkHosts(source: XmlElement, path: string, protocol: string): NetworkHost[] {
  return childElements(source, "host").map((h, i) => {
    const hp = `${path}/source/host${childElements(source, "host").length > 1 ? `[${i + 1}]` : ""}`;
    onlyAttrs(h, hp, ["name", "port", "transport", "socket"], "<host>");
    const transport = getAttr(h, "transport") ?? "tcp";
    if (transport === "unix") {
      const socket = getAttr(h, "socket");
      if (!socket)
        throw new DomainXmlError("missing socket path", {
          path: `${hp}/@socket`,
          fix: "write <host transport='unix' socket='/path/to/socket'/>",
        });
      return { socket, port: "" };
    }
    if (transport !== "tcp")
      throw unsupported(`${hp}/@transport`, transport, "use transport tcp or unix, or apply through libvirt");
    const name = getAttr(h, "name");
    if (!name)
      throw new DomainXmlError("missing host name", { path: `${hp}/@name`, fix: "write <host name='example.org'/>" });
    const port = getAttr(h, "port");
    if (port !== undefined) wholeAttr(h, "port", hp, 1, 65535);
    return { name, port: port ?? NETWORK_DEFAULT_PORTS[protocol] ?? "" };
  });
}

/**
 * The storage node of a `<disk type='network'>`, without `node-name`: QEMU's own block drivers
 * for nbd, rbd, iscsi, http(s), ftp(s) and nfs, as libvirt writes them
 * (qemuBlockStorageSourceGetBackendProps). What needs libvirt is refused, naming it: `<auth>` (its
 * `<secret>` is an object of libvirt's secret driver), HTTP cookies, `tls='yes'` (the x509
 * certificates are qemu.conf host configuration), ssh (`<knownHosts>` and keys need nbdkit or
 * ssh-agent), gluster, vxhs, sheepdog and the like (not in QEMU any more, or not built).
 */
export function networkStorage(
  el: XmlElement,
  path: string,
  cookieSecret?: (cookie: string) => string,
): Record<string, unknown> {
  const source = firstChild(el, "source");
  if (!source)
    throw new DomainXmlError("missing disk source", {
      path: `${path}/source`,
      fix: "write <source protocol='nbd' ...>",
    });
  const sp = `${path}/source`;
  const protocol = getAttr(source, "protocol") ?? "";
  if (!["nbd", "rbd", "iscsi", "http", "https", "ftp", "ftps", "nfs"].includes(protocol))
    throw unsupported(
      `${sp}/@protocol`,
      protocol,
      protocol === "ssh"
        ? "libvirt reaches ssh disks through an nbdkit process it starts (keys, ssh-agent, passwords, <knownHosts>) or QEMU's ssh driver with the QEMU user's own known_hosts; the QEMU-direct backend builds neither: apply through libvirt, or serve the image over nbd"
        : "the QEMU-direct backend builds network disks over nbd, rbd, iscsi, http(s), ftp(s) and nfs: apply others through libvirt",
    );
  if (firstChild(el, "auth") || firstChild(source, "auth"))
    throw unsupported(
      firstChild(el, "auth") ? `${path}/auth` : `${sp}/auth`,
      undefined,
      "the <secret> names an object of libvirt's secret driver, which the QEMU-direct backend has no access to: use a network disk without authentication or apply through libvirt",
    );
  const tls = getAttr(source, "tls");
  if (tls === "yes")
    throw unsupported(
      `${sp}/@tls`,
      tls,
      "TLS certificates come from libvirt's qemu.conf (nbd_tls_x509_cert_dir): apply through libvirt",
    );
  if (tls !== undefined && tls !== "no")
    throw new DomainXmlError("invalid tls value", {
      path: `${sp}/@tls`,
      value: tls,
      allowed: "yes, no",
      fix: "write tls='no'",
    });
  const allowedKids: Record<string, readonly string[]> = {
    nbd: ["host", "reconnect"],
    rbd: ["host", "snapshot", "config"],
    iscsi: ["host", "initiator"],
    http: ["host", "timeout", "readahead"],
    https: ["host", "timeout", "readahead", "ssl"],
    ftp: ["host", "timeout", "readahead"],
    ftps: ["host", "timeout", "readahead", "ssl"],
    nfs: ["host", "identity"],
  };
  for (const c of childElements(source))
    if (
      !allowedKids[protocol]!.includes(c.name) &&
      !(c.name === "cookies" && cookieSecret && protocol.startsWith("http"))
    )
      throw unsupported(
        `${sp}/${c.name}`,
        undefined,
        `not built for ${protocol} disks: remove it or apply through libvirt`,
      );
  onlyAttrs(
    source,
    sp,
    ["protocol", "name", "tls", "index", ...(protocol.startsWith("http") ? ["query"] : [])],
    "a network <source>",
  );
  const name = getAttr(source, "name");
  const hosts = networkHosts(source, path, protocol);
  const one = (): NetworkHost => {
    if (hosts.length !== 1)
      throw new DomainXmlError(`${protocol} takes exactly one host`, {
        path: `${sp}/host`,
        value: String(hosts.length),
        fix: "write one <host name=... port=.../>",
      });
    return hosts[0]!;
  };
  const tcpOnly = (h: NetworkHost): NetworkHost & { name: string } => {
    if (h.name === undefined)
      throw unsupported(
        `${sp}/host/@transport`,
        "unix",
        `${protocol} is reached over TCP: write <host name=... port=.../>`,
      );
    return h as NetworkHost & { name: string };
  };
  const child = (n: string) => firstChild(source, n);
  switch (protocol) {
    case "nbd": {
      const h = one();
      const props: Record<string, unknown> = {
        driver: "nbd",
        server:
          h.socket !== undefined ? { type: "unix", path: h.socket } : { type: "inet", host: h.name, port: h.port },
      };
      if (name !== undefined) props.export = name;
      const delay = wholeAttr(child("reconnect"), "delay", `${sp}/reconnect`, 1, 0xffffffff);
      if (child("reconnect")) onlyAttrs(child("reconnect")!, `${sp}/reconnect`, ["delay"], "<reconnect>");
      if (delay !== undefined) props["reconnect-delay"] = delay;
      return props;
    }
    case "rbd": {
      const parts = (name ?? "").split("/");
      if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === ""))
        throw new DomainXmlError("invalid rbd image name", {
          path: `${sp}/@name`,
          value: name,
          allowed: "POOL/IMAGE or POOL/NAMESPACE/IMAGE",
          fix: "write name='pool/image'",
        });
      const props: Record<string, unknown> = { driver: "rbd", pool: parts[0] };
      if (parts.length === 3) props.namespace = parts[1];
      props.image = parts[parts.length - 1];
      const snap = child("snapshot");
      if (snap) {
        onlyAttrs(snap, `${sp}/snapshot`, ["name"], "<snapshot>");
        props.snapshot = getAttr(snap, "name");
      }
      const conf = child("config");
      if (conf) {
        onlyAttrs(conf, `${sp}/config`, ["file"], "<config>");
        props.conf = getAttr(conf, "file");
      }
      if (hosts.length) props.server = hosts.map((h) => ({ host: tcpOnly(h).name, port: h.port }));
      return props;
    }
    case "iscsi": {
      const h = tcpOnly(one());
      const m = /^(.*?)(?:\/([0-9]+))?$/.exec(name ?? "");
      if (!m?.[1])
        throw new DomainXmlError("invalid iSCSI target", {
          path: `${sp}/@name`,
          value: name,
          allowed: "IQN or IQN/LUN",
          fix: "write name='iqn.2013-07.com.example:target/1'",
        });
      const props: Record<string, unknown> = {
        driver: "iscsi",
        portal: `${h.name.includes(":") ? `[${h.name}]` : h.name}:${h.port}`,
        target: m[1],
        lun: m[2] !== undefined ? Number(m[2]) : 0,
        transport: "tcp",
      };
      const init = child("initiator");
      if (init) {
        for (const c of childElements(init))
          if (c.name !== "iqn") throw unsupported(`${sp}/initiator/${c.name}`, undefined, "remove it");
        const iqn = firstChild(init, "iqn");
        if (iqn) {
          onlyAttrs(iqn, `${sp}/initiator/iqn`, ["name"], "<iqn>");
          props["initiator-name"] = getAttr(iqn, "name");
        }
      }
      return props;
    }
    case "nfs": {
      const h = tcpOnly(one());
      const props: Record<string, unknown> = { driver: "nfs", server: { host: h.name, type: "inet" }, path: name };
      const id = child("identity");
      if (id) {
        onlyAttrs(id, `${sp}/identity`, ["user", "group"], "<identity>");
        for (const k of ["user", "group"]) {
          const v = getAttr(id, k);
          if (v === undefined) continue;
          if (!/^\+[0-9]+$/.test(v))
            throw unsupported(
              `${sp}/identity/@${k}`,
              v,
              `libvirt looks a ${k} name up on the host: write the numeric id as '+N', e.g. ${k}='+107'`,
            );
          props[k] = Number(v.slice(1));
        }
      }
      return props;
    }
    default: {
      // http, https, ftp, ftps: QEMU's curl driver
      const h = tcpOnly(one());
      const host = h.name.includes(":") ? `[${h.name}]` : h.name;
      const query = getAttr(source, "query");
      const props: Record<string, unknown> = {
        driver: protocol,
        url: `${protocol}://${host}:${h.port}/${(name ?? "").replace(/^\//, "")}${query ? `?${query}` : ""}`,
      };
      const timeout = wholeAttr(child("timeout"), "seconds", `${sp}/timeout`, 1, 0xffffffff);
      if (child("timeout")) onlyAttrs(child("timeout")!, `${sp}/timeout`, ["seconds"], "<timeout>");
      if (timeout !== undefined) props.timeout = timeout;
      const readahead = wholeAttr(child("readahead"), "size", `${sp}/readahead`, 1, Number.MAX_SAFE_INTEGER);
      if (child("readahead")) onlyAttrs(child("readahead")!, `${sp}/readahead`, ["size"], "<readahead>");
      if (readahead !== undefined) props.readahead = readahead;
      const ssl = child("ssl");
      if (ssl) {
        onlyAttrs(ssl, `${sp}/ssl`, ["verify"], "<ssl>");
        const verify = getAttr(ssl, "verify");
        if (verify !== "yes" && verify !== "no")
          throw new DomainXmlError("invalid ssl verify", {
            path: `${sp}/ssl/@verify`,
            value: verify,
            allowed: "yes, no",
            fix: "write verify='yes'",
          });
        props.sslverify = verify === "yes";
      }
      const cookies = child("cookies");
      if (cookies && cookieSecret) props["cookie-secret"] = cookieSecret(httpCookies(cookies, `${sp}/cookies`));
      return props;
    }
  }
}

/** Characters a cookie name may not hold (libvirt's virDomainStorageNetCookieValidate, RFC 6265 token). */
const COOKIE_NAME_INVALID = (s: string): boolean => hasControlChar(s) || /[()<>@,;:\\"/[\]?={} ]/.test(s);
/** Characters a cookie value may not hold, inside its optional double quotes (libvirt's rule). */
const COOKIE_VALUE_INVALID = (s: string): boolean => hasControlChar(s) || /[",;\\ ]/.test(s);

/** Whether a string holds an ASCII control character (below 0x20, or DEL). */
function hasControlChar(s: string): boolean {
  return [...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
}

/**
 * An HTTP(S) disk's `<cookies>` as the one header value QEMU's curl driver sends
 * (`name=value; name2=value2`, libvirt's qemuBlockStorageSourceGetCookieString), checked as
 * libvirt checks them: a name is an RFC 6265 token, a value has no `"`, `,`, `;`, `\`, space or
 * control character (inside optional double quotes), no name twice. Errors name the cookie, never
 * its value (a cookie is a credential).
 */
export function httpCookies(cookies: XmlElement, path: string): string {
  onlyAttrs(cookies, path, [], "<cookies>");
  const seen = new Set<string>();
  const parts: string[] = [];
  childElements(cookies).forEach((c, i) => {
    const cp = `${path}/cookie[${i + 1}]`;
    if (c.name !== "cookie")
      throw unsupported(`${path}/${c.name}`, undefined, "<cookies> holds <cookie> elements only");
    onlyAttrs(c, cp, ["name"], "<cookie>");
    const name = getAttr(c, "name") ?? "";
    if (name === "" || COOKIE_NAME_INVALID(name))
      throw new DomainXmlError("invalid cookie name", {
        path: `${cp}/@name`,
        value: name,
        allowed: 'an RFC 6265 token: no spaces, control characters nor ()<>@,;:\\"/[]?={}',
        fix: "write a cookie name such as name='session'",
      });
    if (seen.has(name))
      throw new DomainXmlError("duplicate cookie", {
        path: `${cp}/@name`,
        value: name,
        fix: `give the cookie '${name}' once`,
      });
    seen.add(name);
    const value = textContent(c) ?? "";
    const inner = value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
    if (COOKIE_VALUE_INVALID(inner))
      throw new DomainXmlError("invalid cookie value", {
        path: cp,
        allowed:
          'printable characters without ", comma, semicolon, backslash or space, optionally inside double quotes',
        fix: `correct the value of cookie '${name}' (it is not shown here: a cookie is a credential)`,
      });
    parts.push(`${name}=${value}`);
  });
  if (!parts.length)
    throw new DomainXmlError("empty cookies", {
      path,
      fix: "write <cookie name='...'>value</cookie> or remove <cookies>",
    });
  return parts.join("; ");
}

/**
 * Refuses `<boot order>` on devices beside `<os><boot dev>` (libvirt: "per-device boot elements
 * cannot be used together with os/boot elements").
 */
export function checkBootOrders(
  osBoot: readonly string[],
  devices: readonly { bootOrder: string | undefined }[],
): void {
  if (osBoot.length === 0 || devices.every((d) => d.bootOrder === undefined)) return;
  throw new DomainXmlError("per-device boot elements cannot be used together with os/boot elements", {
    path: "/domain/os/boot",
    value: osBoot.join(","),
    fix: "use either <boot order='N'/> on devices or <os><boot dev=.../></os>, not both",
  });
}

// ---------------------------------------------------------------------------------------------
// Backing chains

/** The image formats a backing layer may have (QEMU's format drivers of the same name). */
const BACKING_FORMATS: readonly string[] = ["raw", "qcow2", "qed", "vmdk", "vpc", "vhdx", "vdi"];

/** One `<backingStore>` layer under a disk's image, as its `-blockdev` nodes need it. */
export interface BackingLayer {
  /** The storage node's properties, without `node-name`. */
  readonly storage: Record<string, unknown>;
  /** `<format type>`: `raw` is the storage node itself, others a format node over it. */
  readonly format: string;
  /** The layer's `<format><metadata_cache>` as the format node's `cache-size`. */
  readonly formatProps: Record<string, unknown>;
}

/** A disk's backing chain, top-first, and whether it ends in an empty `<backingStore/>` (no backing: `"backing": null`). */
export interface BackingChain {
  readonly layers: BackingLayer[];
  readonly closed: boolean;
}

/** Whether a `<backingStore>` is the empty terminator (`<backingStore/>`): the layer above has no backing image. */
function isTerminator(b: XmlElement): boolean {
  return b.attrs.length === 0 && childElements(b).length === 0;
}

/**
 * A disk's `<backingStore>` chain as libvirt opens it (qemuBuildStorageSourceChainAttachPrepareBlockdev):
 * every layer a read-only node (file, block device or network image), a format node over it unless
 * raw, each format node's `backing` the layer below, `null` above an empty `<backingStore/>`, and
 * absent where the chain is not written (QEMU opens the image's own backing file).
 */
export function backingChain(el: XmlElement | undefined, path: string): BackingChain {
  const layers: BackingLayer[] = [];
  let b = el && firstChild(el, "backingStore");
  let bp = `${path}/backingStore`;
  while (b) {
    if (isTerminator(b)) return { layers, closed: true };
    onlyAttrs(b, bp, ["type", "index"], "<backingStore>");
    const type = getAttr(b, "type") ?? "file";
    const fmtEl = firstChild(b, "format");
    const format = fmtEl && getAttr(fmtEl, "type");
    if (format === undefined)
      throw new DomainXmlError("backing image without a format", {
        path: `${bp}/format`,
        fix: "write the layer's <format type='qcow2'/> (libvirt does not probe image formats)",
      });
    if (!BACKING_FORMATS.includes(format))
      throw unsupported(`${bp}/format/@type`, format, `use a backing format of ${BACKING_FORMATS.join(", ")}`);
    let storage: Record<string, unknown>;
    if (type === "network") storage = networkStorage(b, bp);
    else {
      const src = firstChild(b, "source");
      const attr = type === "file" ? "file" : type === "block" ? "dev" : undefined;
      if (!attr) throw unsupported(`${bp}/@type`, type, "a backing layer is a file, a block device or a network image");
      const filename = src && getAttr(src, attr);
      if (filename === undefined)
        throw new DomainXmlError("backing layer without a source", {
          path: `${bp}/source/@${attr}`,
          fix: `write <source ${attr}='/path'/>`,
        });
      storage = { driver: type === "file" ? "file" : "host_device", filename };
    }
    const cacheSize = metadataCacheBytes(fmtEl, `${bp}/format`);
    if (cacheSize !== undefined && format !== "qcow2")
      throw unsupported(`${bp}/format/metadata_cache`, format, "a metadata cache is a qcow2 setting: remove it");
    layers.push({ storage, format, formatProps: cacheSize !== undefined ? { "cache-size": cacheSize } : {} });
    b = firstChild(b, "backingStore");
    bp = `${bp}/backingStore`;
  }
  return { layers, closed: false };
}

/**
 * `<controller type='pci' model='pci-root'><target hotplug='on|off'/>`: ACPI hotplug on the PC
 * machine's root bus, `-global PIIX4_PM.acpi-root-pci-hotplug=on|off` as libvirt writes it. A
 * `<target>` anywhere else is refused (the builder lays out no PCI controllers of its own).
 */
export function rootHotplugGlobal(
  c: DomainController,
  el: XmlElement | undefined,
  path: string,
  rootBus: string,
): string | undefined {
  const model = el && firstChild(el, "model");
  if (model && !(c.type === "pci" && c.model === "pcie-root-port"))
    throw unsupported(
      `${path}/model`,
      getAttr(model, "name"),
      "a <model name> is built for pcie-root-ports only: remove it",
    );
  const target = el && firstChild(el, "target");
  if (!target || (c.type === "pci" && c.model === "pcie-root-port")) return undefined;
  if (c.type !== "pci" || c.model !== "pci-root" || rootBus !== "pci.0")
    throw unsupported(
      `${path}/target`,
      undefined,
      "a controller <target> is built for the PC machine's pci-root (hotplug) only: remove it or apply through libvirt",
    );
  onlyAttrs(target, `${path}/target`, ["hotplug"], "the pci-root's <target>");
  const on = onOff(target, "hotplug", `${path}/target`);
  return on === undefined ? undefined : `PIIX4_PM.acpi-root-pci-hotplug=${on ? "on" : "off"}`;
}

// ---------------------------------------------------------------------------------------------
// Disk I/O throttling (<iotune>)

/**
 * A disk's `<iotune>` child elements and the `block_set_io_throttle` argument each is (libvirt's
 * qemuMonitorJSONSetBlockIoThrottle). The six rates are always sent, 0 meaning no limit.
 */
const IOTUNE_RATES: Readonly<Record<string, string>> = {
  total_bytes_sec: "bps",
  read_bytes_sec: "bps_rd",
  write_bytes_sec: "bps_wr",
  total_iops_sec: "iops",
  read_iops_sec: "iops_rd",
  write_iops_sec: "iops_wr",
  total_bytes_sec_max: "bps_max",
  read_bytes_sec_max: "bps_rd_max",
  write_bytes_sec_max: "bps_wr_max",
  total_iops_sec_max: "iops_max",
  read_iops_sec_max: "iops_rd_max",
  write_iops_sec_max: "iops_wr_max",
  size_iops_sec: "iops_size",
};

/** The burst lengths (seconds), sent only when set and above 0, as libvirt does. */
const IOTUNE_LENGTHS: Readonly<Record<string, string>> = {
  total_bytes_sec_max_length: "bps_max_length",
  read_bytes_sec_max_length: "bps_rd_max_length",
  write_bytes_sec_max_length: "bps_wr_max_length",
  total_iops_sec_max_length: "iops_max_length",
  read_iops_sec_max_length: "iops_rd_max_length",
  write_iops_sec_max_length: "iops_wr_max_length",
};

/** The `<iotune>` child elements the builder reads (every one libvirt 11 knows). */
export const IOTUNE_ELEMENTS: readonly string[] = [
  ...Object.keys(IOTUNE_RATES),
  ...Object.keys(IOTUNE_LENGTHS),
  "group_name",
];

/** libvirt's QEMU_BLOCK_IOTUNE_MAX (QEMU's THROTTLE_VALUE_MAX): no limit may exceed it. */
const IOTUNE_MAX = 1_000_000_000_000_000;

/**
 * A disk's `<iotune>` as the arguments of QMP `block_set_io_throttle` (without the device `id`),
 * which libvirt sends once QEMU runs (qemuProcessSetupDiskThrottling): it writes no QEMU argument
 * for it. `undefined` when the disk has no `<iotune>` or one that sets nothing.
 *
 * Checked as libvirt (virDomainDiskIoTuneValidate, qemuValidateDomainDeviceDefDiskIOThrottle) and
 * QEMU (throttle_is_valid, which fails `block_set_io_throttle` after start) check it: whole numbers
 * up to 10^15, a total limit and a read/write limit of the same kind not both set, a burst (`_max`)
 * not without its rate nor below it, a burst length not without its burst, `size_iops_sec` not
 * without an IOPS limit, `group_name` not alone.
 */
export function diskIoTune(el: XmlElement, path: string): Record<string, unknown> | undefined {
  const iotune = firstChild(el, "iotune");
  if (!iotune) return undefined;
  const ip = `${path}/iotune`;
  onlyAttrs(iotune, ip, [], "<iotune>");
  const values: Record<string, number> = {};
  let group: string | undefined;
  for (const c of childElements(iotune)) {
    const cp = `${ip}/${c.name}`;
    if (!IOTUNE_ELEMENTS.includes(c.name))
      throw new DomainXmlError("unknown iotune setting", {
        path: cp,
        value: c.name,
        allowed: IOTUNE_ELEMENTS.join(", "),
        fix: `remove <${c.name}> or write one of the settings libvirt knows`,
      });
    onlyAttrs(c, cp, [], `<${c.name}>`);
    const text = textContent(c)?.trim() ?? "";
    if (c.name === "group_name") {
      if (text === "")
        throw new DomainXmlError("empty iotune group name", {
          path: cp,
          fix: "write a group name, e.g. <group_name>group1</group_name>, or remove it",
        });
      group = text;
      continue;
    }
    const n = /^[0-9]+$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n) || n > IOTUNE_MAX)
      throw new DomainXmlError("invalid iotune value", {
        path: cp,
        value: text,
        allowed: `a whole number from 0 to ${IOTUNE_MAX}`,
        fix: `write a decimal number, e.g. <${c.name}>1000</${c.name}>`,
      });
    values[c.name] = n;
  }
  const v = (k: string) => values[k] ?? 0;
  for (const suffix of ["bytes_sec", "iops_sec", "bytes_sec_max", "iops_sec_max"]) {
    const rw = ["read", "write"].find((d) => v(`${d}_${suffix}`) > 0);
    if (v(`total_${suffix}`) > 0 && rw)
      throw new DomainXmlError("total and read/write limits set together", {
        path: `${ip}/total_${suffix}`,
        value: String(v(`total_${suffix}`)),
        fix: `set either total_${suffix} or read_${suffix}/write_${suffix}, not both (libvirt: "total and read/write ${suffix} cannot be set at the same time")`,
      });
  }
  for (const kind of ["total", "read", "write"])
    for (const unit of ["bytes_sec", "iops_sec"]) {
      const rate = `${kind}_${unit}`;
      const max = `${rate}_max`;
      const len = `${max}_length`;
      if (v(max) > 0 && v(rate) === 0)
        throw new DomainXmlError("a burst limit without its rate", {
          path: `${ip}/${max}`,
          value: String(v(max)),
          fix: `set <${rate}> too (QEMU: bps_max/iops_max require corresponding bps/iops values)`,
        });
      if (v(max) > 0 && v(max) < v(rate))
        throw new DomainXmlError("a burst limit below its rate", {
          path: `${ip}/${max}`,
          value: String(v(max)),
          fix: `make <${max}> at least <${rate}> (${v(rate)})`,
        });
      if (v(len) > 0 && v(max) === 0)
        throw new DomainXmlError("a burst length without its burst limit", {
          path: `${ip}/${len}`,
          value: String(v(len)),
          fix: `set <${max}> too, or remove <${len}>`,
        });
    }
  if (v("size_iops_sec") > 0 && v("total_iops_sec") + v("read_iops_sec") + v("write_iops_sec") === 0)
    throw new DomainXmlError("an I/O size without an IOPS limit", {
      path: `${ip}/size_iops_sec`,
      value: String(v("size_iops_sec")),
      fix: "set total_iops_sec (or read_iops_sec/write_iops_sec) too, or remove size_iops_sec",
    });
  const any = Object.values(values).some((n) => n > 0);
  if (group !== undefined && !any)
    throw new DomainXmlError("an iotune group without limits", {
      path: `${ip}/group_name`,
      value: group,
      fix: "set at least one limit in the <iotune>, or remove group_name (libvirt: group_name can be configured only together with settings)",
    });
  if (!any) return undefined;
  const args: Record<string, unknown> = {};
  for (const [name, arg] of Object.entries(IOTUNE_RATES)) args[arg] = v(name);
  if (group !== undefined) args.group = group;
  for (const [name, arg] of Object.entries(IOTUNE_LENGTHS)) if (v(name) > 0) args[arg] = v(name);
  return args;
}

// ---------------------------------------------------------------------------------------------
// A disk source's <seclabel>

/**
 * A disk source's `<seclabel>` elements: the QEMU-direct backend applies no SELinux or DAC labels
 * (libvirt's security drivers relabel the image before start; no QEMU argument either way), so a
 * seclabel that asks for no relabeling (`relabel='no'`, or `labelskip='yes'`, which libvirt
 * records when it skipped labeling) is what the backend does anyway and is accepted; one that asks
 * for a label (`relabel='yes'`, a `<label>`) is refused, naming the fix. Several seclabels each
 * name their model, as libvirt requires.
 */
export function checkDiskSourceSeclabels(el: XmlElement, path: string): void {
  const source = firstChild(el, "source");
  if (!source) return;
  const labels = childElements(source, "seclabel");
  labels.forEach((l, i) => {
    const lp = `${path}/source/seclabel${labels.length > 1 ? `[${i + 1}]` : ""}`;
    onlyAttrs(l, lp, ["model", "relabel", "labelskip"], "a disk's <seclabel>");
    const model = getAttr(l, "model");
    if (model === undefined && labels.length > 1)
      throw new DomainXmlError("missing security model", {
        path: `${lp}/@model`,
        fix: "name the model of each of several seclabels, e.g. model='selinux' (libvirt: missing security model when using multiple labels)",
      });
    const relabel = getAttr(l, "relabel");
    const labelskip = getAttr(l, "labelskip");
    for (const [a, v] of [
      ["relabel", relabel],
      ["labelskip", labelskip],
    ] as const)
      if (v !== undefined && v !== "yes" && v !== "no")
        throw new DomainXmlError(`invalid ${a} value`, {
          path: `${lp}/@${a}`,
          value: v,
          allowed: "yes, no",
          fix: `write ${a}='no'`,
        });
    const kid = childElements(l)[0];
    if (relabel === "no" && kid)
      throw new DomainXmlError("a label without relabeling", {
        path: `${lp}/${kid.name}`,
        fix: "remove the <label> or write relabel='yes' (libvirt refuses a label with relabeling turned off)",
      });
    if (relabel === "no" || (labelskip === "yes" && relabel === undefined && !kid)) return;
    throw unsupported(
      kid ? `${lp}/${kid.name}` : `${lp}/@relabel`,
      kid ? undefined : (relabel ?? "yes"),
      `the QEMU-direct backend applies no ${model ?? "security"} labels to disk images (libvirt's security drivers do): label the image yourself and write <seclabel model='${model ?? "selinux"}' relabel='no'/>, or apply through libvirt`,
    );
  });
}

// ---------------------------------------------------------------------------------------------
// A virtio disk's IOThreads

/**
 * A virtio disk's `<driver iothread='N'>` (`iothread`) or `<driver><iothreads>` (QEMU's
 * `iothread-vq-mapping`, QEMU 9.0 and later) as libvirt writes them on virtio-blk-pci; `defined`
 * are the ids of the domain's IOThread objects (`iothreadN`). Checked as libvirt and QEMU check
 * them: a defined IOThread, not both forms, each IOThread once, queues given for all of them or
 * none, each queue below `<driver queues>` and mapped exactly once. Other buses are refused.
 */
export function diskIothreadProps(
  el: XmlElement,
  path: string,
  bus: string,
  defined: ReadonlySet<string>,
): Record<string, unknown> {
  const driver = firstChild(el, "driver");
  const dp = `${path}/driver`;
  const single = driver && getAttr(driver, "iothread");
  const map = driver && firstChild(driver, "iothreads");
  if (single === undefined && !map) return {};
  if (bus !== "virtio")
    throw unsupported(
      single !== undefined ? `${dp}/@iothread` : `${dp}/iothreads`,
      single,
      "IOThreads are set on virtio disks only (a SCSI disk runs in its virtio-scsi controller's IOThread): remove it",
    );
  return iothreadProps(driver, dp, defined);
}

/**
 * A virtio device's `<driver iothread='N'>` or `<driver><iothreads>` mapping (virtio-blk and
 * virtio-scsi alike), checked as described at {@link diskIothreadProps}.
 */
export function iothreadProps(
  driver: XmlElement | undefined,
  dp: string,
  defined: ReadonlySet<string>,
): Record<string, unknown> {
  const single = driver && getAttr(driver, "iothread");
  const map = driver && firstChild(driver, "iothreads");
  if (single === undefined && !map) return {};
  const known = (id: string, at: string) => {
    if (!defined.has(`iothread${id}`))
      throw new DomainXmlError("IOThread not defined", {
        path: at,
        value: id,
        allowed: [...defined].map((d) => d.replace(/^iothread/, "")).join(", ") || "none defined",
        fix: `define it (<iothreads> or <iothreadids><iothread id='${id}'/>), or name one that is`,
      });
    return `iothread${id}`;
  };
  if (single !== undefined) {
    if (map)
      throw new DomainXmlError("iothread and <iothreads> together", {
        path: `${dp}/iothreads`,
        fix: "use either <driver iothread='N'> or <driver><iothreads>, not both",
      });
    wholeAttr(driver, "iothread", dp, 1, 0xffffffff);
    return { iothread: known(single, `${dp}/@iothread`) };
  }
  if (!map) return {};
  const mp = `${dp}/iothreads`;
  onlyAttrs(map, mp, [], "<iothreads>");
  const threads = childElements(map);
  if (!threads.length)
    throw new DomainXmlError("empty <iothreads>", {
      path: mp,
      fix: "map at least one <iothread id='N'/>, or remove it",
    });
  const queues = wholeAttr(driver, "queues", dp, 1, 65535);
  const seen = new Set<string>();
  const mapped = new Set<number>();
  const withQueues = threads.filter((t) => childElements(t).length > 0).length;
  const out = threads.map((t, i) => {
    const tp = `${mp}/iothread[${i + 1}]`;
    if (t.name !== "iothread") throw unsupported(`${mp}/${t.name}`, undefined, "<iothreads> holds <iothread> elements");
    onlyAttrs(t, tp, ["id"], "<iothread>");
    const id = getAttr(t, "id") ?? "";
    wholeAttr(t, "id", tp, 1, 0xffffffff);
    const name = known(id, `${tp}/@id`);
    if (seen.has(name))
      throw new DomainXmlError("IOThread mapped twice", {
        path: `${tp}/@id`,
        value: id,
        fix: "list each IOThread once and give it all its queues",
      });
    seen.add(name);
    if (withQueues && !childElements(t).length)
      throw new DomainXmlError("queues for some IOThreads only", {
        path: tp,
        fix: "give queues to every IOThread of the mapping, or to none",
      });
    const vqs = childElements(t).map((q, k) => {
      const qp = `${tp}/queue[${k + 1}]`;
      if (q.name !== "queue") throw unsupported(`${tp}/${q.name}`, undefined, "<iothread> holds <queue> elements");
      onlyAttrs(q, qp, ["id"], "<queue>");
      const n = wholeAttr(q, "id", qp, 0, 65534);
      if (n === undefined)
        throw new DomainXmlError("missing queue id", { path: `${qp}/@id`, fix: "write <queue id='0'/>" });
      if (queues === undefined || n >= queues)
        throw new DomainXmlError("queue beyond the disk's queues", {
          path: `${qp}/@id`,
          value: String(n),
          fix: `set <driver queues> above ${n} (queue ids count from 0), or map a lower queue`,
        });
      if (mapped.has(n))
        throw new DomainXmlError("queue mapped twice", {
          path: `${qp}/@id`,
          value: String(n),
          fix: "map each queue to one IOThread",
        });
      mapped.add(n);
      return n;
    });
    return vqs.length ? { iothread: name, vqs } : { iothread: name };
  });
  if (withQueues && queues !== undefined && mapped.size < queues)
    throw new DomainXmlError("queues left unmapped", {
      path: mp,
      value: String(queues - mapped.size),
      fix: `map every queue from 0 to ${queues - 1} to an IOThread (QEMU requires all or none)`,
    });
  return { "iothread-vq-mapping": out };
}

// ---------------------------------------------------------------------------------------------
// What only libvirt can do for a disk

/**
 * Refuses, with the fix, what a disk needs libvirt for: `<encryption>` (on the disk, its source or
 * a backing layer: the passphrase is a libvirt secret, `<secret type='passphrase' uuid|usage>`,
 * read from libvirt's secret store, which the QEMU-direct backend does not have) and `<transient/>`
 * (libvirt makes a throwaway overlay at start and deletes it at shutdown). The secret's uuid or
 * usage is not repeated in the error.
 */
export function checkDiskNeedsLibvirt(el: XmlElement, path: string): void {
  const enc = findEncryption(el, path);
  if (enc)
    throw unsupported(
      enc,
      undefined,
      "an encrypted image is opened with a passphrase from libvirt's secret store (the <secret> names it), which the QEMU-direct backend has no access to: use an unencrypted image, or apply the domain through libvirt",
    );
  if (firstChild(el, "transient"))
    throw unsupported(
      `${path}/transient`,
      undefined,
      "a transient disk is a throwaway overlay libvirt creates at start and deletes at shutdown: remove <transient/> (the QEMU-direct backend writes to the image itself), or apply through libvirt",
    );
}

/** The path of the first `<encryption>` of a disk: its own, its source's, a backing layer's. */
function findEncryption(el: XmlElement, path: string): string | undefined {
  if (firstChild(el, "encryption")) return `${path}/encryption`;
  const src = firstChild(el, "source");
  if (src && firstChild(src, "encryption")) return `${path}/source/encryption`;
  const b = firstChild(el, "backingStore");
  return b ? findEncryption(b, `${path}/backingStore`) : undefined;
}

// ---------------------------------------------------------------------------------------------
// <source startupPolicy>

/** `<source startupPolicy>` values (libvirt's virDomainStartupPolicy). */
const STARTUP_POLICIES: readonly string[] = ["mandatory", "requisite", "optional"];

/**
 * Checks a disk's `<source startupPolicy>`: a local image (`type='file'` or `'block'`) only,
 * `requisite` for a CD-ROM or floppy only. No QEMU argument: the policy decides, at start, what
 * happens when the image is missing (see {@link applyStartupPolicies}).
 */
export function checkStartupPolicy(el: XmlElement, path: string): void {
  const source = firstChild(el, "source");
  const policy = source && getAttr(source, "startupPolicy");
  if (policy === undefined) return;
  const sp = `${path}/source/@startupPolicy`;
  if (!STARTUP_POLICIES.includes(policy))
    throw new DomainXmlError("invalid startupPolicy", {
      path: sp,
      value: policy,
      allowed: STARTUP_POLICIES.join(", "),
      fix: "write startupPolicy='optional' or remove it",
    });
  const type = getAttr(el, "type") ?? "file";
  if (type !== "file" && type !== "block")
    throw unsupported(
      sp,
      policy,
      `a startup policy is built for local images (type='file' or 'block'), the sources the backend can look for before start: remove it from this type='${type}' disk`,
    );
  const device = getAttr(el, "device") ?? "disk";
  if (policy === "requisite" && device !== "cdrom" && device !== "floppy")
    throw new DomainXmlError("Setting disk 'requisite' is allowed only for cdrom or floppy", {
      path: sp,
      value: policy,
      mirrorsLibvirt: true,
      fix: "write startupPolicy='optional' or 'mandatory'",
    });
}

/**
 * What libvirt does at start for `<source startupPolicy='optional'>` whose image is missing
 * (qemuDomainCheckDiskStartupPolicy): a CD-ROM or floppy starts empty (its source dropped), a disk
 * is left out. `mandatory` and `requisite` keep the disk (QEMU then fails to open the missing
 * image, naming it). Changes `def` in place; `exists` is the backend's look at the host. Returns
 * the disks changed, as `path: what`.
 */
export function applyStartupPolicies(def: { root: XmlElement }, exists: (file: string) => boolean): string[] {
  const devices = firstChild(def.root, "devices");
  if (!devices) return [];
  const changed: string[] = [];
  childElements(devices, "disk").forEach((el, i) => {
    const source = firstChild(el, "source");
    const file = source && (getAttr(source, "file") ?? getAttr(source, "dev"));
    if (!source || file === undefined || getAttr(source, "startupPolicy") !== "optional" || exists(file)) return;
    const device = getAttr(el, "device") ?? "disk";
    if (device === "cdrom" || device === "floppy") {
      removeChild(el, source);
      changed.push(`/domain/devices/disk[${i + 1}]: ${file} is missing, the ${device} starts empty`);
    } else {
      removeChild(devices, el);
      changed.push(`/domain/devices/disk[${i + 1}]: ${file} is missing, the disk is left out`);
    }
  });
  return changed;
}
