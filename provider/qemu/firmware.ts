/**
 * Firmware selection as libvirt's QEMU driver does it (`src/qemu/qemu_firmware.c`,
 * qemuFirmwareFillDomain): `<os firmware='efi'|'bios'>` picks the first QEMU firmware
 * descriptor (QEMU's `docs/interop/firmware.json`) whose interface, target (architecture and
 * machine glob), features (`secure-boot`, `enrolled-keys`, `requires-smm`, `acpi-s3`, ...) and
 * mapping (flash `split`/`combined`/`stateless`, raw or qcow2; memory) match the domain, and
 * fills the definition from it: the `<loader>` (path, type, read-only, format, `secure='yes'`
 * and `<smm state='on'>` when the firmware requires SMM), the `<nvram template>` and the NVRAM
 * file libvirt makes (`NVRAM_DIR/NAME_VARS.fd`, `.qcow2`). A manual pflash `<loader>` whose path
 * a descriptor names is completed the same way, as libvirt does.
 *
 * Pure: the descriptors are read by the caller (the QEMU-direct backend reads the host's, the
 * corpus harness libvirt's test data); {@link orderDescriptorFiles} merges directory listings the
 * way libvirt does (qemuInteropFetchConfigs).
 */
import { DomainDef } from "../xml/domain";
import { DomainXmlError } from "../xml/errors";
import {
  XmlElement,
  childElements,
  element,
  firstChild,
  getAttr,
  insertOrdered,
  setAttr,
  setTextContent,
  textContent,
} from "../xml/tree";

/** A file of a flash mapping: its path and image format (`raw`, `qcow2`). */
export interface FirmwareFlashFile {
  readonly filename: string;
  readonly format: string;
}

/** How a firmware is mapped into the guest (firmware.json `FirmwareMapping`). */
export type FirmwareMapping =
  | {
      readonly device: "flash";
      /** `split` (executable + a per-domain copy of the NVRAM template), `combined` or `stateless`. */
      readonly mode: "split" | "combined" | "stateless";
      readonly executable: FirmwareFlashFile;
      /** The NVRAM template (split mode only). */
      readonly nvramTemplate?: FirmwareFlashFile;
    }
  | { readonly device: "memory"; readonly filename: string }
  | { readonly device: "kernel"; readonly filename: string };

/** An architecture and the machine type globs (`pc-q35-*`) a firmware runs on. */
export interface FirmwareTarget {
  readonly architecture: string;
  readonly machines: readonly string[];
}

/** One parsed QEMU firmware descriptor (a JSON file of firmware.json's `Firmware` schema). */
export interface FirmwareDescriptor {
  /** The file it was read from (named in errors). */
  readonly path: string;
  /** `bios`, `uefi`, `openfirmware`, `uboot`. */
  readonly interfaceTypes: readonly string[];
  readonly mapping: FirmwareMapping;
  readonly targets: readonly FirmwareTarget[];
  /** Known features only (`acpi-s3`, `requires-smm`, `secure-boot`, `enrolled-keys`, ...), as libvirt keeps them. */
  readonly features: readonly string[];
}

/** The descriptors to select from, in priority order, and the directories they were looked for in. */
export interface FirmwareDescriptors {
  readonly descriptors: readonly FirmwareDescriptor[];
  /** Named in the error when no descriptor fits. */
  readonly searched: readonly string[];
}

/**
 * The directories a system (root) libvirt reads descriptors from, highest priority first: a
 * file in an earlier directory overrides the file of the same name in a later one. A session
 * daemon also reads `$XDG_CONFIG_HOME/qemu/firmware` before them.
 */
export const FIRMWARE_DESCRIPTOR_DIRS: readonly string[] = ["/etc/qemu/firmware", "/usr/share/qemu/firmware"];

const INTERFACES = ["bios", "openfirmware", "uefi", "uboot"];
const FEATURES = [
  "acpi-s3",
  "acpi-s4",
  "amd-sev",
  "amd-sev-es",
  "amd-sev-snp",
  "enrolled-keys",
  "requires-smm",
  "secure-boot",
  "verbose-dynamic",
  "verbose-static",
];

/**
 * The descriptor files to parse, in the order libvirt tries them: `dirs` is highest priority
 * first, each with the regular files it holds (name and size); a name in an earlier directory
 * hides the same name in later ones, names starting with `.` are skipped, an empty file masks
 * the name (libvirt's qemuInteropFetchConfigs), and the result is sorted by file name.
 */
