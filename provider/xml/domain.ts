/**
 * {@link DomainDef}: a libvirt domain document. The parsed, ordered tree stays the source of
 * truth; typed accessors read and edit mapped paths in place, so XML we do not model (foreign
 * namespaces, metadata, comments, devices we have no type for) round-trips untouched.
 *
 * {@link readDomain} gives a typed snapshot ({@link DomainView}) for code that only reads
 * (the QEMU command line builder, the CLI). All values stay strings in the XML layer except
 * where a name says the unit (`memoryKiB`).
 *
 * Pure: no I/O, no Pulumi.
 */
import { DomainXmlError } from "./errors";
import {
  XmlDocument,
  XmlElement,
  childElements,
  cloneElement,
  element,
  findPath,
  firstChild,
  formatXml,
  getAttr,
  insertOrdered,
  parseXml,
  removeChild,
  setAttr,
  setTextContent,
  textContent,
} from "./tree";
import { toKiB } from "./units";

/** The order in which libvirt formats the children of `<domain>` (virDomainDefFormatInternal). */
export const DOMAIN_CHILD_ORDER: readonly string[] = [
  "name",
  "uuid",
  "hwuuid",
  "genid",
  "title",
  "description",
  "metadata",
  "maxMemory",
  "memory",
  "currentMemory",
  "blkiotune",
  "memtune",
  "memoryBacking",
  "vcpu",
  "vcpus",
  "iothreads",
  "iothreadids",
  "cputune",
  "numatune",
  "resource",
  "sysinfo",
  "bootloader",
  "bootloader_args",
  "os",
  "idmap",
  "features",
  "cpu",
  "clock",
  "on_poweroff",
  "on_reboot",
  "on_crash",
  "on_lockfailure",
  "pm",
  "perf",
  "devices",
  "seclabel",
  "keywrap",
  "launchSecurity",
  "qemu:commandline",
  "qemu:capabilities",
  "qemu:override",
  "qemu:deprecation",
];

/** The libvirt QEMU namespace URI, for `<qemu:commandline>`. */
export const QEMU_NAMESPACE = "http://libvirt.org/schemas/domain/qemu/1.0";

/** A libvirt domain document with typed, in-place accessors. */
export class DomainDef {
  /** The whole document (comments around the root included). */
  public readonly doc: XmlDocument;

  private constructor(doc: XmlDocument) {
    this.doc = doc;
  }

  /** Parses domain XML; the root must be `<domain>`. */
  public static parse(text: string, path = "/"): DomainDef {
    const doc = parseXml(text, path);
    if (doc.root.name !== "domain") {
      throw new DomainXmlError("unexpected root element", {
        path,
        value: `<${doc.root.name}>`,
        allowed: "<domain>",
        fix: "pass a libvirt domain definition (virsh dumpxml output is one)",
      });
    }
    return new DomainDef(doc);
  }

  /** Formats the document in libvirt's style. */
  public format(): string {
    return formatXml(this.doc);
  }

  /** A deep copy. */
  public clone(): DomainDef {
    return new DomainDef({
      prolog: this.doc.prolog.map((c) => ({ ...c })),
      root: cloneElement(this.doc.root),
      epilog: this.doc.epilog.map((c) => ({ ...c })),
    });
  }

  /** The `<domain>` element. */
  public get root(): XmlElement {
    return this.doc.root;
  }

  /** The domain type attribute (`qemu`, `kvm`, ...). */
  public get type(): string | undefined {
    return getAttr(this.root, "type");
  }

  /** Sets the domain type attribute. */
  public set type(v: string | undefined) {
    setAttr(this.root, "type", v);
  }

  /** The text of the first `<name>`, or undefined. */
  public get name(): string | undefined {
    return this.childText("name");
  }

  /** Sets or removes `<name>`. */
  public set name(v: string | undefined) {
    this.setChildText("name", v);
  }

  /** The text of the first top-level child `name` (XPath `string(./name[1])`), undefined if absent or empty. */
  public childText(name: string): string | undefined {
    const t = textContent(firstChild(this.root, name));
    return t === undefined || t === "" ? undefined : t;
  }

