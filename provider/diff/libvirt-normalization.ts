/**
 * What libvirt itself normalizes in a domain definition, as data: its documented defaults (a
 * value libvirt does not write back), runtime-only values (live/status state and generated
 * paths the inactive definition drops), scaled integers (value + unit) and bitmaps, and the
 * values it respells. The semantic diff ({@link ./semantic}) consults these tables so a
 * desired value libvirt only normalizes is no change.
 *
 * Paths here are generic: element names without identity keys, e.g.
 * `/domain/devices/disk/target/@tray` (the diff strips `[target=vda]`-style keys first).
 *
 * Pure: no I/O, no Pulumi.
 */
import { XmlElement, childElements, firstChild, getAttr, textContent } from "../xml/tree";

/** One default of libvirt: a value equal to it that libvirt's XML lacks is no change. */
export interface LibvirtDefault {
  /** Generic path of the attribute (`.../@name`) or of the element whose text it is. */
  readonly path: RegExp;
  /** The default value; `null`: any value is dropped by libvirt (under `when`). */
  readonly value: string | null;
  /** Only when this holds for the element carrying the attribute (or text). */
  readonly when?: (el: XmlElement, root: XmlElement) => boolean;
  /** Where libvirt does it. */
  readonly source: string;
}

const hostModelCpu = (_el: XmlElement, root: XmlElement) => {
  const cpu = firstChild(root, "cpu");
  return getAttr(cpu, "mode") === "host-model" && (textContent(firstChild(cpu!, "model")) ?? "").trim() === "";
};

/** libvirt's documented defaults, the values its formatters omit. */
export const LIBVIRT_DEFAULTS: readonly LibvirtDefault[] = [
  {
    path: /^\/domain\/devices\/video\/model\/@primary$/,
    value: "no",
    source: "virDomainVideoDefFormat writes only primary='yes'",
  },
  {
    path: /^\/domain\/devices\/disk\/driver\/@cache$/,
    value: "default",
    source: "the disk driver formatter skips cache 'default'",
  },
  {
    path: /^\/domain\/devices\/disk\/target\/@tray$/,
    value: "closed",
    source: "the disk target formatter writes only tray='open'",
  },
  {
    path: /^\/domain\/devices\/disk\/@snapshot$/,
    value: "no",
    when: (el) => firstChild(el, "readonly") !== undefined,
    source: "virDomainDiskDefPostParse sets snapshot 'no' on readonly disks, the formatter omits it",
  },
  {
    path: /^\/domain\/devices\/.*\/protocol\/@type$/,
    value: "raw",
    source: "the chardev source formatter skips protocol 'raw'",
  },
  {
    path: /^\/domain\/devices\/graphics\/@autoport$/,
    value: "no",
    when: (el) =>
      getAttr(el, "type") === "spice" && getAttr(el, "port") === undefined && getAttr(el, "tlsPort") === undefined,
    source: "virDomainDefPostParseGraphics turns spice without ports into <listen type='none'>",
  },
  {
    path: /^\/domain\/cpu\/model\/@fallback$/,
    value: null,
    when: (el, root) => hostModelCpu(el, root),
    source: "a host-model CPU without a model name is formatted without <model>",
  },
  {
    path: /^\/domain\/vcpu\/@current$/,
    value: null,
    when: (el) => Number(getAttr(el, "current")) === Number((textContent(el) ?? "").trim()),
    source: "virDomainDefFormat writes <vcpu current> only when fewer vCPUs than the maximum are online",
  },
  {
    path: /^\/domain\/devices\/redirfilter\/usbdev\/@(class|vendor|product|version)$/,
    value: "-1",
    source: "virDomainRedirFilterUSBDevDefFormat skips -1 (any)",
  },
  {
    path: /^\/domain\/memtune\/(hard_limit|soft_limit|swap_hard_limit)$/,
    value: "9007199254740991",
    source: "VIR_DOMAIN_MEMORY_PARAM_UNLIMITED (KiB) is not formatted",
  },
  {
    path: /^\/domain\/devices\/interface\/coalesce\/rx\/frames\/@max$/,
    value: "0",
    source: "virDomainNetDefCoalesceFormatXML skips max 0",
  },
  {
    path: /^\/domain\/os\/bootmenu\/@timeout$/,
    value: null,
    when: (el) => getAttr(el, "enable") !== "yes",
    source: "virDomainDefParseBootXML reads the timeout only when enable='yes'",
  },
  {
    path: /^\/domain\/devices\/channel\/source\/@mode$/,
    value: "bind",
    when: (el) => isGeneratedChannelPath(getAttr(el, "path")),
    source:
      "the QEMU driver generates the socket of a unix channel without a path, and drops it from the inactive definition",
  },
];