export function orderDescriptorFiles(
  dirs: readonly {
    readonly dir: string;
    readonly files: readonly { readonly name: string; readonly size: number }[];
  }[],
): string[] {
  const chosen = new Map<string, { path: string; size: number }>();
  for (const d of dirs)
    for (const f of d.files)
      if (!f.name.startsWith(".") && !chosen.has(f.name))
        chosen.set(f.name, { path: `${d.dir.replace(/\/+$/, "")}/${f.name}`, size: f.size });
  return [...chosen.keys()]
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((n) => chosen.get(n)!)
    .filter((f) => f.size > 0)
    .map((f) => f.path);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

function flashFile(v: unknown): FirmwareFlashFile | undefined {
  if (!isObject(v)) return undefined;
  const filename = str(v.filename);
  const format = str(v.format);
  return filename !== undefined && format !== undefined ? { filename, format } : undefined;
}

function parseMapping(v: unknown): FirmwareMapping | undefined {
  if (!isObject(v)) return undefined;
  const device = str(v.device);
  if (device === "memory" || device === "kernel") {
    const filename = str(v.filename);
    return filename === undefined ? undefined : { device, filename };
  }
  if (device !== "flash") return undefined;
  const mode = v.mode === undefined ? "split" : str(v.mode); // libvirt: "Historical default"
  if (mode !== "split" && mode !== "combined" && mode !== "stateless") return undefined;
  const executable = flashFile(v.executable);
  if (!executable) return undefined;
  if (mode !== "split") return { device, mode, executable };
  const nvramTemplate = flashFile(v["nvram-template"]);
  return nvramTemplate ? { device, mode, executable, nvramTemplate } : undefined;
}

/**
 * Parses one descriptor file as libvirt's qemuFirmwareParse does, or undefined when libvirt
 * would skip it (not JSON, a missing or malformed member, an unknown interface or device);
 * unknown features are dropped, as libvirt ignores them.
 */
export function parseFirmwareDescriptor(path: string, text: string): FirmwareDescriptor | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(doc)) return undefined;
  const ifs = doc["interface-types"];
  const targetsJson = doc.targets;
  const featuresJson = doc.features;
  if (!Array.isArray(ifs) || !Array.isArray(targetsJson) || !Array.isArray(featuresJson)) return undefined;
  const interfaceTypes = ifs.map(str);
  if (interfaceTypes.some((i) => i === undefined || !INTERFACES.includes(i))) return undefined;
  const mapping = parseMapping(doc.mapping);
  if (!mapping) return undefined;
  const targets: FirmwareTarget[] = [];
  for (const t of targetsJson) {
    if (!isObject(t) || str(t.architecture) === undefined || !Array.isArray(t.machines)) return undefined;
    targets.push({
      architecture: str(t.architecture)!,
      machines: t.machines.map(str).filter((m): m is string => m !== undefined),
    });
  }
  const features = featuresJson.map(str).filter((f): f is string => f !== undefined && FEATURES.includes(f));
  return { path, interfaceTypes: interfaceTypes as string[], mapping, targets, features };
}

/** GLib's g_pattern_match_simple: `*` any run, `?` one character. */
function globMatch(pattern: string, s: string): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
    "s",
  );
  return re.test(s);
}

/**
 * The machine type matched against descriptor globs. libvirt matches the canonical name
 * (`pc` and `q35` are QEMU aliases of the newest `pc-i440fx-X.Y` / `pc-q35-X.Y`); the builder
 * does not know the QEMU version, so an alias stands for its family.
 */
function canonicalMachine(machine: string): string {
  if (machine === "pc") return "pc-i440fx-latest";
  if (machine === "q35") return "pc-q35-latest";
  return machine;
}

/** `yes`/`no`/undefined of a tristate attribute, anything else refused naming it. */
function tristate(el: XmlElement | undefined, name: string, path: string): boolean | undefined {
  const v = getAttr(el, name);
  if (v === undefined) return undefined;
  if (v === "yes") return true;
  if (v === "no") return false;
  throw new DomainXmlError("invalid value", {
    path: `${path}/@${name}`,
    value: v,
    allowed: "yes, no",
    fix: `write ${name}='yes' or ${name}='no'`,
  });
}