  /**
   * Sets the text of the first top-level child `name`, creating it at libvirt's position;
   * `undefined` removes every such child.
   */
  public setChildText(name: string, value: string | undefined): void {
    if (value === undefined) {
      for (const el of childElements(this.root, name)) removeChild(this.root, el);
      return;
    }
    let el = firstChild(this.root, name);
    if (!el) {
      el = element(name);
      insertOrdered(this.root, el, DOMAIN_CHILD_ORDER);
    }
    setTextContent(el, value);
  }

  /** The first top-level child `name`, created at libvirt's position when missing. */
  public ensureChild(name: string, attrs: Record<string, string> = {}): XmlElement {
    let el = firstChild(this.root, name);
    if (!el) {
      el = element(name, attrs);
      insertOrdered(this.root, el, DOMAIN_CHILD_ORDER);
    }
    return el;
  }

  /** `<memory>` in KiB (rounded up like libvirt), or undefined when absent. */
  public get memoryKiB(): bigint | undefined {
    return scaled(firstChild(this.root, "memory"), "/domain/memory");
  }

  /** `<currentMemory>` in KiB, or undefined when absent. */
  public get currentMemoryKiB(): bigint | undefined {
    return scaled(firstChild(this.root, "currentMemory"), "/domain/currentMemory");
  }

  /** Writes `<memory unit='KiB'>`. */
  public setMemoryKiB(kib: bigint, element_ = "memory"): void {
    const el = this.ensureChild(element_);
    setAttr(el, "unit", "KiB");
    setTextContent(el, kib.toString());
  }

  /** The `<devices>` element, created when missing. */
  public devices(): XmlElement {
    return this.ensureChild("devices");
  }

  /** All device elements named `kind` (`disk`, `interface`, ...), in document order. */
  public deviceElements(kind: string): XmlElement[] {
    const d = firstChild(this.root, "devices");
    return d ? childElements(d, kind) : [];
  }

  /** Declares `xmlns:qemu` on the root when missing. */
  public ensureQemuNamespace(): void {
    if (getAttr(this.root, "xmlns:qemu") === undefined) setAttr(this.root, "xmlns:qemu", QEMU_NAMESPACE);
  }
}

function scaled(el: XmlElement | undefined, path: string): bigint | undefined {
  if (!el) return undefined;
  return toKiB(textContent(el) ?? "", getAttr(el, "unit"), path);
}

/** A `<disk>` as read. */
export interface DomainDisk {
  /** `file`, `block`, `volume`, `network`, ... */
  type: string | undefined;
  /** `disk`, `cdrom`, `floppy`, `lun`. */
  device: string;
  driverName: string | undefined;
  /** Image format: `qcow2`, `raw`, ... */
  driverType: string | undefined;
  /** `source/@file`, `@dev`, or `pool`/`volume` for volumes. */
  sourceFile: string | undefined;
  sourceDev: string | undefined;
  sourcePool: string | undefined;
  sourceVolume: string | undefined;
  targetDev: string | undefined;
  targetBus: string | undefined;
  /** Path of the first backing store source, when the XML states one. */
  backingFile: string | undefined;
  serial: string | undefined;
  readonly: boolean;
  shareable: boolean;
  bootOrder: string | undefined;
}

/** An `<interface>` as read. */
export interface DomainInterface {
  /** `user`, `network`, `bridge`, `direct`, `ethernet`, ... */
  type: string | undefined;
  mac: string | undefined;
  model: string | undefined;
  sourceNetwork: string | undefined;
  sourceBridge: string | undefined;
  sourceDev: string | undefined;
  targetDev: string | undefined;
  bootOrder: string | undefined;
}

/** A character device (`<serial>`, `<console>`, `<channel>`) as read. */
export interface DomainChardev {
  kind: "serial" | "console" | "channel";
  type: string | undefined;
  sourcePath: string | undefined;
  targetType: string | undefined;
  targetName: string | undefined;
  targetPort: string | undefined;
}