/** One runtime-only value: live/status state or a path libvirt generates and drops again. */
export interface RuntimeOnly {
  /** Generic path of the attribute or element. */
  readonly path: RegExp;
  /** Only for values for which this holds. */
  readonly when?: (value: string) => boolean;
}

/** The channel directory of the QEMU driver (paths it generates for unix channels). */
const GENERATED_CHANNEL = /^\/var\/(lib|run)\/libvirt\/qemu\/channel\//;

function isGeneratedChannelPath(p: string | undefined): boolean {
  return p === undefined || GENERATED_CHANNEL.test(p);
}

/** Runtime-only values (beside `<alias>` and `<seclabel>`): never a desired state. */
export const RUNTIME_ONLY: readonly RuntimeOnly[] = [
  { path: /^\/domain\/devices\/channel\/target\/@state$/ },
  { path: /^\/domain\/devices\/channel\/source\/@path$/, when: (v) => GENERATED_CHANNEL.test(v) },
  { path: /^\/domain\/devices\/disk\/(.*\/)?(source|backingStore)\/@index$/ },
  { path: /^\/domain\/devices\/disk\/mirror$/ },
  { path: /^\/domain\/devices\/interface\/source\/@portid$/ },
  { path: /^\/domain\/devices\/graphics\/@socket$/, when: (v) => /^\/var\/(lib|run)\/libvirt\/qemu\/domain-/.test(v) },
];

/**
 * Values libvirt derives itself and ignores in the input: whatever the desired XML says there,
 * libvirt writes its own, so they are never a desired state.
 */
export const DERIVED_VALUES: readonly RuntimeOnly[] = [
  // virDomainDefParseXML sets each console's target port to its index among the consoles
  { path: /^\/domain\/devices\/console\/target\/@port$/ },
];

/** A scaled integer: text (or attribute) plus a unit attribute, compared in `base`. */
export interface ScaledValue {
  /** Generic path of the element. */
  readonly path: RegExp;
  /** For an attribute pair (`<page size= unit=>`): the value attribute; else the element text. */
  readonly attr?: string;
  /** The unit when none is written. */
  readonly defaultUnit: string;
  /** The unit libvirt stores and writes it in (`KiB` rounds up, as libvirt does). */
  readonly base: "KiB" | "bytes";
}

/** Every libvirt scaled integer of a domain (virDomainParseScaledValue, virScaleInteger). */
export const SCALED_VALUES: readonly ScaledValue[] = [
  { path: /^\/domain\/(memory|currentMemory|maxMemory)$/, defaultUnit: "KiB", base: "KiB" },
  {
    path: /^\/domain\/memtune\/(hard_limit|soft_limit|swap_hard_limit|min_guarantee)$/,
    defaultUnit: "KiB",
    base: "KiB",
  },
  { path: /^\/domain\/devices\/controller\/pcihole64$/, defaultUnit: "KiB", base: "KiB" },
  { path: /\/metadata_cache\/max_size$/, defaultUnit: "bytes", base: "bytes" },
  {
    path: /^\/domain\/devices\/memory\/(source|target)\/(size|requested|block|current|alignsize|pagesize)$/,
    defaultUnit: "KiB",
    base: "KiB",
  },
  { path: /^\/domain\/devices\/memory\/target\/label\/size$/, defaultUnit: "KiB", base: "KiB" },
  { path: /^\/domain\/memoryBacking\/hugepages\/page$/, attr: "size", defaultUnit: "KiB", base: "KiB" },
  { path: /^\/domain\/cpu\/numa\/cell$/, attr: "memory", defaultUnit: "KiB", base: "KiB" },
];