/** What the selection reads from `<os>`, `<features>`, `<pm>` and `<launchSecurity>`. */
interface FirmwareRequest {
  firmware: "efi" | "bios" | undefined;
  arch: string;
  machine: string;
  loader: XmlElement | undefined;
  loaderType: string | undefined;
  loaderPath: string | undefined;
  loaderFormat: string | undefined;
  readonly: boolean | undefined;
  secure: boolean | undefined;
  stateless: boolean | undefined;
  nvram: XmlElement | undefined;
  nvramTemplate: string | undefined;
  kernel: string | undefined;
  secureBoot: boolean | undefined;
  enrolledKeys: boolean | undefined;
  smm: boolean | undefined;
  s3: boolean;
  s4: boolean;
  launchSecurity: string | undefined;
  sevPolicy: number;
}

const OS = "/domain/os";

function readRequest(root: XmlElement, os: XmlElement): FirmwareRequest {
  const fw = getAttr(os, "firmware");
  if (fw !== undefined && fw !== "efi" && fw !== "bios")
    throw new DomainXmlError("invalid firmware", {
      path: `${OS}/@firmware`,
      value: fw,
      allowed: "efi, bios",
      fix: "write <os firmware='efi'> or <os firmware='bios'>",
    });
  const type = firstChild(os, "type");
  const loader = firstChild(os, "loader");
  const nvram = firstChild(os, "nvram");
  const path = loader ? (textContent(loader) ?? "").trim() : "";
  let secureBoot: boolean | undefined;
  let enrolledKeys: boolean | undefined;
  // libvirt reads <firmware><feature> only with autoselection (an existing definition's features
  // without it are ignored: virDomainDefParseBootFirmwareOptions)
  const fwEl = fw !== undefined ? firstChild(os, "firmware") : undefined;
  for (const f of fwEl ? childElements(fwEl, "feature") : []) {
    const name = getAttr(f, "name");
    const enabled = tristate(f, "enabled", `${OS}/firmware/feature`);
    if (name === "secure-boot") secureBoot = enabled;
    else if (name === "enrolled-keys") enrolledKeys = enabled;
    else
      throw new DomainXmlError("invalid firmware feature", {
        path: `${OS}/firmware/feature/@name`,
        value: name,
        allowed: "secure-boot, enrolled-keys",
        fix: "write <feature enabled='yes' name='secure-boot'/> or name='enrolled-keys'",
      });
  }
  const features = firstChild(root, "features");
  const smmEl = features && firstChild(features, "smm");
  const smmState = getAttr(smmEl, "state");
  const pm = firstChild(root, "pm");
  const ls = firstChild(root, "launchSecurity");
  const policy = ls && firstChild(ls, "policy");
  const policyText = policy ? (textContent(policy) ?? "").trim() : "";
  return {
    firmware: fw,
    arch: getAttr(type, "arch") ?? "x86_64",
    machine: getAttr(type, "machine") ?? "pc",
    loader,
    loaderType: getAttr(loader, "type"),
    loaderPath: path === "" ? undefined : path,
    loaderFormat: getAttr(loader, "format") ?? (loader ? undefined : getAttr(nvram, "format")),
    readonly: tristate(loader, "readonly", `${OS}/loader`),
    secure: tristate(loader, "secure", `${OS}/loader`),
    stateless: tristate(loader, "stateless", `${OS}/loader`),
    nvram,
    nvramTemplate: getAttr(nvram, "template"),
    kernel: (textContent(firstChild(os, "kernel")) ?? "").trim() || undefined,
    secureBoot,
    enrolledKeys,
    smm: smmEl ? smmState !== "off" : undefined,
    s3: getAttr(pm && firstChild(pm, "suspend-to-mem"), "enabled") === "yes",
    s4: getAttr(pm && firstChild(pm, "suspend-to-disk"), "enabled") === "yes",
    launchSecurity: getAttr(ls, "type"),
    sevPolicy: /^(0x)?[0-9a-f]+$/i.test(policyText) ? Number.parseInt(policyText, 16) : 0,
  };
}