/** A `<graphics>` as read. */
export interface DomainGraphics {
  type: string | undefined;
  port: string | undefined;
  autoport: string | undefined;
  listen: string | undefined;
  /** The password (security info: never log it); `""` allows no login. */
  passwd: string | undefined;
  /** When the password expires (libvirt's `passwdValidTo`). */
  passwdValidTo: string | undefined;
}

/** A `<controller>` as read. */
export interface DomainController {
  type: string | undefined;
  index: string | undefined;
  model: string | undefined;
}

/** A `<sysinfo>` as read: its type and the `system` entries by name. */
export interface DomainSysinfo {
  type: string | undefined;
  /** `<system><entry name=...>` values, by name (first entry of a name wins). */
  system: Record<string, string>;
  /** The `<system>` element is present. */
  hasSystem: boolean;
}

/** A typed snapshot of what the provider and the QEMU command line need. */
export interface DomainView {
  type: string | undefined;
  name: string | undefined;
  /** Raw text of the first `<uuid>` (undefined if absent or empty). */
  uuid: string | undefined;
  /** Raw text of the first `<hwuuid>` (undefined if absent or empty). */
  hwuuid: string | undefined;
  genid: string | undefined;
  /** `<genid/>` present (a value may be generated by libvirt). */
  hasGenid: boolean;
  title: string | undefined;
  description: string | undefined;
  memoryKiB: bigint | undefined;
  currentMemoryKiB: bigint | undefined;
  vcpus: string | undefined;
  vcpuCurrent: string | undefined;
  os: {
    type: string | undefined;
    arch: string | undefined;
    machine: string | undefined;
    firmware: string | undefined;
    loader: string | undefined;
    loaderReadonly: string | undefined;
    loaderType: string | undefined;
    nvram: string | undefined;
    boot: string[];
    smbiosMode: string | undefined;
  };
  sysinfo: DomainSysinfo[];
  features: string[];
  cpu:
    | {
        mode: string | undefined;
        model: string | undefined;
        sockets: string | undefined;
        dies: string | undefined;
        clusters: string | undefined;
        cores: string | undefined;
        threads: string | undefined;
      }
    | undefined;
  clockOffset: string | undefined;
  onPoweroff: string | undefined;
  onReboot: string | undefined;
  onCrash: string | undefined;
  emulator: string | undefined;
  disks: DomainDisk[];
  interfaces: DomainInterface[];
  chardevs: DomainChardev[];
  graphics: DomainGraphics[];
  videoModels: string[];
  controllers: DomainController[];
  rngModels: string[];
  memballoonModel: string | undefined;
  tpmModels: string[];
  /** `<qemu:commandline><qemu:arg value=...>` values in order. */
  qemuArgs: string[];
  /** `<qemu:commandline><qemu:env name= value=>` pairs in order. */
  qemuEnv: { name: string; value: string }[];
}