/** Attributes that are libvirt bitmaps (virBitmapParse), compared as sets. */
export const BITMAP_ATTRIBUTES = /\/@(cpuset|nodeset|cpus|vcpus|iothreads)$/;

/** A value libvirt respells: both sides go through `normalize` before comparison. */
export interface Respelling {
  readonly path: RegExp;
  readonly normalize: (value: string, el: XmlElement) => string;
  readonly source: string;
}

/** Values libvirt writes in its own spelling. */
export const RESPELLINGS: readonly Respelling[] = [
  {
    path: /^\/domain\/devices\/(disk|hostdev)\/source\/@name$/,
    normalize: (v, el) => (getAttr(el, "protocol") === "iscsi" && !v.includes("/") ? `${v}/0` : v),
    source: "virDomainPostParseCheckISCSIPath appends LUN /0 to an iSCSI target without one",
  },
  {
    path: /^\/domain\/devices\/interface\/model\/@type$/,
    normalize: (v) => v.toLowerCase(),
    source: "known NIC models are matched case-insensitively and written in lower case",
  },
  {
    path: /^\/domain\/devices\/redirfilter\/usbdev\/@version$/,
    normalize: (v) => {
      const m = /^(\d+)\.(\d{1,2})$/.exec(v);
      return m?.[1] && m[2] ? `${Number(m[1])}.${m[2].padEnd(2, "0")}` : v;
    },
    source: "a redirfilter version is a BCD number: '9.4' is written '9.40'",
  },
];

/** The path without identity keys: `/domain/devices/disk[target=vda]/@x` -> `/domain/devices/disk/@x`. */
export function genericPath(path: string): string {
  return path.replace(/\[[^\]]*\]/g, "");
}

/** Whether a desired value at `path` (on element `el`) equals libvirt's default there. */
export function isLibvirtDefault(path: string, value: string, el: XmlElement, root: XmlElement): boolean {
  const gp = genericPath(path);
  return LIBVIRT_DEFAULTS.some(
    (d) => d.path.test(gp) && (d.value === null || d.value === value.trim()) && (!d.when || d.when(el, root)),
  );
}

/** Whether the value at `path` is runtime-only or derived by libvirt ({@link RUNTIME_ONLY}, {@link DERIVED_VALUES}). */
export function isRuntimeOnlyValue(path: string, value: string): boolean {
  const gp = genericPath(path);
  return [...RUNTIME_ONLY, ...DERIVED_VALUES].some((r) => r.path.test(gp) && (!r.when || r.when(value)));
}

/** The scaled-value entry of an element path, if any. */
export function scaledEntry(path: string): ScaledValue | undefined {
  const gp = genericPath(path);
  return SCALED_VALUES.find((s) => s.path.test(gp));
}

/** Applies the respellings of `path` to a value. */
export function respell(path: string, value: string, el: XmlElement): string {
  const gp = genericPath(path);
  return RESPELLINGS.reduce((v, r) => (r.path.test(gp) ? r.normalize(v, el) : v), value);
}

/** Whether a desired element holds only libvirt defaults or runtime-only values (libvirt writes none of it). */
export function isDefaultOnly(
  el: XmlElement,
  path: string,
  root: XmlElement,
  scaledText?: (el: XmlElement, path: string) => string | undefined,
): boolean {
  if (isRuntimeOnlyValue(path, "")) return true;
  const scaled = scaledEntry(path);
  for (const a of el.attrs) {
    if (a.name.startsWith("xmlns")) continue;
    if (scaled && a.name === "unit") continue;
    const ap = `${path}/@${a.name}`;
    if (!isLibvirtDefault(ap, a.value, el, root) && !isRuntimeOnlyValue(ap, a.value)) return false;
  }
  const text = (textContent(el) ?? "").trim();
  const kids = childElements(el);
  if (kids.length === 0 && text !== "") {
    const v = scaled && scaledText ? (scaledText(el, path) ?? text) : text;
    if (!isLibvirtDefault(path, v, el, root)) return false;
  }
  return kids.every((k) => isDefaultOnly(k, `${path}/${k.name}`, root, scaledText));
}