/** libvirt's qemuFirmwareMatchDomain: whether descriptor `fw` fits the request. */
function matches(r: FirmwareRequest, fw: FirmwareDescriptor): boolean {
  const want =
    r.firmware === "efi"
      ? "uefi"
      : r.firmware === "bios"
        ? "bios"
        : r.loaderType === "pflash"
          ? "uefi"
          : r.loaderType === "rom"
            ? "bios"
            : undefined;
  if (want === undefined || !fw.interfaceTypes.includes(want)) return false;
  const m = fw.mapping;
  // qemuFirmwareMatchesPaths
  if (m.device === "flash") {
    if (r.loaderPath !== undefined && r.loaderPath !== m.executable.filename) return false;
    if (r.nvramTemplate !== undefined && (m.mode !== "split" || r.nvramTemplate !== m.nvramTemplate?.filename))
      return false;
  } else if (m.device === "memory") {
    if (r.loaderPath !== undefined && r.loaderPath !== m.filename) return false;
  } else if (r.kernel !== undefined && r.kernel !== m.filename) return false;
  const machine = canonicalMachine(r.machine);
  if (!fw.targets.some((t) => t.architecture === r.arch && t.machines.some((g) => globMatch(g, machine)))) return false;
  const has = (f: string) => fw.features.includes(f);
  if (r.s3 && !has("acpi-s3")) return false;
  if (r.s4 && !has("acpi-s4")) return false;
  if (r.secureBoot !== undefined && r.secureBoot !== has("secure-boot")) return false;
  if (r.enrolledKeys !== undefined && r.enrolledKeys !== has("enrolled-keys")) return false;
  if (has("requires-smm")) {
    if (r.smm === false) return false;
    if (r.loader && r.secure === false) return false;
  } else if (r.loader && r.secure === true) return false;
  if (m.device === "flash") {
    if (r.loader && r.loaderType !== undefined && r.loaderType !== "pflash") return false;
    if (r.loader && r.stateless === true) {
      if (m.mode !== "stateless") return false;
    } else if (m.mode !== "split") return false;
    // libvirt asks for a combined build here, which the split/stateless test above already excluded
    if (r.loader && r.readonly === false) return false;
    if (m.executable.format !== "raw" && m.executable.format !== "qcow2") return false;
    if (r.loaderFormat !== undefined && m.executable.format !== r.loaderFormat) return false;
    if (m.mode === "split" && m.nvramTemplate!.format !== "raw" && m.nvramTemplate!.format !== "qcow2") return false;
  } else if (m.device === "memory") {
    if (r.loader && r.loaderType !== undefined && r.loaderType !== "rom") return false;
    if (r.loader && r.readonly === false) return false;
  }
  if (r.launchSecurity === "sev") {
    if (!has("amd-sev")) return false;
    if (r.sevPolicy & (1 << 2) && !has("amd-sev-es")) return false;
  } else if (r.launchSecurity === "sev-snp" && !has("amd-sev-snp")) return false;
  return true;
}

/** virDomainDefOSValidate: the `<os>` shapes libvirt refuses before selecting, with its messages. */
function validateOs(r: FirmwareRequest): void {
  const bad = (reason: string, path: string, fix: string, value?: string) =>
    new DomainXmlError(reason, { path, value, category: "unsupported configuration", fix });
  if (r.firmware) {
    if (r.enrolledKeys === true && r.secureBoot === false)
      throw bad(
        "firmware feature 'enrolled-keys' cannot be enabled when firmware feature 'secure-boot' is disabled",
        `${OS}/firmware/feature/@enabled`,
        "enable secure-boot too, or disable enrolled-keys",
        "yes",
      );
    if (r.loader && r.nvram && r.firmware !== "efi")
      throw bad(
        `firmware type '${r.firmware}' does not support nvram`,
        `${OS}/nvram`,
        "remove <nvram>, or write <os firmware='efi'>",
      );
  } else {
    if (!r.loader) return;
    if (r.loaderPath === undefined)
      throw bad(
        "no loader path specified and firmware auto selection disabled",
        `${OS}/loader`,
        "write the firmware path in <loader>, or write <os firmware='efi'>",
      );
  }
  if (!r.loader) return;
  if (r.stateless === true) {
    if (r.nvramTemplate !== undefined)
      throw bad(
        "NVRAM template is not permitted when loader is stateless",
        `${OS}/nvram/@template`,
        "remove <nvram> or stateless='yes'",
        r.nvramTemplate,
      );
    if (r.nvram)
      throw bad("NVRAM is not permitted when loader is stateless", `${OS}/nvram`, "remove <nvram> or stateless='yes'");
  } else if (r.stateless === false) {
    if (!r.firmware && r.loaderType !== "pflash")
      throw bad("Only pflash loader type permits NVRAM", `${OS}/loader/@stateless`, "write type='pflash'", "no");
    if (r.firmware && r.firmware !== "efi")
      throw bad("Only EFI firmware permits NVRAM", `${OS}/loader/@stateless`, "write <os firmware='efi'>", "no");
  }
}