/** Reads a typed {@link DomainView} from a {@link DomainDef}. */
export function readDomain(def: DomainDef): DomainView {
  const r = def.root;
  const os = firstChild(r, "os");
  const osType = os && firstChild(os, "type");
  const loader = os && firstChild(os, "loader");
  const cpuEl = firstChild(r, "cpu");
  const topo = cpuEl && firstChild(cpuEl, "topology");
  const vcpu = firstChild(r, "vcpu");
  const devices = firstChild(r, "devices");
  const dev = (k: string) => (devices ? childElements(devices, k) : []);
  const qemuCmd = qemuNamespaceChildren(r, "commandline", new Map());
  const qemuCmdScope = nsScope(r, new Map());
  return {
    type: def.type,
    name: def.name,
    uuid: def.childText("uuid"),
    hwuuid: def.childText("hwuuid"),
    genid: def.childText("genid"),
    hasGenid: firstChild(r, "genid") !== undefined,
    title: def.childText("title"),
    description: def.childText("description"),
    memoryKiB: def.memoryKiB,
    currentMemoryKiB: def.currentMemoryKiB,
    vcpus: vcpu ? (textContent(vcpu) ?? "").trim() : undefined,
    vcpuCurrent: getAttr(vcpu, "current"),
    os: {
      type: osType ? (textContent(osType) ?? "").trim() : undefined,
      arch: getAttr(osType, "arch"),
      machine: getAttr(osType, "machine"),
      firmware: getAttr(os, "firmware"),
      loader: loader ? (textContent(loader) ?? "").trim() || undefined : undefined,
      loaderReadonly: getAttr(loader, "readonly"),
      loaderType: getAttr(loader, "type"),
      nvram: os ? textContent(firstChild(os, "nvram"))?.trim() || undefined : undefined,
      boot: os ? childElements(os, "boot").map((b) => getAttr(b, "dev") ?? "") : [],
      smbiosMode: getAttr(os && firstChild(os, "smbios"), "mode"),
    },
    sysinfo: childElements(r, "sysinfo").map(readSysinfo),
    features: (() => {
      const f = firstChild(r, "features");
      return f ? childElements(f).map((e) => e.name) : [];
    })(),
    cpu: cpuEl
      ? {
          mode: getAttr(cpuEl, "mode"),
          model: textContent(firstChild(cpuEl, "model"))?.trim() || undefined,
          sockets: getAttr(topo, "sockets"),
          dies: getAttr(topo, "dies"),
          clusters: getAttr(topo, "clusters"),
          cores: getAttr(topo, "cores"),
          threads: getAttr(topo, "threads"),
        }
      : undefined,
    clockOffset: getAttr(firstChild(r, "clock"), "offset"),
    onPoweroff: def.childText("on_poweroff"),
    onReboot: def.childText("on_reboot"),
    onCrash: def.childText("on_crash"),
    emulator: devices ? textContent(firstChild(devices, "emulator"))?.trim() || undefined : undefined,
    disks: dev("disk").map(readDisk),
    interfaces: dev("interface").map(readInterface),
    chardevs: (["serial", "console", "channel"] as const).flatMap((k) => dev(k).map((e) => readChardev(k, e))),
    graphics: dev("graphics").map((g) => ({
      type: getAttr(g, "type"),
      port: getAttr(g, "port"),
      autoport: getAttr(g, "autoport"),
      listen: getAttr(g, "listen"),
      passwd: getAttr(g, "passwd"),
      passwdValidTo: getAttr(g, "passwdValidTo"),
    })),
    videoModels: dev("video").map((v) => getAttr(firstChild(v, "model"), "type") ?? ""),
    controllers: dev("controller").map((c) => ({
      type: getAttr(c, "type"),
      index: getAttr(c, "index"),
      model: getAttr(c, "model"),
    })),
    rngModels: dev("rng").map((e) => getAttr(e, "model") ?? ""),
    memballoonModel: getAttr(dev("memballoon")[0], "model"),
    tpmModels: dev("tpm").map((e) => getAttr(e, "model") ?? ""),
    qemuArgs: qemuCmd
      .flatMap((cmd) => qemuNamespaceChildren(cmd, "arg", qemuCmdScope))
      .map((a) => getAttr(a, "value") ?? ""),
    qemuEnv: qemuCmd
      .flatMap((cmd) => qemuNamespaceChildren(cmd, "env", qemuCmdScope))
      .map((a) => ({ name: getAttr(a, "name") ?? "", value: getAttr(a, "value") ?? "" })),
  };
}

/**
 * Every `<commandline>` of the QEMU namespace in a domain with its `<arg>` elements, found by
 * namespace URI whatever the prefix (as libvirt and {@link readDomain} read them).
 */
export function qemuCommandlines(root: XmlElement): { commandline: XmlElement; args: XmlElement[] }[] {
  const scope = nsScope(root, new Map());
  return qemuNamespaceChildren(root, "commandline", new Map()).map((commandline) => ({
    commandline,
    args: qemuNamespaceChildren(commandline, "arg", scope),
  }));
}