/** The order of `<os>` children, as libvirt writes them. */
const OS_ORDER = ["type", "firmware", "loader", "nvram", "bootloader", "kernel", "initrd", "cmdline", "shim", "dtb"];

/** The NVRAM file name libvirt makes: `DIR/NAME_VARS.fd` (raw) or `.qcow2` (qemuFirmwareEnsureNVRAM). */
export function nvramFileName(dir: string, name: string, format: string | undefined): string {
  return `${dir.replace(/\/+$/, "")}/${name}_VARS${format === "qcow2" ? ".qcow2" : format === "raw" ? ".fd" : ""}`;
}

/** Whether an `<nvram>` names its storage (a file path, or a typed `<source>`). */
function nvramHasSource(nvram: XmlElement): boolean {
  if (getAttr(nvram, "type") !== undefined) return !!firstChild(nvram, "source");
  return (textContent(nvram) ?? "").trim() !== "";
}

/**
 * The definition with its firmware filled in as libvirt's qemuFirmwareFillDomain leaves it
 * (the inactive definition libvirt keeps, not an ABI update: a `<loader>` without a format asks
 * for raw): `def` itself when there is nothing to fill, else a copy. `descriptors` undefined:
 * autoselection is refused (nothing to select from), manual firmware is filled as with no
 * descriptor fitting (raw unless written, its NVRAM named); `nvramDir` is where a missing NVRAM
 * file goes (`NAME_VARS.fd`, `.qcow2` for qcow2). Refuses, with libvirt's
 * message, an `<os>` libvirt refuses and an autoselection no descriptor fits (naming the
 * features asked and the directories searched).
 */
export function fillFirmware(
  def: DomainDef,
  descriptors: FirmwareDescriptors | undefined,
  nvramDir: string,
): DomainDef {
  const os0 = firstChild(def.root, "os");
  if (!os0) return def;
  const r0 = readRequest(def.root, os0);
  validateOs(r0);
  for (const [el, p] of [
    [r0.loader, "loader"],
    [r0.nvram, "nvram"],
  ] as const) {
    for (const attr of p === "loader" ? ["format"] : ["format", "templateFormat"]) {
      const f = getAttr(el, attr);
      if (f !== undefined && f !== "raw" && f !== "qcow2")
        throw new DomainXmlError(`Unsupported ${p} format '${f}'`, {
          path: `${OS}/${p}/@${attr}`,
          value: f,
          allowed: "raw, qcow2",
          category: "unsupported configuration",
          fix: `write ${attr}='raw' or ${attr}='qcow2'`,
        });
    }
  }
  const auto = r0.firmware !== undefined;
  if (!auto && (!r0.loader || (r0.loaderType ?? "rom") === "rom")) return def;
  // manual pflash firmware is filled (format, NVRAM name) whether or not the host has descriptors, as libvirt does
  if (auto && !descriptors)
    throw new DomainXmlError("firmware autoselection has no firmware descriptors to select from", {
      path: `${OS}/@firmware`,
      value: r0.firmware,
      category: "unsupported configuration",
      fix: "install the firmware package that ships QEMU firmware descriptors (Debian: ovmf, seabios), or write the <loader> path",
    });
  const out = def.clone();
  const os = firstChild(out.root, "os")!;
  // qemuDomainDefBootPostParse: an existing definition's autoselection asks for a raw build
  if (auto && !firstChild(os, "loader")) {
    const format = getAttr(firstChild(os, "nvram"), "format") ?? "raw";
    insertOrdered(os, element("loader", { format }), OS_ORDER);
  } else if (auto && getAttr(firstChild(os, "loader"), "format") === undefined)
    setAttr(firstChild(os, "loader")!, "format", "raw");
  const r = readRequest(out.root, os);
  const fw = descriptors?.descriptors.find((d) => matches(r, d));
  if (fw) enableFeatures(out.root, os, fw);
  else if (auto) {
    const asked = [
      `${r.arch} ${r.machine}`,
      ...(r.secureBoot !== undefined ? [`secure-boot ${r.secureBoot ? "on" : "off"}`] : []),
      ...(r.enrolledKeys !== undefined ? [`enrolled-keys ${r.enrolledKeys ? "on" : "off"}`] : []),
      ...(r.smm === false ? ["smm off"] : []),
      ...(r.secure !== undefined ? [`secure loader ${r.secure ? "yes" : "no"}`] : []),
      ...(r.stateless ? ["stateless"] : []),
      ...(r.readonly === false ? ["read-write loader"] : []),
      ...(r.loaderFormat ? [`format ${r.loaderFormat}`] : []),
      ...(r.loaderPath ? [`loader ${r.loaderPath}`] : []),
      ...(r.nvramTemplate ? [`template ${r.nvramTemplate}`] : []),
      ...(r.s3 ? ["acpi-s3"] : []),
      ...(r.s4 ? ["acpi-s4"] : []),
    ];
    throw new DomainXmlError(
      `Unable to find '${r.firmware!}' firmware that is compatible with the current configuration`,
      {
        path: `${OS}/@firmware`,
        value: r.firmware,
        category: "unsupported configuration",
        allowed: `a firmware descriptor for ${asked.join(", ")}; searched ${descriptors?.searched.join(", ") || "no directory"} (${descriptors?.descriptors.length ?? 0} descriptors)`,
        fix: "install a firmware that has these features (Debian: ovmf), or ask for fewer (<os><firmware><feature .../>, <smm>, <loader secure>)",
      },
    );
  } else {
    // manual firmware no descriptor names (libvirt's legacy list adds nothing to the command line): raw
    const loader = firstChild(os, "loader");
    if (loader && getAttr(loader, "format") === undefined) setAttr(loader, "format", "raw");
  }
  ensureNvram(out, os, nvramDir);
  return out;
}

/** qemuFirmwareEnableFeaturesModern: the definition takes the chosen descriptor's loader and features. */
function enableFeatures(root: XmlElement, os: XmlElement, fw: FirmwareDescriptor): void {
  const m = fw.mapping;
  if (m.device === "kernel")
    throw new DomainXmlError("a kernel firmware is not built", {
      path: `${OS}/@firmware`,
      value: fw.path,
      category: "unsupported configuration",
      fix: "write the <loader> path, or apply through libvirt",
    });
  let loader = firstChild(os, "loader");
  if (!loader) {
    loader = element("loader");
    insertOrdered(os, loader, OS_ORDER);
  }
  if (m.device === "flash") {
    setAttr(loader, "readonly", "yes");
    setAttr(loader, "type", "pflash");
    setAttr(loader, "format", m.executable.format);
    setTextContent(loader, m.executable.filename);
    if (m.mode === "split") {
      let nvram = firstChild(os, "nvram");
      if (nvram) {
        setAttr(nvram, "template", undefined);
        setAttr(nvram, "templateFormat", undefined);
      }
      const type = getAttr(nvram, "type");
      if (!nvram || type === undefined || type === "file" || type === "block") {
        if (!nvram) {
          nvram = element("nvram");
          insertOrdered(os, nvram, OS_ORDER);
        }
        setAttr(nvram, "template", m.nvramTemplate!.filename);
        setAttr(nvram, "templateFormat", m.nvramTemplate!.format);
      }
    }
  } else {
    setAttr(loader, "type", "rom");
    setTextContent(loader, m.filename);
  }
  if (fw.features.includes("requires-smm")) {
    let features = firstChild(root, "features");
    if (!features) {
      features = element("features");
      root.children.push(features);
    }
    let smm = firstChild(features, "smm");
    if (!smm) {
      smm = element("smm");
      features.children.push(smm);
    }
    setAttr(smm, "state", "on");
    setAttr(loader, "secure", "yes");
  }
}