/** In-scope namespace declarations (prefix, `""` for the default namespace -> URI) inside `el`. */
function nsScope(el: XmlElement, parent: ReadonlyMap<string, string>): Map<string, string> {
  const m = new Map(parent);
  for (const a of el.attrs) {
    if (a.name === "xmlns") m.set("", a.value);
    else if (a.name.startsWith("xmlns:")) m.set(a.name.slice(6), a.value);
  }
  return m;
}

/**
 * The children of `parent` named `local` in the QEMU namespace, whatever their prefix: libvirt
 * reads its QEMU elements by namespace URI (qemuDomainDefNamespaceParse), so `ns0:commandline`
 * or `<commandline xmlns='...qemu/1.0'>` is `<qemu:commandline>`. `scope` is the namespace
 * scope outside `parent` (for the domain root: empty).
 */
function qemuNamespaceChildren(parent: XmlElement, local: string, scope: ReadonlyMap<string, string>): XmlElement[] {
  const inner = nsScope(parent, scope);
  return childElements(parent).filter((c) => {
    const i = c.name.indexOf(":");
    if ((i < 0 ? c.name : c.name.slice(i + 1)) !== local) return false;
    return nsScope(c, inner).get(i < 0 ? "" : c.name.slice(0, i)) === QEMU_NAMESPACE;
  });
}

/** Reads one `<sysinfo>`. */
export function readSysinfo(el: XmlElement): DomainSysinfo {
  const sys = firstChild(el, "system");
  const system: Record<string, string> = {};
  if (sys) {
    for (const e of childElements(sys, "entry")) {
      const n = getAttr(e, "name");
      if (n !== undefined && !(n in system)) system[n] = textContent(e) ?? "";
    }
  }
  return { type: getAttr(el, "type"), system, hasSystem: sys !== undefined };
}

/** Reads one `<disk>`. */
export function readDisk(el: XmlElement): DomainDisk {
  const src = firstChild(el, "source");
  const drv = firstChild(el, "driver");
  const tgt = firstChild(el, "target");
  const backing = findPath(el, "backingStore/source");
  return {
    type: getAttr(el, "type"),
    device: getAttr(el, "device") ?? "disk",
    driverName: getAttr(drv, "name"),
    driverType: getAttr(drv, "type"),
    sourceFile: getAttr(src, "file"),
    sourceDev: getAttr(src, "dev"),
    sourcePool: getAttr(src, "pool"),
    sourceVolume: getAttr(src, "volume"),
    targetDev: getAttr(tgt, "dev"),
    targetBus: getAttr(tgt, "bus"),
    backingFile: getAttr(backing, "file") ?? getAttr(backing, "dev"),
    serial: textContent(firstChild(el, "serial")),
    readonly: firstChild(el, "readonly") !== undefined,
    shareable: firstChild(el, "shareable") !== undefined,
    bootOrder: getAttr(firstChild(el, "boot"), "order"),
  };
}

/** Reads one `<interface>`. */
export function readInterface(el: XmlElement): DomainInterface {
  const src = firstChild(el, "source");
  return {
    type: getAttr(el, "type"),
    mac: getAttr(firstChild(el, "mac"), "address"),
    model: getAttr(firstChild(el, "model"), "type"),
    sourceNetwork: getAttr(src, "network"),
    sourceBridge: getAttr(src, "bridge"),
    sourceDev: getAttr(src, "dev"),
    targetDev: getAttr(firstChild(el, "target"), "dev"),
    bootOrder: getAttr(firstChild(el, "boot"), "order"),
  };
}

function readChardev(kind: DomainChardev["kind"], el: XmlElement): DomainChardev {
  const src = firstChild(el, "source");
  const tgt = firstChild(el, "target");
  return {
    kind,
    type: getAttr(el, "type"),
    sourcePath: getAttr(src, "path"),
    targetType: getAttr(tgt, "type"),
    targetName: getAttr(tgt, "name"),
    targetPort: getAttr(tgt, "port"),
  };
}