/** qemuFirmwareEnsureNVRAM: a read-only, stateful pflash loader gets its NVRAM file named. */
function ensureNvram(def: DomainDef, os: XmlElement, nvramDir: string): void {
  const loader = firstChild(os, "loader");
  if (!loader || getAttr(loader, "type") !== "pflash" || getAttr(loader, "readonly") !== "yes") return;
  if (getAttr(loader, "stateless") === "yes") return;
  const loaderFormat = getAttr(loader, "format");
  let nvram = firstChild(os, "nvram");
  if (nvram && getAttr(nvram, "format") === undefined && loaderFormat !== undefined)
    setAttr(nvram, "format", loaderFormat);
  if (nvram && nvramHasSource(nvram)) return;
  if (!nvram) {
    nvram = element("nvram");
    insertOrdered(os, nvram, OS_ORDER);
  }
  const format = getAttr(nvram, "templateFormat") ?? loaderFormat;
  setAttr(nvram, "type", undefined);
  for (const c of childElements(nvram)) nvram.children.splice(nvram.children.indexOf(c), 1);
  if (format !== undefined) setAttr(nvram, "format", format);
  else setAttr(nvram, "format", undefined);
  setTextContent(nvram, nvramFileName(nvramDir, def.name ?? "", format));
}

const ACPI_TABLE_SIGNATURES: Readonly<Record<string, string>> = { raw: "", slic: "SLIC", msdm: "MSDM" };

/**
 * `<os><acpi><table type='raw|slic|msdm'>PATH</table></acpi>` as libvirt writes them
 * (qemuBuildBootCommandLine, after the kernel options): one `-acpitable [sig=SIG,]file=PATH` each,
 * in document order. As libvirt: `slic` and `msdm` may appear once each, `rawset` is refused.
 */
export function acpiTableArgs(root: XmlElement): string[] {
  const acpi = firstChild(firstChild(root, "os") ?? root, "acpi");
  if (!acpi) return [];
  const seen = new Set<string>();
  const out: string[] = [];
  for (const [i, t] of childElements(acpi).entries()) {
    const P = `${OS}/acpi/table[${i + 1}]`;
    if (t.name !== "table")
      throw new DomainXmlError("unknown element", {
        path: `${OS}/acpi/${t.name}`,
        category: "unsupported configuration",
        fix: "write <table type='raw|slic|msdm'>PATH</table>",
      });
    const type = getAttr(t, "type");
    const sig = type === undefined ? undefined : ACPI_TABLE_SIGNATURES[type];
    if (sig === undefined)
      throw new DomainXmlError(
        type === "rawset" ? "ACPI table type 'rawset' is not supported" : "invalid ACPI table type",
        {
          path: `${P}/@type`,
          value: type,
          allowed: "raw, slic, msdm",
          category: "unsupported configuration",
          fix: "write type='raw', 'slic' or 'msdm'",
        },
      );
    if (type !== "raw" && seen.has(type!))
      throw new DomainXmlError(`ACPI table type '${type!}' may only appear once`, {
        path: `${P}/@type`,
        value: type,
        fix: `keep one <table type='${type!}'>`,
      });
    seen.add(type!);
    const file = (textContent(t) ?? "").trim();
    if (file === "")
      throw new DomainXmlError("missing ACPI table path", { path: P, fix: "write the table file's path in <table>" });
    out.push(`${sig ? `sig=${sig},` : ""}file=${file.replace(/,/g, ",,")}`);
  }
  return out;
}

/**
 * `<os><bios rebootTimeout='MS'>` as the `-boot reboot-timeout=` option (SeaBIOS retries the boot
 * after MS milliseconds, -1: never), from -1 to 65535 as libvirt validates it; undefined without
 * one. `useserial='yes'` (the sgabios option ROM) is refused; `useserial='no'` is the default.
 */
export function biosRebootTimeout(root: XmlElement): string | undefined {
  const bios = firstChild(firstChild(root, "os") ?? root, "bios");
  if (!bios) return undefined;
  const P = `${OS}/bios`;
  const serial = getAttr(bios, "useserial");
  if (serial !== undefined && serial !== "no")
    throw new DomainXmlError("cannot be expressed on the QEMU command line without libvirt", {
      path: `${P}/@useserial`,
      value: serial,
      category: "unsupported configuration",
      fix: "the serial graphics adapter (sgabios) is not built: remove useserial, or apply through libvirt",
    });
  const v = getAttr(bios, "rebootTimeout");
  if (v === undefined) return undefined;
  const n = /^-?[0-9]+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < -1 || n > 65535)
    throw new DomainXmlError("invalid value for rebootTimeout, must be in range [-1,65535]", {
      path: `${P}/@rebootTimeout`,
      value: v,
      allowed: "a whole number from -1 to 65535",
      category: "unsupported configuration",
      fix: "write rebootTimeout='-1' (never) or milliseconds up to 65535",
    });
  return String(n);
}
