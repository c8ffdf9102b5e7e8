/**
 * The QEMU command line for a domain: the job of libvirt's QEMU driver
 * (`src/qemu/qemu_command.c`), done by us for the direct-QEMU backend and for `qemu-argv`.
 *
 * One orchestrator ({@link buildQemuArgv}) calls small builders in libvirt's order; each builder
 * pushes its arguments as strings through `add` (devices as JSON `-device`/`-blockdev` values,
 * accepted by QEMU >= 7.2), and aliases are deterministic (`virtio-disk0`, `hostnet0`, `net0`). `-uuid` is the hwuuid when it
 * is valid, else the uuid, exactly as libvirt >= 11.7. What cannot be expressed without libvirt
 * is a {@link DomainXmlError} naming the element.
 *
 * Pure: no I/O.
 */
import { DomainDef, DomainDisk, DomainGraphics, DomainInterface, readDomain, DomainView } from "../xml/domain";
import { DomainXmlError } from "../xml/errors";
import { DomainIdentity, resolveIdentity } from "../xml/identity";
import { XmlElement, childElements, firstChild, getAttr, textContent } from "../xml/tree";
import { toKiB } from "../xml/units";
import { canonicalBitmap } from "../xml/bitmap";
import { normalizeUuid } from "../xml/uuid";
import { checkExpressedPaths } from "./paths";
import * as media from "./media";
import * as chardev from "./chardev";
import * as iv from "./input-video";
import {
  buildHostdevs,
  buildHubs,
  buildIommu,
  buildPanics,
  buildRedirdevs,
  buildSmartcards,
  buildVsock,
  checkLinkState,
  defaultNicModel,
  hostdevsHaveBootOrder,
  hostdevsNeedingSlots,
  interfaceNetdev,
  nicDeviceProps,
  nicIds,
  panicCpuFlags,
  usbPortsBeforeInputs,
  usbRootPorts,
} from "./hostdev-net";
import {
  HostMemoryInfo,
  LIBVIRT_MEMORY_BACKING_DIR,
  checkAlignedMemoryKiB,
  checkMachineBasics,
  cpuCacheAndAddressOptions,
  featureCpuOptions,
  balloonTargetBytes,
  iothreadObjects,
  smmOptions,
  machineMemoryOptions,
  mainRamBackend,
  memLock,
  readCellMemory,
  readHmat,
  readMemoryBacking,
  ramBackendObject,
  needsRamObject,
  readNumatune,
  hugepageFor,
  vcpuCpuAffinity,
} from "./memory-cpu";
import {
  ICH9_COMPANIONS,
  USB_CONTROLLER_DRIVERS,
  buildFilesystems,
  checkBootOrders,
  rootHotplugGlobal,
  checkDiskTargets,
  controllerDriverProps,
  deviceJson,
  diskBlockdevProps,
  diskDeviceProps,
  diskIoTune,
  diskIothreadProps,
  checkDiskSourceSeclabels,
  checkDiskNeedsLibvirt,
  checkStartupPolicy,
  implicitScsiControllers,
  implicitScsiKey,
  libvirtControllerOrder,
  backingChain,
  networkStorage,
  usbControllerId,
  usbControllerProps,
  usbDiskPorts,
} from "./storage";
import { buildMemoryDevices } from "./memory-devices";
import { FirmwareDescriptors, acpiTableArgs, biosRebootTimeout, fillFirmware } from "./firmware";
import {
  AUTOASSIGN,
  INTEGRATED,
  PCIE_DEVICE,
  PCI_DEVICE,
  PciAddr,
  PciLayout,
  PciRequest,
  addrProp,
  assignControllerIndexes,
  checkUsbControllers,
  hasPciAddr,
  libvirtUint,
  scsiIothreadProps,
  layoutPci,
  pciControllerDevice,
  writtenPciAddr,
} from "./controllers";

export { chardevBackend } from "./chardev";
import { SwtpmSpec, TpmOptions, buildTpms } from "./tpm";
import * as platform from "./platform";

/** Where the per-domain runtime files go; all paths are passed as they are. */
export interface QemuArgvOptions extends HostMemoryInfo, TpmOptions {
  /** Path of the QMP monitor socket. @default `/run/libvirt-domain/<name>/qmp.sock` */
  readonly qmpSocketPath?: string;
  /** A pid file QEMU writes (`-pidfile`). @default none */
  readonly pidFilePath?: string;
  /** Replaces `<emulator>` (e.g. a QEMU inside a chroot). @default `<emulator>`, else `qemu-system-<arch>` */
  readonly emulator?: string;
  /** Start paused (`-S`), as libvirt does. @default false */
  readonly startPaused?: boolean;
  /** Run QEMU daemonized (`-daemonize`). @default false */
  readonly daemonize?: boolean;
  /**
   * Where the files holding secrets (a VNC password) go; QEMU reads each once, at start, through
   * `-object secret,file=...`, so the password is never on the command line.
   * @default `/run/libvirt-domain/<name>`
   */
  readonly secretDir?: string;
  /**
   * Where the NVRAM of a pflash loader goes when `<nvram>` names no file: `DIR/NAME_VARS.fd`, as
   * libvirt names it. @default {@link LIBVIRT_NVRAM_DIR}
   */
  readonly nvramDir?: string;
  /**
   * The QEMU firmware descriptors `<os firmware='efi'|'bios'>` selects from (and a manual pflash
   * `<loader>` is completed from), in priority order (provider/qemu/firmware.ts). Without them
   * autoselection is refused and a manual loader is taken as written.
   */
  readonly firmware?: FirmwareDescriptors;
  /**
   * The directory QEMU makes file-backed guest RAM in (`<memoryBacking><source type='file'>`,
   * `memAccess`): an unlinked file per RAM block. @default {@link LIBVIRT_MEMORY_BACKING_DIR}
   */
  readonly memoryBackingDir?: string;
  /**
   * The directory of the unix sockets of virtio channels written without `<source path>`
   * (provider/qemu/chardev.ts; libvirt makes them in `/var/lib/libvirt/qemu/channel/target/domain-ID-NAME`).
   * @default `/run/libvirt-domain/<name>`
   */
  readonly channelTargetDir?: string;
  /**
   * Free TCP ports for SPICE graphics with `autoport='yes'` (QEMU cannot pick one itself), taken
   * in order; the QEMU-direct backend finds them at start. Without them (preview, corpus) the
   * builder writes libvirt's first ports, 5900 up.
   */
  readonly graphicsPorts?: readonly number[];
  /**
   * Free vsock CIDs for `<vsock><cid auto='yes'/>` (libvirt finds one at start), taken in order;
   * the QEMU-direct backend finds them at start. Without them the builder writes 3 up.
   */
  readonly vsockCids?: readonly number[];
  /**
   * The time the guest clock is counted from for `<clock offset='variable'>` (seconds since the
   * epoch, UTC), as libvirt counts it at start. @default the current time
   */
  readonly nowEpochSeconds?: number;
}

/** libvirt's directory for the NVRAM files it makes from their templates (`qemu.conf` `nvram_dir`). */
export const LIBVIRT_NVRAM_DIR = "/var/lib/libvirt/qemu/nvram";

/** A file QEMU reads a secret from: the caller writes it (mode 0600) before starting QEMU and may remove it once QEMU runs. */
export interface QemuSecretFile {
  /** Where `-object secret,file=` points. */
  readonly path: string;
  /** What to write there (the password itself: never log it). */
  readonly data: string;
}

/** The command line and the environment for QEMU. */
export interface QemuCommand {
  /** argv[0] is the emulator. */
  readonly argv: string[];
  /** `<qemu:commandline><qemu:env>` values. */
  readonly env: Record<string, string>;
  /** The identity the command line carries. */
  readonly identity: DomainIdentity;
  /** Secret files the command line refers to (`-object secret,file=...`). */
  readonly secretFiles: QemuSecretFile[];
  /**
   * The host CPUs QEMU may run on (`<cputune><emulatorpin>`, else `<vcpu cpuset>`; canonical
   * ranges such as `0-1,4`), which no argument carries: the backend sets the affinity when it
   * spawns QEMU, as libvirt does.
   */
  readonly cpuAffinity?: string;
  /**
   * The balloon target (bytes) of a `<currentMemory>` below `<memory>`, which no argument
   * carries: the backend sets it over QMP (`balloon`) once QEMU runs, as libvirt does.
   */
  readonly balloonTargetBytes?: number;
  /**
   * The local NVRAM file of a read-only pflash loader (after firmware selection) and the template
   * it is made from: whoever starts QEMU makes a missing one from the template first.
   */
  readonly firmwareNvram?: {
    readonly path: string;
    readonly template: string | undefined;
    /** The NVRAM's image format (`raw` when unstated). */
    readonly format: string;
    /** The template's format when known (`templateFormat`, or the firmware descriptor's). */
    readonly templateFormat: string | undefined;
  };
  /** The swtpm each `<tpm><backend type='emulator'>` needs, started before QEMU (provider/qemu/tpm.ts). */
  readonly swtpm: SwtpmSpec[];
  /**
   * The balloon's statistics polling period (seconds, `<memballoon><stats period>`), which no
   * argument carries: the backend sets it over QMP (`qom-set guest-stats-polling-interval`) once
   * QEMU runs, as libvirt does.
   */
  readonly balloonStatsPeriodSeconds?: number;
  /**
   * The host CPUs of each vCPU and iothread (`<cputune>` vcpupin, iothreadpin, and the threads an
   * emulatorpin must not hold), which no argument carries: the backend sets them once QEMU runs, as
   * libvirt does. `<emulatorpin>` itself is {@link QemuCommand.cpuAffinity}.
   */
  readonly threadAffinity?: platform.ThreadAffinity;
  /**
   * The disks' `<iotune>` limits, which no argument carries: the backend sends each as QMP
   * `block_set_io_throttle` once QEMU runs, as libvirt does (provider/qemu/storage.ts diskIoTune).
   */
  readonly blockThrottles?: readonly BlockThrottle[];
}

/** One disk's I/O limits: the `block_set_io_throttle` arguments, `id` (the QOM device) included. */
export interface BlockThrottle {
  /** The disk, e.g. `/domain/devices/disk[1]`, for errors. */
  readonly path: string;
  /** The arguments of `block_set_io_throttle`. */
  readonly args: Readonly<Record<string, unknown>>;
}

/** Escapes a value for QEMU's comma-separated option syntax (`,` becomes `,,`). */
export function qemuOptEscape(s: string): string {
  return s.replace(/,/g, ",,");
}

/**
 * A decimal whole number from an XML value, from `min` to `max`; anything else (`abc`, `0x10`,
 * `1,maxcpus=9`, empty) is a {@link DomainXmlError} naming the path, never a `NaN` on the command line.
 */
export function xmlWholeNumber(
  path: string,
  value: string | undefined,
  min: number,
  max: number,
  fix: string,
  reason = "not a whole number in range",
): number {
  const n = value !== undefined && /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new DomainXmlError(reason, {
      path,
      value: value ?? "",
      allowed: `a whole number from ${min} to ${max}`,
      fix,
    });
  }
  return n;
}

/** An "unsupported configuration" error naming the path, the value and the fix (shared by the builders). */
export function unsupported(path: string, value: string | undefined, fix: string): DomainXmlError {
  return new DomainXmlError("cannot be expressed on the QEMU command line without libvirt", {
    path,
    value,
    category: "unsupported configuration",
    fix,
  });
}

/**
 * {@link unsupported} with what is allowed: "cannot be expressed on the QEMU command line without
 * libvirt" naming the path, the value, what is built and the fix (shared by the builders).
 */
export function unsupportedAllowed(
  path: string,
  value: string | undefined,
  allowed: string | undefined,
  fix: string,
): DomainXmlError {
  return new DomainXmlError("cannot be expressed on the QEMU command line without libvirt", {
    path,
    value,
    allowed,
    category: "unsupported configuration",
    fix,
  });
}

/** A rule libvirt checks, in its words ("unsupported configuration"), naming the path, value, what is allowed and the fix. */
export function libvirtRule(
  reason: string,
  path: string,
  value: string | undefined,
  allowed: string,
  fix: string,
): DomainXmlError {
  return new DomainXmlError(reason, { path, value, allowed, category: "unsupported configuration", fix });
}

/** Builds the QEMU command line for a domain (libvirt's `qemuBuildCommandLine`, the subset we model). */
export function buildQemuArgv(input: DomainDef, opts: QemuArgvOptions = {}): QemuCommand {
  // libvirt's firmware selection first (qemuFirmwareFillDomain): the rest builds the filled definition
  const def = fillFirmware(input, opts.firmware, opts.nvramDir ?? LIBVIRT_NVRAM_DIR); // firmware.ts
  const identity = resolveIdentity(def);
  checkDevicesSupported(def);
  checkRefusedPaths(def);
  checkMachineBasics(def.root);
  platform.checkVcpuPlacement(def.root);
  const v = readDomain(def);
  assignControllerIndexes(v.controllers); // controllers.ts: libvirt's indexes for controllers written without one
  if (identity.uuid === null && identity.guestUuid === null) {
    throw new DomainXmlError("domain has no uuid", {
      path: "/domain/uuid",
      fix: "set <uuid> (libvirt generates one at define; the direct backend does too)",
    });
  }
  const args: string[] = [];
  const add = (...a: string[]) => args.push(...a);
  const arch = v.os.arch ?? "x86_64";
  const emulator = opts.emulator ?? v.emulator ?? `qemu-system-${arch}`;
  add(emulator);
  add("-name", `guest=${qemuOptEscape(identity.name)},debug-threads=on`);
  if (opts.startPaused) add("-S");
  const timers = clockTimers(def.root);
  const nvramDefault = defaultNvramPath(opts.nvramDir ?? LIBVIRT_NVRAM_DIR, identity.name);
  const devs = deviceElements(def.root, v);
  const soundProps = media.soundMachineProps((n) => devs.of(n));
  const ramDir = opts.memoryBackingDir ?? LIBVIRT_MEMORY_BACKING_DIR;
  const memoryOpts = machineMemoryOptions(def.root, numaCells(def.root).length > 0, opts);
  const smm = smmOptions(def.root);
  const plat = platform.platformMachineOptions(def.root);
  buildMachine(
    v,
    add,
    buildFirmware(def.root, add, nvramDefault),
    [...timers.machine, ...soundProps],
    memoryOpts,
    [...plat.beforeSmm, ...smm.machine, ...plat.afterSmm],
    memoryDumpCore(def.root),
    (accel) => platform.accelOptions(def.root, accel),
  );
  for (const g of smm.globals) add("-global", g);
  buildCpu(v, add, def.root, timers.cpu);
  for (const g of loaderSecureGlobal(def.root)) add("-global", g); // firmware.ts
  buildMemory(v, add, def.root, ramDir, opts);
  buildSmp(v, add, def.root);
  for (const o of iothreadObjects(def.root)) add("-object", o); // memory-cpu.ts
  buildNuma(add, def.root, ramDir, opts);
  // libvirt >= 11.7: the guest sees the hwuuid when it is valid, else the domain uuid.
  add("-uuid", (identity.guestUuid ?? identity.uuid)!);
  buildSmbios(v, add, def.root);
  if (v.graphics.length === 0) add("-display", "none");
  add("-no-user-config", "-nodefaults");
  const qmp = opts.qmpSocketPath ?? `/run/libvirt-domain/${identity.name}/qmp.sock`;
  add("-chardev", `socket,id=charmonitor,path=${qemuOptEscape(qmp)},server=on,wait=off`);
  add("-mon", "chardev=charmonitor,id=monitor,mode=control");
  const rtc = platform.rtcBase(def.root, opts.nowEpochSeconds ?? Math.floor(Date.now() / 1000));
  buildClock(add, timers, rtc.base);
  buildLifecycle(def.root, add);
  buildBoot(def.root, add);
  buildKernelBoot(def.root, add);
  for (const t of acpiTableArgs(def.root)) add("-acpitable", t); // firmware.ts
  for (const g of platform.pciHole64Globals(devs.of("controller"))) add("-global", g);
  buildControllers(v, add, devs, def.root);
  buildMemoryDevices(def.root, devs.of("memory"), add, (el, p) => pciAddressProps(el, p, devs), opts, ramDir);
  const secretFiles: QemuSecretFile[] = [];
  const secrets = { dir: opts.secretDir ?? `/run/libvirt-domain/${identity.name}`, files: secretFiles };
  const blockThrottles = buildDisks(v, add, devs, secrets, iothreadObjects(def.root));
  buildFilesystems(devs.of("filesystem"), {
    add,
    pciAddress: (el, p) => pciAddressProps(el, p, devs),
    sharedMemory: guestMemoryShared(def.root),
  });
  buildInterfaces(v, add, devs, def.root);
  buildPm(def.root, add, devs);
  chardev.buildChardevs(add, devs, {
    channelTargetDir: opts.channelTargetDir ?? `/run/libvirt-domain/${identity.name}`,
  });
  chardev.buildParallels(add, devs);
  const swtpm = buildTpms(devs.of("tpm"), arch, identity.name, (identity.uuid ?? identity.guestUuid)!, opts, add); // tpm.ts
  const env: Record<string, string> = { ...rtc.env };
  const mediaCtx: media.MediaContext = {
    add,
    env,
    of: (n) => devs.of(n),
    pci: (el, path) => pciAddressProps(el, path, devs),
    socketDir: qmp.slice(0, qmp.lastIndexOf("/")), // the QMP socket's directory: the domain's run directory
    autoPort: iv.autoPorts(opts.graphicsPorts),
  };
  const audios = media.buildAudiodevs(mediaCtx);
  buildGraphics(v, add, secrets, devs, mediaCtx, audios);
  let usbPorts = 0;
  media.buildSounds(mediaCtx, audios, (written) =>
    written !== undefined ? ((usbPorts = Math.max(usbPorts, Number(written))), written) : String(++usbPorts),
  );
  buildMisc(v, add, devs);
  buildWatchdogs(add, devs);
  buildHubs(add, devs);
  buildHostdevs(add, devs);
  buildSmartcards(add, devs);
  buildPanics(add, devs);
  buildIommu(add, devs, !!firstChild(firstChild(def.root, "features") ?? def.root, "acpi"), def.root);
  buildVsock(add, devs, iv.autoCids(opts.vsockCids));
  buildInputs(add, devs, usbPorts);
  buildRedirdevs(add, devs);
  buildGenid(v, add);
  checkUsbPortsDistinct(args);
  platform.buildFeatureDevices(def.root, add);
  platform.buildRunWith(def.root, add);
  if (opts.pidFilePath) add("-pidfile", opts.pidFilePath);
  if (opts.daemonize) add("-daemonize");
  add("-msg", "timestamp=on");
  // <qemu:commandline> passthrough comes last, as in libvirt; QEMU takes the last -uuid.
  add(...v.qemuArgs);
  for (const e of v.qemuEnv) env[e.name] = e.value;
  // <cputune>: pins applied by the backend, before exec and after start (platform.ts)
  const vcpuCpuset = vcpuCpuAffinity(def.root);
  const iothreadIds = iothreadObjects(def.root).map((o) => (JSON.parse(o) as { id: string }).id);
  const pinning = platform.cputunePinning(def.root, vcpuCpuset, iothreadIds);
  // Last: what no builder above expressed nor refused with its own message (provider/qemu/paths.ts).
  checkExpressedPaths(def);
  const cpuAffinity = pinning.emulator ?? vcpuCpuset;
  const balloon = balloonTargetBytes(def.root);
  const nvram = firmwareNvram(def.root);
  const nvramLocal = nvram?.local === true; // a block or network NVRAM is nobody's to make
  const statsPeriod = platform.balloonStatsPeriod(def.root);
  return {
    argv: args,
    env,
    identity,
    secretFiles,
    swtpm,
    ...(cpuAffinity === undefined ? {} : { cpuAffinity }),
    ...(balloon === undefined ? {} : { balloonTargetBytes: balloon }),
    ...(nvramLocal ? { firmwareNvram: firmwareNvramOf(def.root, nvram.path ?? nvramDefault, nvram.template) } : {}),
    ...(statsPeriod === undefined ? {} : { balloonStatsPeriodSeconds: statsPeriod }),
    ...(pinning.threads === undefined ? {} : { threadAffinity: pinning.threads }),
    ...(blockThrottles.length ? { blockThrottles } : {}),
  };
}

type Add = (...a: string[]) => void;

/**
 * One USB device a port: USB disks (storage.ts), USB sound (media.ts), hubs, host devices, CCID
 * readers and redirections (hostdev-net.ts) and inputs each lay out their own ports, in the order
 * libvirt gives them within their family only; where two of them meet on one port of one bus
 * (QEMU would refuse to start), the definition is refused here, at preview, with a fix.
 */
function checkUsbPortsDistinct(args: readonly string[]): void {
  const seen = new Map<string, string>();
  args.forEach((a, i) => {
    if (args[i - 1] !== "-device" || !a.startsWith("{")) return;
    const p = JSON.parse(a) as { bus?: unknown; port?: unknown; id?: unknown };
    if (typeof p.bus !== "string" || !/^usb/.test(p.bus) || typeof p.port !== "string") return;
    const key = `${p.bus}:${p.port}`;
    const other = seen.get(key);
    const id = typeof p.id === "string" ? p.id : "a USB device";
    if (other !== undefined)
      throw new DomainXmlError(`USB port ${p.port} of bus ${p.bus} is given to two devices (${other}, ${id})`, {
        path: "/domain/devices",
        value: `${other}, ${id}`,
        allowed: "one device a USB port",
        category: "unsupported configuration",
        fix: "write the port of each USB device (disks, sound, hubs, host devices, inputs): <address type='usb' bus='0' port='N'/>, or apply through libvirt",
      });
    seen.set(key, id);
  });
}

/**
 * `<memory dumpCore='on|off'>` as the `-machine dump-guest-core=` value (libvirt writes `off` when
 * the attribute is absent); any other value is refused as libvirt's parser does.
 */
export function memoryDumpCore(root: XmlElement): string {
  const value = getAttr(firstChild(root, "memory"), "dumpCore");
  if (value === undefined) return "off";
  if (value !== "on" && value !== "off")
    throw new DomainXmlError("invalid dumpCore", {
      path: "/domain/memory/@dumpCore",
      value,
      allowed: "on, off",
      fix: "write dumpCore='on' or dumpCore='off'",
    });
  return value;
}

function buildMachine(
  v: DomainView,
  add: Add,
  pflash: string[] = [],
  timers: string[] = [],
  memory: string[] = [],
  smm: string[] = [],
  dumpCore = "off",
  accel: (kind: "kvm" | "tcg") => string[] = () => [],
): void {
  const machine = v.os.machine ?? "pc";
  const parts = [
    qemuOptEscape(machine),
    "usb=off",
    ...smm,
    `dump-guest-core=${dumpCore}`,
    ...memory,
    ...pflash,
    ...timers,
  ];
  // libvirt states ACPI either way on x86 machines (qemuBuildMachineCommandLine)
  parts.push(v.features.includes("acpi") ? "acpi=on" : "acpi=off");
  add("-machine", parts.join(","));
  if (v.type === "kvm") add("-accel", ["kvm", ...accel("kvm")].join(","));
  else if (v.type === "qemu" || v.type === undefined) add("-accel", ["tcg", ...accel("tcg")].join(","));
  else throw unsupported("/domain/@type", v.type, "use type='qemu' (TCG) or type='kvm'");
}

/** The NVRAM file libvirt makes for domain `name` in `dir`: `DIR/NAME_VARS.fd`. */
export function defaultNvramPath(dir: string, name: string): string {
  return `${dir.replace(/\/+$/, "")}/${name}_VARS.fd`;
}

/** {@link FirmwareNvram}: the variable store a read-only pflash loader needs. */
export interface FirmwareNvram {
  /** `<nvram>`'s file (or `<source file|dev>`); undefined when it names none (libvirt then makes `NAME_VARS.fd` in its NVRAM directory). */
  readonly path: string | undefined;
  /** `<nvram template=...>`: the pristine variables a missing NVRAM file is copied from. */
  readonly template: string | undefined;
  /**
   * False for a block device or network NVRAM (`<nvram type='block'|'network'>`): used as it is,
   * nobody here makes one (libvirt formats a missing block one as qcow2 with qemu-img).
   */
  readonly local: boolean;
}

/**
 * The NVRAM of a domain whose firmware is a read-only, stateful pflash loader (UEFI: OVMF_CODE
 * with an OVMF_VARS copy per domain), or undefined for any other firmware. Pure: reads the XML
 * only (as written: firmware autoselection is filled in by {@link buildQemuArgv}, whose
 * {@link QemuCommand.firmwareNvram} has the result). Shapes the builder refuses are refused by
 * {@link buildQemuArgv}, not here.
 */
export function firmwareNvram(root: XmlElement): FirmwareNvram | undefined {
  const os = firstChild(root, "os");
  const loader = os && firstChild(os, "loader");
  if (!loader || getAttr(loader, "type") !== "pflash" || getAttr(loader, "readonly") !== "yes") return undefined;
  if (getAttr(loader, "stateless") === "yes") return undefined;
  const nvram = os && firstChild(os, "nvram");
  const template = (nvram && getAttr(nvram, "template")) || undefined;
  const type = getAttr(nvram, "type");
  if (type !== undefined) {
    const source = nvram && firstChild(nvram, "source");
    const file = type === "file" ? getAttr(source, "file") : type === "block" ? getAttr(source, "dev") : undefined;
    return { path: file || undefined, template, local: type === "file" };
  }
  const text = nvram ? (textContent(nvram) ?? "").trim() : "";
  return { path: text === "" ? undefined : text, template, local: true };
}

const PFLASH_FORMATS = ["raw", "qcow2"];

/**
 * `<os><loader>`/`<nvram>` as libvirt writes them (qemuBuildPflashBlockdevCommandLine): a ROM
 * loader is `-bios`; a pflash loader a file blockdev plus a raw or qcow2 format node on pflash0
 * and, unless stateless, the NVRAM on pflash1: `<nvram>`'s file (or its typed `<source>`: file,
 * block device, NBD), else `defaultNvram` (libvirt's `NAME_VARS.fd`: whoever starts QEMU makes
 * it from the template first); a raw NVRAM is the protocol node itself, a qcow2 one gets a format
 * node. Returns the `-machine` options (`pflash0=`, `pflash1=`), written before the machine
 * options that follow. `secure='yes'` is checked here (q35, x86_64, SMM on) and written by
 * {@link loaderSecureGlobal} after `-cpu`, as libvirt does.
 */
function buildFirmware(root: XmlElement, add: Add, defaultNvram: string): string[] {
  const os = firstChild(root, "os");
  const loader = os && firstChild(os, "loader");
  const nvram = os && firstChild(os, "nvram");
  if (!loader) {
    if (nvram)
      throw unsupported(
        "/domain/os/nvram",
        undefined,
        "add the pflash <loader> the NVRAM belongs to, or remove <nvram>",
      );
    return [];
  }
  const file = (textContent(loader) ?? "").trim();
  if (file === "")
    throw unsupported(
      "/domain/os/loader",
      undefined,
      "write the firmware path: <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>, or <os firmware='efi'>",
    );
  const type = getAttr(loader, "type") ?? "rom";
  const format = getAttr(loader, "format") ?? "raw";
  for (const a of loader.attrs) {
    const ok =
      a.name === "type" ||
      a.name === "readonly" ||
      (a.name === "stateless" && (a.value === "yes" || a.value === "no")) ||
      (a.name === "secure" && (a.value === "yes" || a.value === "no")) ||
      (a.name === "format" && PFLASH_FORMATS.includes(a.value));
    if (!ok)
      throw unsupported(
        `/domain/os/loader/@${a.name}`,
        a.value,
        a.name === "format" ? "write format='raw' or format='qcow2'" : `write ${a.name}='yes' or ${a.name}='no'`,
      );
  }
  if (type === "rom") {
    if (nvram) throw unsupported("/domain/os/nvram", undefined, "a ROM loader has no NVRAM: remove <nvram>");
    add("-bios", file);
    return [];
  }
  if (type !== "pflash") throw unsupported("/domain/os/loader/@type", type, "use type='rom' or type='pflash'");
  checkSecureLoader(root, loader);
  const readonly = getAttr(loader, "readonly") === "yes";
  add(
    "-blockdev",
    JSON.stringify({
      driver: "file",
      filename: file,
      "node-name": "libvirt-pflash0-storage",
      "auto-read-only": true,
      discard: "unmap",
    }),
  );
  add(
    "-blockdev",
    JSON.stringify({
      "node-name": "libvirt-pflash0-format",
      "read-only": readonly,
      driver: format,
      file: "libvirt-pflash0-storage",
      ...(format === "qcow2" ? { backing: null } : {}),
    }),
  );
  const machine = ["pflash0=libvirt-pflash0-format"];
  if (!readonly || getAttr(loader, "stateless") === "yes") {
    if (nvram)
      throw unsupported(
        "/domain/os/nvram",
        undefined,
        readonly
          ? "a stateless loader has no NVRAM: remove <nvram>"
          : "a writable pflash loader holds its own variables: remove <nvram>",
      );
    return machine;
  }
  const nvramFormat = getAttr(nvram, "format") ?? "raw";
  for (const a of nvram?.attrs ?? []) {
    const ok =
      a.name === "template" ||
      a.name === "type" ||
      ((a.name === "format" || a.name === "templateFormat") && PFLASH_FORMATS.includes(a.value));
    if (!ok) throw unsupported(`/domain/os/nvram/@${a.name}`, a.value, `write ${a.name}='raw' or ${a.name}='qcow2'`);
  }
  const storage = nvram ? nvramStorage(nvram) : undefined;
  const vars = storage ?? { driver: "file", filename: firmwareNvram(root)?.path ?? defaultNvram };
  if (nvramFormat === "qcow2") {
    add(
      "-blockdev",
      JSON.stringify({ ...vars, "node-name": "libvirt-pflash1-storage", "auto-read-only": true, discard: "unmap" }),
    );
    add(
      "-blockdev",
      JSON.stringify({
        "node-name": "libvirt-pflash1-format",
        "read-only": false,
        driver: "qcow2",
        file: "libvirt-pflash1-storage",
        backing: null,
      }),
    );
    machine.push("pflash1=libvirt-pflash1-format");
  } else {
    add("-blockdev", JSON.stringify({ ...vars, "node-name": "libvirt-pflash1-storage", "read-only": false }));
    machine.push("pflash1=libvirt-pflash1-storage");
  }
  return machine;
}

/** {@link QemuCommand.firmwareNvram} of a built definition. */
function firmwareNvramOf(root: XmlElement, path: string, template: string | undefined): QemuCommand["firmwareNvram"] {
  const nvram = firstChild(firstChild(root, "os") ?? root, "nvram");
  return {
    path,
    template,
    format: getAttr(nvram, "format") ?? "raw",
    templateFormat: getAttr(nvram, "templateFormat"),
  };
}

/** The protocol node of a typed `<nvram type='file|block|network'>` (undefined for a plain path). */
function nvramStorage(nvram: XmlElement): Record<string, unknown> | undefined {
  const type = getAttr(nvram, "type");
  const N = "/domain/os/nvram";
  if (type === undefined) {
    if (childElements(nvram).length > 0)
      throw unsupported(
        `${N}/${childElements(nvram)[0]!.name}`,
        undefined,
        "write the NVRAM path as text, or type='file'",
      );
    return undefined;
  }
  const source = firstChild(nvram, "source");
  if (!source)
    throw new DomainXmlError("missing NVRAM source", {
      path: `${N}/source`,
      value: type,
      fix: "write <source file='/path/guest_VARS.fd'/> (type='file'), <source dev=.../> (type='block') or a network <source>",
    });
  const only = (attrs: string[]) => {
    for (const a of source.attrs)
      if (!attrs.includes(a.name))
        throw unsupported(`${N}/source/@${a.name}`, a.value, `not built for type='${type}': remove it`);
    if (childElements(source).length > 0)
      throw unsupported(
        `${N}/source/${childElements(source)[0]!.name}`,
        undefined,
        `not built for type='${type}': remove it`,
      );
  };
  if (type === "file") {
    only(["file"]);
    return { driver: "file", filename: getAttr(source, "file") ?? "" };
  }
  if (type === "block") {
    only(["dev"]);
    return { driver: "host_device", filename: getAttr(source, "dev") ?? "" };
  }
  if (type === "network") return networkStorage(nvram, N);
  throw unsupported(`${N}/@type`, type, "use type='file', 'block' or 'network'");
}

/**
 * `<loader secure='yes'>` (pflash writes only from SMM) as libvirt checks it
 * (qemuValidateDomainDefBoot): q35 and x86_64 only, and SMM on.
 */
function checkSecureLoader(root: XmlElement, loader: XmlElement): void {
  if (getAttr(loader, "secure") !== "yes") return;
  const type = firstChild(firstChild(root, "os") ?? root, "type");
  const machine = getAttr(type, "machine") ?? "pc";
  const bad = (reason: string, fix: string, path: string, value?: string) =>
    new DomainXmlError(reason, { path, value, category: "unsupported configuration", fix });
  if (!/^(q35$|pc-q35-)/.test(machine))
    throw bad(
      "Secure boot is supported with q35 machine types only",
      "use a q35 machine type, or write secure='no'",
      "/domain/os/type/@machine",
      machine,
    );
  if ((getAttr(type, "arch") ?? "x86_64") !== "x86_64")
    throw bad(
      "Secure boot is supported for x86_64 architecture only",
      "write secure='no'",
      "/domain/os/type/@arch",
      getAttr(type, "arch"),
    );
  const smm = firstChild(firstChild(root, "features") ?? root, "smm");
  if (!smm || !firstChild(root, "features") || getAttr(smm, "state") === "off")
    throw bad(
      "Secure boot requires SMM feature enabled",
      "add <features><smm state='on'/></features>",
      "/domain/features/smm",
    );
}

/** `-global driver=cfi.pflash01,property=secure,value=on` of a `<loader secure='yes'>` (qemuBuildDomainLoaderPflashCommandLine). */
export function loaderSecureGlobal(root: XmlElement): string[] {
  const loader = firstChild(firstChild(root, "os") ?? root, "loader");
  return getAttr(loader, "type") === "pflash" && getAttr(loader, "secure") === "yes"
    ? ["driver=cfi.pflash01,property=secure,value=on"]
    : [];
}

/** The CPU model QEMU reports as the machine's default, which libvirt writes when `<cpu>` names none. */
function defaultCpuModel(v: DomainView): string {
  if (v.os.machine === "isapc") return "486";
  return v.os.arch === undefined || v.os.arch === "x86_64" || v.os.arch === "i686" ? "qemu64" : "max";
}

function buildCpu(v: DomainView, add: Add, root: XmlElement, timers: string[] = []): void {
  const features = cpuFeatures(v, root);
  // <features><apic eoi=>: the KVM paravirtual EOI, after the timers (qemuBuildCpuCommandLine)
  const eoi = getAttr(firstChild(firstChild(root, "features") ?? root, "apic"), "eoi");
  if (eoi !== undefined && eoi !== "on" && eoi !== "off")
    throw unsupported("/domain/features/apic/@eoi", eoi, "write eoi='on' or 'off'");
  const pv = eoi === undefined ? [] : [`kvm-pv-eoi=${eoi}`];
  const tail = cpuCacheAndAddressOptions(root, v.cpu?.mode ?? "custom"); // memory-cpu.ts
  buildCpuModel(
    v,
    (o, value) =>
      add(
        o,
        [
          value,
          ...features,
          ...timers,
          ...pv,
          ...featureCpuOptions(root),
          ...panicCpuFlags(root),
          ...platform.kvmPmuCpuOptions(root),
          ...tail,
          ...platform.cpuCheckOptions(root),
        ].join(","),
      ),
    root,
  );
}

/**
 * `<feature policy=>` as libvirt writes it on `-cpu`: require and force on, disable and forbid
 * off. `optional` (on only where the host provides it) is on as well: libvirt decides it against
 * the host CPU it probed and writes on or off, QEMU (not enforcing, see platform.ts
 * cpuCheckOptions) keeps a feature on where the host (KVM, TCG) provides it and drops it
 * otherwise: the same rule, decided by the other process.
 */
const CPU_FEATURE_POLICY: Readonly<Record<string, string>> = {
  require: "on",
  force: "on",
  optional: "on",
  disable: "off",
  forbid: "off",
};

/**
 * The CPU `<feature>`s of a custom or host-passthrough CPU, in document order, with QEMU's
 * spelling of libvirt's names (`lahf_lm` is `lahf-lm`). A host-model or maximum CPU is expanded
 * by libvirt from the host's capabilities: its features are refused.
 */
function cpuFeatures(v: DomainView, root: XmlElement): string[] {
  const cpu = firstChild(root, "cpu");
  const mode = v.cpu?.mode ?? "custom";
  return (cpu ? childElements(cpu, "feature") : []).flatMap((f, i) => {
    const path = `/domain/cpu/feature[${i + 1}]`;
    if (mode !== "custom" && mode !== "host-passthrough")
      throw unsupported(
        path,
        getAttr(f, "name"),
        "libvirt expands a host-model CPU with its features: apply through libvirt",
      );
    const name = getAttr(f, "name") ?? "";
    if (!/^[a-z0-9_.-]+$/i.test(name))
      throw new DomainXmlError("invalid CPU feature name", {
        path: `${path}/@name`,
        value: name,
        allowed: "letters, digits, _ . -",
        fix: "write the feature's name, e.g. name='vmx'",
      });
    const policy = getAttr(f, "policy") ?? "require";
    const on = CPU_FEATURE_POLICY[policy];
    if (!on) throw unsupported(`${path}/@policy`, policy, `use one of ${Object.keys(CPU_FEATURE_POLICY).join(", ")}`);
    // platform.ts: a CPUID bit the guest OS sets itself (osxsave, ospke) has no QEMU property
    if (platform.osControlledCpuFeature(name, policy, path)) return [];
    return [`${name.replace(/_/g, "-")}=${on}`];
  });
}

function buildCpuModel(v: DomainView, add: (option: string, value: string) => void, root: XmlElement): void {
  const mode = v.cpu?.mode ?? "custom";
  if (mode === "host-passthrough") {
    // libvirt states whether the host CPU may migrate (`<cpu migratable=>`, default on)
    const m = getAttr(firstChild(root, "cpu"), "migratable") ?? "on";
    if (m !== "on" && m !== "off") throw unsupported("/domain/cpu/@migratable", m, "write migratable='on' or 'off'");
    add("-cpu", `host,migratable=${m}`);
  } else if (mode === "host-model") add("-cpu", v.type === "kvm" ? "host" : "max");
  else if (mode === "maximum") add("-cpu", "max");
  else if (mode === "custom") add("-cpu", qemuOptEscape(v.cpu?.model ?? defaultCpuModel(v)));
  else throw unsupported("/domain/cpu/@mode", mode, "use custom, host-model, host-passthrough or maximum");
}

/** x86 memory alignment of libvirt (qemuDomainAlignMemorySizes): 1 MiB. */
const MEMORY_ALIGN_KIB = 1024n;

const alignKiB = (kib: bigint) => ((kib + MEMORY_ALIGN_KIB - 1n) / MEMORY_ALIGN_KIB) * MEMORY_ALIGN_KIB;

/** A scaled size in KiB, or a refusal naming `path`. */
function sizeKiB(value: string | undefined, unit: string | undefined, path: string): bigint {
  if (value === undefined)
    throw new DomainXmlError("missing size", { path, fix: "state the size, e.g. memory='1048576' unit='KiB'" });
  return toKiB(value, unit, path);
}

/**
 * `-m`: the initial memory as libvirt sizes it (virDomainDefGetMemoryInitial): with NUMA cells
 * the sum of the cells, each aligned to 1 MiB (qemuDomainAlignMemorySizes), else `<memory>`
 * aligned; `<maxMemory slots=>` adds `slots` and `maxmem` (qemuBuildMemCommandLine).
 */
/** The `<cpu><numa><cell>` elements. */
function numaCells(root: XmlElement): XmlElement[] {
  const numa = firstChild(firstChild(root, "cpu") ?? root, "numa");
  return numa ? childElements(numa, "cell") : [];
}

function buildMemory(v: DomainView, add: Add, root: XmlElement, ramDir: string, host: HostMemoryInfo): void {
  if (v.memoryKiB === undefined) {
    throw new DomainXmlError("missing memory", { path: "/domain/memory", fix: "add <memory unit='MiB'>...</memory>" });
  }
  const cpu = firstChild(root, "cpu");
  const numa = cpu && firstChild(cpu, "numa");
  const cells = numa ? childElements(numa, "cell") : [];
  const initial =
    cells.length > 0
      ? cells.reduce((sum, c, i) => {
          const path = `/domain/cpu/numa/cell[${i + 1}]/@memory`;
          const kib = alignKiB(sizeKiB(getAttr(c, "memory"), getAttr(c, "unit"), path));
          checkAlignedMemoryKiB(kib, path, getAttr(c, "memory"), Number(getAttr(c, "id") ?? i));
          return sum + kib;
        }, 0n)
      : alignKiB(v.memoryKiB);
  checkAlignedMemoryKiB(initial, "/domain/memory", String(v.memoryKiB));
  let m = `size=${initial}k`;
  const max = firstChild(root, "maxMemory");
  if (max) {
    const slots = getAttr(max, "slots");
    const maxKiB = alignKiB(sizeKiB(textContent(max), getAttr(max, "unit"), "/domain/maxMemory"));
    if (slots !== undefined && !/^[0-9]+$/.test(slots)) {
      throw new DomainXmlError("invalid memory slot count", {
        path: "/domain/maxMemory/@slots",
        value: slots,
        allowed: "a non-negative integer",
        fix: "write e.g. slots='16'",
      });
    }
    if (slots !== undefined && slots !== "0") m += `,slots=${slots}`;
    m += `,maxmem=${maxKiB}k`;
  }
  add("-m", m);
  // <memoryBacking> without NUMA cells: the main RAM's own backend (memory-cpu.ts)
  const ram = cells.length > 0 ? undefined : mainRamBackend(root, initial * 1024n, ramDir, host);
  if (ram) add("-object", ram);
  add("-overcommit", memLock(root));
}

function buildSmp(v: DomainView, add: Add, root: XmlElement): void {
  const max = xmlWholeNumber(
    "/domain/vcpu",
    v.vcpus ?? "1",
    1,
    MAX_VCPUS,
    "write e.g. <vcpu>2</vcpu>",
    "invalid vcpu count",
  );
  const cur = onlineAtStart(v, max, root);
  let s = `${cur}`;
  if (cur !== max) s += `,maxcpus=${max}`;
  if (v.cpu?.sockets !== undefined) {
    // An explicit topology: libvirt writes dies and clusters too (QEMU >= 7.0 knows both).
    const topo = (attr: "sockets" | "dies" | "clusters" | "cores" | "threads") =>
      xmlWholeNumber(
        `/domain/cpu/topology/@${attr}`,
        v.cpu![attr] ?? "1",
        1,
        MAX_VCPUS,
        `write e.g. <topology sockets='1' cores='${max}' threads='1'/>`,
      );
    s += `,sockets=${topo("sockets")},dies=${topo("dies")},clusters=${topo("clusters")}`;
    s += `,cores=${topo("cores")},threads=${topo("threads")}`;
  } else {
    s += `,sockets=${max},cores=1,threads=1`;
  }
  add("-smp", s);
}

/** Most vCPUs a command line carries (QEMU's largest machine limit). */
const MAX_VCPUS = 16384;

/**
 * The vCPUs on `-smp`: `<vcpu current=>`, or with `<vcpus>` the enabled non-hotpluggable ones
 * (libvirt plugs the hotpluggable enabled vCPUs after start, qemuProcessSetupHotpluggableVcpus;
 * the QEMU-direct backend does not, so it refuses them).
 */
function onlineAtStart(v: DomainView, max: number, root: XmlElement): number {
  const vcpus = firstChild(root, "vcpus");
  if (!vcpus) {
    return v.vcpuCurrent !== undefined
      ? xmlWholeNumber(
          "/domain/vcpu/@current",
          v.vcpuCurrent,
          1,
          max,
          `write at most the vcpu count, e.g. <vcpu current='1'>${max}</vcpu>, or remove current`,
        )
      : max;
  }
  let online = 0;
  childElements(vcpus, "vcpu").forEach((c, i) => {
    if (getAttr(c, "enabled") !== "yes") return;
    if (getAttr(c, "hotpluggable") === "yes") {
      throw unsupported(
        `/domain/vcpus/vcpu[${i + 1}]/@hotpluggable`,
        "yes",
        "libvirt plugs enabled hotpluggable vCPUs after start; the QEMU-direct backend does not: set hotpluggable='no' or apply through libvirt",
      );
    }
    online++;
  });
  return online;
}

/** What a NUMA cell may state for the builder: the rest (memAccess, discard, caches, HMAT) is refused. */
const NUMA_CELL_ATTRS = new Set(["id", "cpus", "memory", "unit", "memAccess", "discard"]);

/**
 * Guest NUMA as libvirt writes it (qemuBuildNumaCommandLine): per cell, in id order, a RAM
 * backend of the cell's aligned size (typed by `<memoryBacking>`, memAccess, discard, hugepages and
 * bound by `<numatune>`: memory-cpu.ts) and `-numa node,nodeid=,cpus=...,memdev=` (one `cpus=`
 * per range), then `-numa dist` for every stated sibling distance.
 */
function buildNuma(add: Add, root: XmlElement, ramDir: string, host: HostMemoryInfo): void {
  const cpu = firstChild(root, "cpu");
  const numa = cpu && firstChild(cpu, "numa");
  if (!numa) return;
  const cells = childElements(numa)
    .filter((c) => c.name !== "interconnects") // HMAT: readHmat (memory-cpu.ts)
    .map((c, i) => {
      const path = `/domain/cpu/numa/${c.name}[${i + 1}]`;
      if (c.name !== "cell") throw unsupported(path, c.name, "remove it or apply through libvirt");
      for (const a of c.attrs)
        if (!NUMA_CELL_ATTRS.has(a.name))
          throw unsupported(`${path}/@${a.name}`, a.value, "remove it or apply through libvirt");
      for (const k of childElements(c))
        if (k.name !== "distances" && k.name !== "cache")
          throw unsupported(`${path}/${k.name}`, k.name, "remove it or apply through libvirt");
      const id = Number(getAttr(c, "id") ?? i);
      const cpus = getAttr(c, "cpus");
      const ranges = cpus === undefined ? [] : canonicalBitmap(cpus)?.split(",");
      if (ranges === undefined)
        throw new DomainXmlError("invalid CPU list", {
          path: `${path}/@cpus`,
          value: cpus,
          allowed: "a libvirt bitmap such as 0-3,^2,8",
          fix: "write e.g. cpus='0-1'",
        });
      const kib = alignKiB(sizeKiB(getAttr(c, "memory"), getAttr(c, "unit"), `${path}/@memory`));
      return {
        id,
        ranges: ranges.filter((r) => r !== ""),
        bytes: kib * 1024n,
        el: c,
        path,
        mem: readCellMemory(c, path),
      };
    })
    .sort((a, b) => a.id - b.id);
  const hmat = readHmat(
    numa,
    cells.map((c) => ({ id: c.id, hasCpus: c.ranges.length > 0, el: c.el, path: c.path })),
  );
  // machine types before 5.1 keep the legacy `mem=` (MiB) for migration compatibility
  const machine = firstChild(firstChild(root, "os") ?? root, "type");
  const mv = /^pc-(?:i440fx|q35)-(\d+)\.(\d+)$/.exec(getAttr(machine, "machine") ?? "");
  const legacy = mv !== null && (Number(mv[1]) < 5 || (Number(mv[1]) === 5 && Number(mv[2]) < 1));
  const backing = readMemoryBacking(root);
  const cellIds = cells.map((c) => c.id);
  const numatune = readNumatune(root, cellIds, host.hostNumaNodes);
  for (const c of cells) {
    const bind = numatune.memnodes.get(c.id) ?? numatune.memory;
    const page = hugepageFor(backing, c.id, cellIds, host);
    if (legacy && needsRamObject(backing, c.mem, bind, page))
      throw unsupported(
        "/domain/os/type/@machine",
        getAttr(machine, "machine"),
        "a machine type before 5.1 gives NUMA cells no memory backend: use a newer machine type, or remove <memoryBacking> and memAccess",
      );
    if (!legacy) add("-object", ramBackendObject(backing, c.mem, `ram-node${c.id}`, c.bytes, ramDir, bind, page));
    const mem = legacy ? `mem=${c.bytes / 1048576n}` : `memdev=ram-node${c.id}`;
    const initiator = hmat ? [`initiator=${hmat.initiators.get(c.id)}`] : [];
    add("-numa", [`node,nodeid=${c.id}`, ...c.ranges.map((r) => `cpus=${r}`), ...initiator, mem].join(","));
  }
  // distances as libvirt completes them: symmetric, and 10 to itself (virDomainNumaDefParseXML)
  const dist = new Map<string, string>();
  for (const c of cells) {
    const d = firstChild(c.el, "distances");
    for (const sib of d ? childElements(d, "sibling") : [])
      dist.set(`${c.id},${Number(getAttr(sib, "id"))}`, getAttr(sib, "value") ?? "");
  }
  for (const [k, val] of [...dist]) {
    const [a, b] = k.split(",");
    if (!dist.has(`${b},${a}`)) dist.set(`${b},${a}`, val);
  }
  for (const c of cells)
    if ([...dist.keys()].some((k) => k.startsWith(`${c.id},`)) && !dist.has(`${c.id},${c.id}`))
      dist.set(`${c.id},${c.id}`, "10");
  for (const a of cells)
    for (const b of cells) {
      const val = dist.get(`${a.id},${b.id}`);
      if (val !== undefined) add("-numa", `dist,src=${a.id},dst=${b.id},val=${val}`);
    }
  for (const h of hmat?.numaArgs ?? []) add("-numa", h);
}

const SMBIOS_SYSTEM_KEYS = ["manufacturer", "product", "version", "serial", "uuid", "sku", "family"];

/** The `<sysinfo type='smbios'>` blocks libvirt writes, their SMBIOS type and fields in libvirt's order (qemuBuildSmbiosCommandLine). */
const SMBIOS_BLOCKS: Record<string, { type: number; keys: readonly string[] }> = {
  bios: { type: 0, keys: ["vendor", "version", "date", "release"] },
  system: { type: 1, keys: SMBIOS_SYSTEM_KEYS },
  baseBoard: { type: 2, keys: ["manufacturer", "product", "version", "serial", "asset", "location"] },
  chassis: { type: 3, keys: ["manufacturer", "version", "serial", "asset", "sku"] },
};

/** One `-smbios type=N,...` from a block's entries (none when it has no known entry). */
function smbiosArg(block: XmlElement, path: string, type: number, keys: readonly string[]): string | undefined {
  const entries = new Map<string, string>();
  childElements(block, "entry").forEach((e, i) => {
    const n = getAttr(e, "name") ?? "";
    if (!keys.includes(n)) throw unsupported(`${path}/entry[${i + 1}]/@name`, n, `use one of ${keys.join(", ")}`);
    if (!entries.has(n)) entries.set(n, textContent(e) ?? "");
  });
  const fields = keys.filter((k) => entries.get(k) !== undefined && entries.get(k) !== "");
  if (fields.length === 0) return undefined;
  const value = (k: string) =>
    type === 1 && k === "uuid" ? (normalizeUuid(entries.get(k)!) ?? entries.get(k)!) : entries.get(k)!;
  return [`type=${type}`, ...fields.map((k) => `${k}=${qemuOptEscape(value(k))}`)].join(",");
}

/**
 * `-smbios` for `<os><smbios mode='sysinfo'/>` (types 0, 1, 2, 3 and 11, as libvirt writes them)
 * and `-fw_cfg` for `<sysinfo type='fwcfg'>`; any other SMBIOS block is refused.
 */
function buildSmbios(v: DomainView, add: Add, root: XmlElement): void {
  const mode = v.os.smbiosMode;
  if (mode === "host")
    throw unsupported("/domain/os/smbios/@mode", mode, "use mode='sysinfo' with a <sysinfo type='smbios'> block");
  const sysinfos = childElements(root, "sysinfo");
  sysinfos.forEach((si, i) => {
    const path = `/domain/sysinfo[${i + 1}]`;
    const type = getAttr(si, "type");
    if (type === "smbios") {
      if (mode !== "sysinfo") return; // libvirt uses the block only with <smbios mode='sysinfo'/>
      const seen: Record<string, number> = {};
      for (const block of childElements(si)) {
        const nth = (seen[block.name] ?? 0) + 1;
        seen[block.name] = nth;
        const bp = `${path}/${block.name}[${nth}]`;
        const known = SMBIOS_BLOCKS[block.name];
        if (known) {
          if (known.type !== 2 && nth > 1) continue; // libvirt keeps the first
          const arg = smbiosArg(block, bp, known.type, known.keys);
          if (arg) add("-smbios", arg);
        } else if (block.name === "oemStrings") {
          const values = childElements(block, "entry").map((e) => `,value=${qemuOptEscape(textContent(e) ?? "")}`);
          if (values.length > 0) add("-smbios", `type=11${values.join("")}`);
        } else {
          throw unsupported(
            bp,
            block.name,
            "the QEMU command line carries SMBIOS bios, system, baseBoard, chassis and oemStrings only; remove it",
          );
        }
      }
    } else if (type === "fwcfg") {
      childElements(si).forEach((e, j) => {
        const ep = `${path}/${e.name}[${j + 1}]`;
        const name = getAttr(e, "name");
        if (e.name !== "entry" || name === undefined)
          throw unsupported(ep, e.name, "write <entry name='opt/...'>value</entry>");
        const file = getAttr(e, "file");
        add(
          "-fw_cfg",
          `name=${qemuOptEscape(name)},${file !== undefined ? `file=${qemuOptEscape(file)}` : `string=${qemuOptEscape(textContent(e) ?? "")}`}`,
        );
      });
    } else {
      throw unsupported(`${path}/@type`, type, "use type='smbios' or type='fwcfg'");
    }
  });
}

/** Direct kernel boot: `<os><kernel>`, `<initrd>`, `<cmdline>`, `<dtb>` (libvirt's qemuBuildBootCommandLine). */
function buildKernelBoot(root: XmlElement, add: Add): void {
  const os = firstChild(root, "os");
  if (!os) return;
  const text = (n: string) => {
    const el = firstChild(os, n);
    return el ? (textContent(el) ?? "") : undefined;
  };
  const kernel = text("kernel");
  const flags: [string, string][] = [
    ["initrd", "-initrd"],
    ["cmdline", "-append"],
    ["dtb", "-dtb"],
  ];
  if (kernel === undefined) {
    const other = flags.find(([n]) => text(n) !== undefined);
    if (other)
      throw unsupported(`/domain/os/${other[0]}`, text(other[0]), "add <kernel> (direct kernel boot) or remove it");
    return;
  }
  add("-kernel", kernel);
  for (const [n, flag] of flags) {
    const t = text(n);
    if (t !== undefined) add(flag, t);
  }
}

/**
 * `<genid>`: the VM generation ID (`-device vmgenid`), as libvirt writes it; for an empty
 * `<genid/>` libvirt generates a random one, QEMU does the same with `guid=auto`.
 */
function buildGenid(v: DomainView, add: Add): void {
  if (!v.hasGenid) return;
  const text = (v.genid ?? "").trim();
  const guid = text === "" ? "auto" : normalizeUuid(text);
  if (guid === undefined) {
    throw new DomainXmlError("invalid generation ID", {
      path: "/domain/genid",
      value: v.genid,
      allowed: "a UUID, or empty (<genid/>) for a generated one",
      fix: "write <genid>UUID</genid> (e.g. from uuidgen) or <genid/>",
    });
  }
  add("-device", JSON.stringify({ driver: "vmgenid", guid, id: "vmgenid0" }));
}

/** The `<clock><timer>` options as libvirt writes them, by the option they go on. */
interface ClockTimers {
  rtc: string[];
  machine: string[];
  cpu: string[];
  globals: string[];
}

const RTC_TRACK: Readonly<Record<string, string>> = { guest: "vm", wall: "host", realtime: "rt" };

/**
 * `<clock><timer>` as libvirt writes it (qemuBuildClockCommandLine): rtc `tickpolicy='catchup'`
 * as `-rtc driftfix=slew` and `track` as `clock=`, pit `delay`/`discard` as
 * `-global kvm-pit.lost_tick_policy=`, `<timer name='hpet' present='no|yes'/>` as `-machine hpet=off|on`,
 * `<timer name='kvmclock' present='no'/>` as `-cpu ...,kvmclock=off`; the values libvirt writes
 * nothing for (rtc/pit/hpet catchup or delay defaults, kvmclock present='yes') give nothing. The rest
 * (other timers, frequencies, modes, merge) is refused.
 */
function clockTimers(root: XmlElement): ClockTimers {
  const out: ClockTimers = { rtc: [], machine: [], cpu: [], globals: [] };
  const clock = firstChild(root, "clock");
  (clock ? childElements(clock, "timer") : []).forEach((t, i) => {
    const path = `/domain/clock/timer[${i + 1}]`;
    const name = getAttr(t, "name");
    const tick = getAttr(t, "tickpolicy");
    const present = getAttr(t, "present");
    const track = getAttr(t, "track");
    for (const a of t.attrs)
      if (!["name", "tickpolicy", "present", "track"].includes(a.name) || (a.name === "track" && name !== "rtc"))
        throw unsupported(`${path}/@${a.name}`, a.value, "remove it or apply through libvirt");
    // <catchup threshold slew limit>: libvirt's QEMU driver passes nothing for it (paths.ts NO_ARGV)
    const child = childElements(t).find((c) => c.name !== "catchup" || tick !== "catchup");
    if (child) throw unsupported(`${path}/${child.name}`, undefined, "remove it or apply through libvirt");
    const refuse = (attr: string, value: string | undefined) =>
      unsupported(
        `${path}/@${attr}`,
        value,
        "the builder writes rtc catchup/track, pit delay/discard, hpet and kvmclock present='no'",
      );
    if (present === "no" && name !== "hpet" && name !== "kvmclock" && name !== "hypervclock")
      throw refuse("present", present);
    if (name === "rtc") {
      if (tick === "catchup") out.rtc.push("driftfix=slew");
      else if (tick !== undefined && tick !== "delay") throw refuse("tickpolicy", tick);
      if (track !== undefined) {
        const c = RTC_TRACK[track];
        if (!c) throw refuse("track", track);
        out.rtc.push(`clock=${c}`);
      }
    } else if (name === "pit") {
      if (tick === "delay" || tick === "discard") out.globals.push(`kvm-pit.lost_tick_policy=${tick}`);
      else if (tick !== undefined && tick !== "catchup") throw refuse("tickpolicy", tick);
    } else if (name === "hpet") {
      if (present !== undefined) out.machine.push(`hpet=${present === "no" ? "off" : "on"}`);
      if (tick !== undefined && tick !== "catchup" && tick !== "delay") throw refuse("tickpolicy", tick);
    } else if (name === "kvmclock" && tick === undefined) {
      if (present === "no") out.cpu.push("kvmclock=off");
    } else if (name === "hypervclock" && tick === undefined) {
      // the Hyper-V reference TSC page (platform family): libvirt writes hv-time=on for present='yes' only
      if (present === "yes") out.cpu.push("hv-time=on");
    } else throw refuse("name", name);
  });
  return out;
}

/** `-rtc` with its base (provider/qemu/platform.ts rtcBase: utc, localtime, a date) and the timers' options. */
function buildClock(add: Add, timers: ClockTimers, base: string): void {
  add("-rtc", [`base=${base}`, ...timers.rtc].join(","));
  for (const g of timers.globals) add("-global", g);
}

/**
 * `<pm>`: guest suspend to RAM (S3) and to disk (S4) enabled or not, as libvirt writes it
 * (qemuBuildPMCommandLine): `-global PIIX4_PM.disable_s3=` on pc, `ICH9-LPC.disable_s3=` on q35.
 */
function buildPm(root: XmlElement, add: Add, devs: DeviceElements): void {
  const pm = firstChild(root, "pm");
  if (!pm) return;
  const dev = devs.rootBus === "pcie.0" ? "ICH9-LPC" : "PIIX4_PM";
  for (const [name, s] of [
    ["suspend-to-mem", "s3"],
    ["suspend-to-disk", "s4"],
  ] as const) {
    const el = firstChild(pm, name);
    if (!el) continue;
    const enabled = getAttr(el, "enabled");
    if (enabled !== "yes" && enabled !== "no")
      throw unsupported(`/domain/pm/${name}/@enabled`, enabled, "write enabled='yes' or 'no'");
    add("-global", `${dev}.disable_${s}=${enabled === "no" ? 1 : 0}`);
  }
}

/** The `<devices>` children by name, in document order, and the machine's root PCI bus. */
export interface DeviceElements {
  of(name: string): XmlElement[];
  /** `pcie.0` on q35, `pci.0` on the PC machine (libvirt's names of the root bus). */
  readonly rootBus: string;
  /** The slot libvirt assigns to a PCI device written without an address (see {@link assignPciSlots}); `pci.N:0x0` behind a root port. */
  readonly slots: Map<object, string>;
  /** The PCI address libvirt assigns to each device written without one (see {@link assignPciSlots}). */
  readonly pciAddrs: Map<object, PciAddr>;
  /** The PCI bus tree (controllers.ts): every PCI controller and the buses; none on isapc. */
  pci?: PciLayout;
}

/** The key of the virtio balloon libvirt adds when the definition has no `<memballoon>`. */
const IMPLICIT_BALLOON = { implicit: "memballoon" };
/** The key of the AHCI controller libvirt adds on the PC machine for SATA disks when none is written. */
const IMPLICIT_SATA = { implicit: "sata" };

function deviceElements(root: XmlElement, v: DomainView): DeviceElements {
  const devices = firstChild(root, "devices");
  const machine = v.os.machine ?? "pc";
  const implicitVideo = media.implicitVideo(devices, machine);
  const devs: DeviceElements = {
    of: (name) => (name === "video" && implicitVideo ? [implicitVideo] : devices ? childElements(devices, name) : []),
    rootBus: /^(q35|pc-q35-)/.test(machine) ? "pcie.0" : "pci.0",
    slots: new Map(),
    pciAddrs: new Map(),
  };
  if (machine !== "isapc") assignPciSlots(v, devs, root);
  return devs;
}

/** A SATA disk on a definition without a SATA controller: libvirt adds one (virDomainDefAddDiskControllers). */
function needsImplicitSata(v: DomainView): boolean {
  return v.disks.some((d) => d.targetBus === "sata") && !v.controllers.some((c) => c.type === "sata");
}

/**
 * PCI addresses as libvirt assigns them (qemuDomainAssignPCIAddresses,
 * src/qemu/qemu_domain_address.c) to devices written without an address: what each device
 * connects as (a PCIe or a conventional PCI device), in libvirt's order (filesystems, network
 * interfaces, sound cards, controllers, virtio disks, host devices, the balloon, RNGs, watchdogs,
 * secondary videos, the IOMMU, the vsock, memory devices), laid out on the PCI bus tree with the
 * chipset's fixed places and the buses libvirt adds (provider/qemu/controllers.ts). Written
 * addresses keep their places.
 */
function assignPciSlots(v: DomainView, devs: DeviceElements, root: XmlElement): void {
  const q35 = devs.rootBus === "pcie.0";
  // an address other than an empty PCI one (libvirt lays out <address type='pci'/> as no address)
  const has = (el: XmlElement | undefined) =>
    !!el && !!firstChild(el, "address") && (getAttr(firstChild(el, "address"), "type") !== "pci" || hasPciAddr(el));
  // what each device connects as (qemuDomainDeviceCalculatePCIConnectFlags): on q35 a PCIe
  // device goes behind a pcie-root-port, a conventional PCI device behind a pcie-to-pci-bridge
  const pcieFlags = AUTOASSIGN | (q35 ? PCIE_DEVICE : PCI_DEVICE);
  const pciFlags = AUTOASSIGN | PCI_DEVICE;
  const requests: PciRequest[] = [];
  const pathOf = (key: object) => {
    const el = key as XmlElement;
    const i = typeof el.name === "string" ? devs.of(el.name).indexOf(el) : -1;
    return i >= 0 ? `/domain/devices/${el.name}[${i + 1}]` : "/domain/devices";
  };
  const request = (key: object, flags: number, usb2?: PciRequest["usb2"]) =>
    requests.push({ key, flags, path: pathOf(key), ...(usb2 ? { usb2 } : {}) });
  // a PCIe device (virtio, xHCI, e1000e) and a conventional PCI device
  const port = (key: object) => request(key, pcieFlags);
  const pci = (key: object) => request(key, pciFlags);
  const next = port;
  const videos = videoOrder(devs).map((i) => devs.of("video")[i]!);
  const [primary] = videos;
  const videoFlags = (el: XmlElement) => {
    const type = getAttr(firstChild(el, "model"), "type");
    return type === "virtio" || type === "bochs" ? pcieFlags : pciFlags;
  };
  const primaryVideo =
    primary && !has(primary) && !["none", "ramfb"].includes(getAttr(firstChild(primary, "model"), "type") ?? "")
      ? { key: primary, flags: videoFlags(primary), path: pathOf(primary) }
      : undefined;
  // libvirt's order (qemuDomainAssignDevicePCISlots): filesystems and network interfaces before
  // the device controllers (USB, SCSI, SATA, virtio-serial)
  for (const el of devs.of("filesystem")) if (!has(el)) port(el);
  for (const el of devs.of("interface"))
    if (!has(el))
      (["virtio", "e1000e", "igb"].includes(getAttr(firstChild(el, "model"), "type") ?? "") ? port : pci)(el);
  // then sound cards (libvirt's order: nets, sounds, device controllers)
  const sounds = devs.of("sound").filter((el) => !has(el) && media.isPciSound(el));
  const ich9Sound = q35 ? sounds.find((el) => getAttr(el, "model") === "ich9") : undefined;
  for (const el of sounds) pci(el);
  const controllers = devs.of("controller");
  const usb2Masters: PciRequest[] = [];
  const written: { addr: PciAddr; flags: number; path: string }[] = [];
  const usb2Written: { index: string; addr: PciAddr }[] = [];
  libvirtControllerOrder(v.controllers).forEach((i) => {
    const c = v.controllers[i]!;
    const el = controllers[i];
    if (!el || has(el)) return;
    const fn = c.type === "usb" ? (c.model === "ich9-ehci1" ? 7 : ICH9_COMPANIONS[c.model ?? ""]?.fn) : undefined;
    if (fn !== undefined) {
      // an EHCI and its UHCI companions share one slot: EHCI at function 7, UHCI 1-3 at 0-2 (libvirt)
      request(el, pciFlags, { index: c.index ?? "0", fn });
      if (q35 && c.model === "ich9-uhci1") usb2Masters.push(requests[requests.length - 1]!);
    } else if (c.type === "usb" && (c.model ?? "piix3-uhci") === "piix3-uhci" && !q35 && (c.index ?? "0") === "0") {
      devs.slots.set(el, "0x1.0x2");
    } else if (
      (c.type === "usb" && (c.model === "qemu-xhci" || c.model === "nec-xhci")) ||
      c.type === "virtio-serial" ||
      (c.type === "scsi" && (c.model === "virtio-scsi" || c.model === "virtio-non-transitional"))
    )
      // a transitional virtio device works in a conventional PCI slot only
      (c.model === "virtio-transitional" ? pci : port)(el);
    else if (
      (c.type === "usb" && c.model !== "none") ||
      c.type === "scsi" ||
      (c.type === "sata" && (q35 ? c.index !== "0" && c.index !== undefined : true))
    )
      pci(el);
  });
  for (const n of implicitScsiControllers(v.disks, devs.of("disk"), v.controllers)) pci(implicitScsiKey(n));
  if (needsImplicitSata(v) && !q35) pci(IMPLICIT_SATA);
  for (const n of chardev.virtioSerialLayout(devs).implicit) port(chardev.implicitVirtioSerialKey(n)); // chardev.ts
  if (q35 && !v.controllers.some((c) => c.type === "usb")) port(IMPLICIT_Q35_USB);
  libvirtDiskOrder(v.disks).forEach((i) => {
    const d = v.disks[i]!;
    const el = devs.of("disk")[i];
    const bus = d.targetBus ?? (d.targetDev?.startsWith("vd") ? "virtio" : undefined);
    if (el && bus === "virtio" && !has(el)) port(el);
  });
  for (const el of hostdevsNeedingSlots(devs)) next(el);
  const balloon = devs.of("memballoon")[0];
  if (!balloon) port(IMPLICIT_BALLOON);
  else if (!has(balloon) && getAttr(balloon, "model") === "virtio") port(balloon);
  for (const el of devs.of("rng")) if (!has(el)) port(el);
  for (const el of devs.of("watchdog")) if (!has(el) && getAttr(el, "model") === "i6300esb") pci(el);
  videos.slice(1).forEach((el) => !has(el) && request(el, videoFlags(el)));
  // virtio inputs and PCI serial ports (libvirt's order: after the videos), each where libvirt puts it
  for (const el of devs.of("input")) if (!has(el) && getAttr(el, "bus") === "virtio") port(el);
  for (const el of devs.of("serial"))
    if (!has(el) && getAttr(firstChild(el, "target"), "type") === "pci-serial") pci(el);
  for (const el of devs.of("iommu"))
    if (!has(el) && getAttr(el, "model") === "virtio") request(el, pcieFlags | INTEGRATED);
  for (const el of devs.of("vsock")) if (!has(el)) port(el);
  // virtio memory devices (libvirt's order: after the vsock); memory-devices.ts builds them
  for (const el of devs.of("memory")) if (!has(el) && /^virtio-(pmem|mem)$/.test(getAttr(el, "model") ?? "")) port(el);
  // a pvpanic-pci device is integrated: on the root bus (libvirt's order: last)
  for (const el of devs.of("panic"))
    if (!has(el) && getAttr(el, "model") === "pvpanic") request(el, pciFlags | INTEGRATED);
  // what a device written with an address connects as: it decides which bus the first pass adds
  // for an address on a bus the definition lacks (a pcie-root-port, or a bridge)
  const writtenFlags = (el: XmlElement): number => {
    const model = getAttr(el, "model");
    switch (el.name) {
      case "interface":
        return ["virtio", "e1000e", "igb"].includes(getAttr(firstChild(el, "model"), "type") ?? "")
          ? pcieFlags
          : pciFlags;
      case "controller": {
        const type = getAttr(el, "type");
        return (type === "usb" && (model === "qemu-xhci" || model === "nec-xhci")) ||
          type === "virtio-serial" ||
          (type === "scsi" && (model === "virtio-scsi" || model === "virtio-non-transitional"))
          ? model === "virtio-transitional"
            ? pciFlags
            : pcieFlags
          : pciFlags;
      }
      case "video":
        return videoFlags(el);
      case "iommu":
        return pcieFlags | INTEGRATED;
      case "panic":
        return pciFlags | INTEGRATED;
      case "disk":
      case "filesystem":
      case "memballoon":
      case "rng":
      case "vsock":
      case "memory":
      case "input":
      case "hostdev":
        return pcieFlags;
      default:
        return pciFlags;
    }
  };
  // the addresses the definition writes (the chipset's built-in controllers aside)
  const top = firstChild(root, "devices");
  const counts: Record<string, number> = {};
  for (const el of top ? childElements(top) : []) {
    counts[el.name] = (counts[el.name] ?? 0) + 1;
    const path = `/domain/devices/${el.name}[${counts[el.name]}]`;
    if (el.name === "controller") {
      const type = getAttr(el, "type");
      const index = getAttr(el, "index") ?? "0";
      if (type === "pci") continue;
      if (type === "ide" && !q35 && index === "0") continue;
      if (type === "sata" && q35 && index === "0") continue;
    }
    const w =
      firstChild(el, "address") && getAttr(firstChild(el, "address"), "type") === "pci"
        ? writtenPciAddr(el, path)
        : undefined;
    if (!w) continue;
    if (el.name === "controller" && getAttr(el, "type") === "usb") {
      const index = getAttr(el, "index") ?? "0";
      if (!q35 && index === "0" && w.addr.bus === 0 && w.addr.slot === 1 && w.addr.fn === 2) continue;
      if (/^ich9-(ehci1|uhci[123])$/.test(getAttr(el, "model") ?? "")) usb2Written.push({ index, addr: w.addr });
    }
    written.push({ addr: w.addr, flags: writtenFlags(el), path });
  }
  const machine = v.os.machine ?? "pc";
  const layout = layoutPci({
    pcieRoot: q35,
    chipset: q35 ? "q35" : /^pc($|-i440fx-|-\d)/.test(machine) ? "i440fx" : "other",
    controllerEls: controllers.filter((el) => getAttr(el, "type") === "pci"),
    controllerPaths: controllers.flatMap((el, i) =>
      getAttr(el, "type") === "pci" ? [`/domain/devices/controller[${i + 1}]`] : [],
    ),
    written,
    ...(primaryVideo ? { primaryVideo } : {}),
    usb2Masters,
    usb2Written,
    ...(ich9Sound ? { ich9Sound: { key: ich9Sound, flags: pciFlags, path: pathOf(ich9Sound) } } : {}),
    requests,
    numaCells: numaCells(root).length,
  });
  for (const [key, a] of layout.addrs) {
    devs.slots.set(key, a.bus === 0 ? addrProp(a) : `pci.${a.bus}:${addrProp(a)}`);
    devs.pciAddrs.set(key, a);
  }
  devs.pci = layout;
}

/** The key of the qemu-xhci controller libvirt adds to a q35 machine without a USB controller. */
const IMPLICIT_Q35_USB = { implicit: "q35-usb" };

/** A hex or decimal address component (libvirt's virStrToLong_ui base 0 for PCI addresses). */
function addressNumber(path: string, value: string | undefined, max: number): number {
  const n = value === undefined ? 0 : libvirtUint(value);
  if (!Number.isSafeInteger(n) || n < 0 || n > max) {
    throw new DomainXmlError("invalid address", {
      path,
      value,
      allowed: `a number from 0 to ${max} (hex 0x.. or decimal)`,
      fix: "write e.g. <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>",
    });
  }
  return n;
}

const PCI_ADDRESS_ATTRS = new Set(["type", "domain", "bus", "slot", "function", "multifunction"]);

/**
 * A device's `<address type='pci'>` as libvirt writes it on `-device` (qemuBuildDeviceAddressProps):
 * `bus` (the root bus, or `pci.N` of the PCI controller of index N), `addr` slot[.function],
 * `multifunction` (written, or on at function 0 of a slot whose other functions are in use, as
 * libvirt sets it). The bus tree checks written addresses (controllers.ts); a device without an
 * address takes the place the layout gave it (libvirt's), or none (QEMU assigns it).
 */
export function pciAddressProps(
  dev: XmlElement | undefined,
  path: string,
  devs: DeviceElements,
  key: object | undefined = dev,
): Record<string, unknown> {
  const written = dev && firstChild(dev, "address");
  const a = written && dev && getAttr(written, "type") === "pci" && !hasPciAddr(dev) ? undefined : written;
  const multi = (p: PciAddr) => p.fn === 0 && !!devs.pci?.multiSlots.has(`${p.bus}:${p.slot}`);
  if (!a) {
    const p = key && devs.pciAddrs.get(key);
    if (p)
      return {
        bus: p.bus === 0 ? devs.rootBus : `pci.${p.bus}`,
        addr: addrProp(p),
        ...(multi(p) ? { multifunction: true } : {}),
      };
    const slot = key && devs.slots.get(key);
    const [bus, addr] = slot?.includes(":") ? slot.split(":") : [devs.rootBus, slot];
    return slot ? { bus, addr } : {};
  }
  const ap = `${path}/address`;
  const type = getAttr(a, "type");
  if (type !== "pci") throw unsupported(`${ap}/@type`, type, "write a PCI address (type='pci') or remove <address>");
  for (const at of a.attrs)
    if (!PCI_ADDRESS_ATTRS.has(at.name))
      throw unsupported(`${ap}/@${at.name}`, at.value, "remove it or apply through libvirt");
  const w = writtenPciAddr(dev!, path)!;
  if (w.addr.bus !== 0 && !devs.pci?.controllers.some((c) => c.index === w.addr.bus))
    throw new DomainXmlError("no PCI bus of that index", {
      path: `${ap}/@bus`,
      value: getAttr(a, "bus"),
      allowed: "0 (the root bus) or the index of a <controller type='pci'>",
      fix: "add the PCI controller of that index, or use an address on the root bus",
    });
  const props: Record<string, unknown> = {
    bus: w.addr.bus === 0 ? devs.rootBus : `pci.${w.addr.bus}`,
    addr: addrProp(w.addr),
  };
  if (w.multi !== undefined) props.multifunction = w.multi;
  else if (multi(w.addr)) props.multifunction = true;
  return props;
}

/** Where a machine has a controller built in: its PCI address must be that one, or none. */
function checkBuiltinAddress(
  el: XmlElement | undefined,
  path: string,
  slot: number,
  fn: number,
  machine: string,
): void {
  const a = el && firstChild(el, "address");
  if (!a || (getAttr(a, "type") === "pci" && !hasPciAddr(el))) return;
  const at = (n: string) => addressNumber(`${path}/address/@${n}`, getAttr(a, n), 0xffff);
  const ok =
    getAttr(a, "type") === "pci" &&
    a.attrs.every((x) => PCI_ADDRESS_ATTRS.has(x.name) && x.name !== "multifunction") &&
    at("domain") === 0 &&
    at("bus") === 0 &&
    at("slot") === slot &&
    at("function") === fn;
  if (!ok)
    throw unsupported(
      `${path}/address`,
      undefined,
      `the ${machine} machine has this controller built in at 0000:00:${slot.toString(16).padStart(2, "0")}.${fn}: write that address or none`,
    );
}

/**
 * `-boot` as libvirt writes it (qemuBuildBootCommandLine): `<bootmenu enable=>` as `menu=on|off`,
 * its `timeout` (ms) as `splash-time` only when the menu is on, `<bios rebootTimeout>` as
 * `reboot-timeout=` (provider/qemu/firmware.ts); always `strict=on` (boot only from the devices given a boot index).
 */
function buildBoot(root: XmlElement, add: Add): void {
  const os = firstChild(root, "os");
  const menu = os && firstChild(os, "bootmenu");
  const parts: string[] = [];
  const rebootTimeout = biosRebootTimeout(root); // firmware.ts
  if (!menu && rebootTimeout !== undefined) parts.push(`reboot-timeout=${rebootTimeout}`);
  if (menu) {
    const enable = getAttr(menu, "enable");
    if (enable !== "yes" && enable !== "no")
      throw new DomainXmlError("invalid boot menu setting", {
        path: "/domain/os/bootmenu/@enable",
        value: enable,
        allowed: "yes, no",
        fix: "write <bootmenu enable='yes'/>",
      });
    parts.push(`menu=${enable === "yes" ? "on" : "off"}`);
    if (rebootTimeout !== undefined) parts.push(`reboot-timeout=${rebootTimeout}`);
    const timeout = getAttr(menu, "timeout");
    if (timeout !== undefined && enable === "yes")
      parts.push(
        `splash-time=${xmlWholeNumber("/domain/os/bootmenu/@timeout", timeout, 0, 65535, "write a timeout in milliseconds, e.g. timeout='3000'")}`,
      );
  }
  parts.push("strict=on");
  add("-boot", parts.join(","));
}

/**
 * The `cache` of a disk `<driver>` as libvirt maps it (qemuDomainDiskCachemodeFlags): the
 * blockdev `cache` options of both layers and the device's `write-cache`.
 */
const DISK_CACHE_MODES: Readonly<Record<string, { direct: boolean; noFlush: boolean; writeCache: boolean }>> = {
  none: { direct: true, noFlush: false, writeCache: true },
  writethrough: { direct: false, noFlush: false, writeCache: false },
  writeback: { direct: false, noFlush: false, writeCache: true },
  directsync: { direct: true, noFlush: false, writeCache: false },
  unsafe: { direct: false, noFlush: true, writeCache: true },
};

/** SCSI controller models and their devices; without a model libvirt picks lsilogic on x86 (qemuDomainGetSCSIControllerModel). */
const SCSI_MODELS: Readonly<Record<string, string>> = {
  lsilogic: "lsi",
  "virtio-scsi": "virtio-scsi-pci",
  lsisas1068: "mptsas1068",
  lsisas1078: "megasas",
  vmpvscsi: "pvscsi",
  "virtio-transitional": "virtio-scsi-pci-transitional",
  "virtio-non-transitional": "virtio-scsi-pci-non-transitional",
};

/** virtio-serial controller models and their devices (a transitional one sits in a conventional PCI slot). */
const VIRTIO_SERIAL_MODELS: Readonly<Record<string, string>> = {
  virtio: "virtio-serial-pci",
  "virtio-transitional": "virtio-serial-pci-transitional",
  "virtio-non-transitional": "virtio-serial-pci-non-transitional",
};

/** The ids of the domain's iothreads (`-object iothread`, memory-cpu.ts). */
function iothreadIds(root: XmlElement): number[] {
  return iothreadObjects(root).map((o) => Number(/"iothread(\d+)"/.exec(o)?.[1]));
}

function buildControllers(v: DomainView, add: Add, devs: DeviceElements, root: XmlElement): void {
  checkUsbControllers(root, v.os.machine ?? "pc"); // controllers.ts
  // libvirt adds the PIIX3 USB controller (01.2) to a PC machine without one (qemuDomainDefAddDefaultDevices)
  const pc = devs.rootBus === "pci.0" && v.os.machine !== "isapc";
  if (pc && !v.controllers.some((c) => c.type === "usb"))
    add("-device", JSON.stringify({ driver: "piix3-usb-uhci", id: "usb", bus: "pci.0", addr: "0x1.0x2" }));
  // the PCI controllers, written and added, by index (controllers.ts)
  for (const c of devs.pci?.controllers ?? []) add("-device", JSON.stringify(pciControllerDevice(c, devs.rootBus)));
  if (devs.rootBus === "pcie.0" && !v.controllers.some((c) => c.type === "usb"))
    add(
      "-device",
      JSON.stringify({
        driver: "qemu-xhci",
        id: "usb",
        ...pciAddressProps(undefined, "/domain/devices", devs, IMPLICIT_Q35_USB),
      }),
    );
  if (pc && needsImplicitSata(v))
    add(
      "-device",
      JSON.stringify({
        driver: "ahci",
        id: "sata0",
        ...pciAddressProps(undefined, "/domain/devices", devs, IMPLICIT_SATA),
      }),
    );
  for (const n of implicitScsiControllers(v.disks, devs.of("disk"), v.controllers))
    add(
      "-device",
      JSON.stringify({
        driver: "lsi",
        id: `scsi${n}`,
        ...pciAddressProps(undefined, "/domain/devices", devs, implicitScsiKey(n)),
      }),
    );
  const els = devs.of("controller");
  v.controllers.forEach((c, i) => {
    const path = `/domain/devices/controller[${i + 1}]`;
    const el = els[i];
    const at = () => pciAddressProps(el, path, devs);
    if (c.index !== undefined) xmlWholeNumber(`${path}/@index`, c.index, 0, 65535, "write e.g. index='0'");
    const scsiModel = c.type === "scsi" && (c.model ?? "auto") === "auto" ? "lsilogic" : c.model;
    // a transitional virtio-scsi controller takes virtio-scsi's <driver> options
    const virtioScsi = c.type === "scsi" && /^virtio-(scsi|transitional|non-transitional)$/.test(scsiModel ?? "");
    const drv = controllerDriverProps(
      c.type === "scsi" ? (virtioScsi ? "virtio-scsi" : `${scsiModel}`) : (c.type ?? ""),
      el,
      path,
    );
    // the PCI bus tree is laid out and built above (controllers.ts)
    if (c.type === "pci" && devs.pci && c.model !== "pci-root" && c.model !== "pcie-root") return;
    if (c.type === "pci" && c.model !== undefined && c.model !== "pci-root" && c.model !== "pcie-root") {
      throw unsupported(
        `${path}/@model`,
        c.model,
        "the builder lays out no PCI topology of its own: remove the controller (devices go on the root bus) or apply through libvirt",
      );
    }
    // built into the machine, where it has them (PIIX3 IDE at 00:01.1 on pc, ICH9 AHCI at 00:1f.2 on q35)
    const hotplug = rootHotplugGlobal(c, el, path, devs.rootBus);
    if (hotplug) add("-global", hotplug);
    if (c.type === "pci") {
      if (el && firstChild(el, "address"))
        throw unsupported(`${path}/address`, undefined, "the root bus has no address: remove it");
      return;
    }
    const q35 = devs.rootBus === "pcie.0";
    if (c.type === "ide" || (c.type === "sata" && q35 && (c.index ?? "0") === "0")) {
      checkBuiltinAddress(el, path, q35 ? 0x1f : 1, q35 ? 2 : 1, q35 ? "q35" : "pc");
      return;
    }
    if (c.type === "sata") {
      // the PC machine has no SATA: an AHCI controller, as libvirt adds it
      add("-device", JSON.stringify({ driver: "ahci", id: `sata${c.index ?? "0"}`, ...at() }));
      return;
    }
    if (c.type === "fdc") {
      if (el && firstChild(el, "address"))
        throw unsupported(`${path}/address`, undefined, "the floppy controller is on ISA: remove <address>");
      return;
    }
    if (el && c.type !== "usb" && c.type !== "virtio-serial" && getAttr(el, "ports") !== undefined)
      throw unsupported(
        `${path}/@ports`,
        getAttr(el, "ports"),
        "ports are set on USB xHCI and virtio-serial controllers only",
      );
    if (el && c.type !== "virtio-serial" && getAttr(el, "vectors") !== undefined)
      throw unsupported(
        `${path}/@vectors`,
        getAttr(el, "vectors"),
        "vectors are set on virtio-serial controllers only",
      );
    if (c.type === "usb") {
      if (c.model === "none") return;
      const driver = USB_CONTROLLER_DRIVERS[c.model ?? "piix3-uhci"];
      if (!driver)
        throw unsupported(
          `${path}/@model`,
          c.model,
          `use a usb model of ${Object.keys(USB_CONTROLLER_DRIVERS).join(", ")} or none`,
        );
      const usb = usbControllerProps(c, el, path, v.controllers);
      const address = at();
      // an ICH9 UHCI1 companion at function 0 of its EHCI's slot opens the slot to the others
      if (c.model === "ich9-uhci1" && !(el && firstChild(el, "address")) && address.addr) address.multifunction = true;
      const dev: Record<string, unknown> = { driver, id: usbControllerId(c.index), ...usb, ...address };
      if ("id" in usb && usb.id === undefined) delete dev.id;
      add("-device", JSON.stringify(dev));
      return;
    }
    if (c.type === "virtio-serial") {
      const ports = el && getAttr(el, "ports");
      const vectors = el && getAttr(el, "vectors");
      const serialDriver = VIRTIO_SERIAL_MODELS[c.model ?? "virtio"];
      if (!serialDriver)
        throw unsupported(`${path}/@model`, c.model, `use model ${Object.keys(VIRTIO_SERIAL_MODELS).join(", ")}`);
      add(
        "-device",
        JSON.stringify({
          driver: serialDriver,
          ...drv,
          id: `virtio-serial${c.index ?? "0"}`,
          ...(ports !== undefined
            ? { max_ports: xmlWholeNumber(`${path}/@ports`, ports, 1, 31, "write e.g. ports='16'") }
            : {}),
          ...(vectors !== undefined
            ? { vectors: xmlWholeNumber(`${path}/@vectors`, vectors, 1, 1024, "write e.g. vectors='4'") }
            : {}),
          ...at(),
        }),
      );
      return;
    }
    if (c.type === "scsi") {
      const driver = SCSI_MODELS[scsiModel ?? "lsilogic"];
      if (!driver)
        throw unsupported(`${path}/@model`, c.model, `use model ${Object.keys(SCSI_MODELS).join(" or ")} (or auto)`);
      // a virtio-scsi controller's iothreads (controllers.ts)
      const io = virtioScsi ? scsiIothreadProps(el, path, iothreadIds(root)) : {};
      add("-device", JSON.stringify({ driver, ...io, id: `scsi${c.index ?? "0"}`, ...drv, ...at() }));
      return;
    }
    if (c.type === "ccid") return; // the USB CCID reader, built with the smartcards (hostdev-net.ts)
    throw unsupported(path, c.type, "remove the controller or apply through libvirt");
  });
}

/** The bus a disk is on, as the builder resolves it (`<target bus>`, else from the target name). */
function diskBus(d: DomainDisk): string {
  const t = d.targetDev ?? "";
  return (
    d.targetBus ?? (t.startsWith("vd") ? "virtio" : t.startsWith("sd") ? "scsi" : t.startsWith("fd") ? "fdc" : "ide")
  );
}

/** libvirt's virDiskNameToIndex: `hda` 0, `hdz` 25, `hdaa` 26 (the letters after the prefix). */
function diskNameIndex(dev: string | undefined): number {
  const m = /^(?:hd|sd|vd|xvd|fd|ubd)([a-z]+)/.exec(dev ?? "");
  if (!m?.[1]) return -1;
  let idx = 0;
  [...m[1]].forEach((c, i) => (idx = (idx + (i < 1 ? 0 : 1)) * 26 + (c.charCodeAt(0) - 97)));
  return idx;
}

/**
 * The order libvirt keeps disks in (virDomainDiskInsert): each disk goes before the first disk
 * of its bus with a later target name, else after the last disk of its bus, else last. Node
 * names (`libvirt-N`), default units and the legacy `<boot dev=>` follow it. Returns indexes.
 */
function libvirtDiskOrder(disks: readonly DomainDisk[]): number[] {
  const out: number[] = [];
  disks.forEach((d, i) => {
    let at = -1;
    for (let k = out.length - 1; k >= 0; k--) {
      const o = disks[out[k]!]!;
      if (diskBus(o) !== diskBus(d)) continue;
      if (diskNameIndex(o.targetDev) > diskNameIndex(d.targetDev)) at = k;
      else if (at === -1) at = k + 1;
    }
    if (at === -1) out.push(i);
    else out.splice(at, 0, i);
  });
  return out;
}

function bootIndexes(v: DomainView, devs: DeviceElements): Map<object, number> {
  const sorted = libvirtDiskOrder(v.disks).map((i) => v.disks[i]!);
  const m = new Map<object, number>();
  const explicit = [...v.disks, ...v.interfaces].some((d) => d.bootOrder !== undefined) || hostdevsHaveBootOrder(devs);
  if (explicit) {
    const order = (kind: string, i: number, value: string) =>
      xmlWholeNumber(`/domain/devices/${kind}[${i + 1}]/boot/@order`, value, 1, 65535, "write e.g. <boot order='1'/>");
    v.disks.forEach((d, i) => d.bootOrder !== undefined && m.set(d, order("disk", i, d.bootOrder)));
    v.interfaces.forEach((d, i) => d.bootOrder !== undefined && m.set(d, order("interface", i, d.bootOrder)));
    return m;
  }
  let n = 1;
  // libvirt: an HVM domain with no boot element at all boots from the first disk (virDomainDefParseBootXML)
  for (const dev of v.os.boot.length ? v.os.boot : ["hd"]) {
    const target =
      dev === "hd"
        ? sorted.find((d) => d.device === "disk" || d.device === "lun")
        : dev === "cdrom"
          ? sorted.find((d) => d.device === "cdrom")
          : dev === "network"
            ? v.interfaces[0]
            : dev === "fd"
              ? sorted.find((d) => d.device === "floppy")
              : undefined;
    // libvirt numbers the <boot dev> entries by position, present or not (cdrom=1, hd=2 without a cdrom: hd is 2)
    if (target && !m.has(target)) m.set(target, n);
    n++;
  }
  return m;
}

/**
 * A disk's `<address type='drive'>` (controller, bus, target, unit), as libvirt reads it; absent,
 * libvirt's assignment from the target name (virDomainDiskDefAssignAddress): IDE two units a bus,
 * SATA and SCSI one unit a target name letter. Anything but a drive address is refused.
 */
function driveAddress(
  el: XmlElement | undefined,
  path: string,
  fallback: number,
  bus: string,
): { controller: number; bus: number; target: number; unit: number } {
  const a = el && firstChild(el, "address");
  if (!a)
    return bus === "ide"
      ? { controller: 0, bus: Math.floor(fallback / 2), target: 0, unit: fallback % 2 }
      : { controller: 0, bus: 0, target: 0, unit: fallback };
  const ap = `${path}/address`;
  if (getAttr(a, "type") !== "drive")
    throw unsupported(
      `${ap}/@type`,
      getAttr(a, "type"),
      `a ${bus} disk has a drive address: write type='drive' or remove <address>`,
    );
  for (const at of a.attrs)
    if (!["type", "controller", "bus", "target", "unit"].includes(at.name))
      throw unsupported(`${ap}/@${at.name}`, at.value, "remove it or apply through libvirt");
  const n = (name: string) =>
    xmlWholeNumber(`${ap}/@${name}`, getAttr(a, name) ?? "0", 0, 65535, "write e.g. unit='0'");
  return { controller: n("controller"), bus: n("bus"), target: n("target"), unit: n("unit") };
}

/**
 * A host CD-ROM drive, which libvirt opens with `host_cdrom` (it asks the kernel, virFileIsCDROM);
 * the builder is pure and goes by the kernel's CD-ROM device names.
 */
const HOST_CDROM = /^\/dev\/(cdrom\d*|sr\d+|scd\d+)$/;

function buildDisks(
  v: DomainView,
  add: Add,
  devs: DeviceElements,
  secrets: { dir: string; files: QemuSecretFile[] },
  iothreads: readonly string[],
): BlockThrottle[] {
  const throttles: BlockThrottle[] = [];
  checkDiskTargets(v.disks);
  checkBootOrders(v.os.boot, [...v.disks, ...v.interfaces]);
  const boot = bootIndexes(v, devs);
  const counters: Record<string, number> = {};
  const els = devs.of("disk");
  const usbPorts = usbDiskPorts(
    devs.of("input"),
    libvirtDiskOrder(v.disks)
      .filter((i) => v.disks[i]!.targetBus === "usb")
      .map((i) => els[i]!),
  );
  // node names: libvirt numbers every layer of every disk, the last disk's image libvirt-1
  const order = libvirtDiskOrder(v.disks);
  const chains = order.map((i) => backingChain(els[i], `/domain/devices/disk[${i + 1}]`));
  const firstIndex = order.map((_, pos) => chains.slice(pos + 1).reduce((n, c) => n + 1 + c.layers.length, 1));
  const q35 = devs.rootBus === "pcie.0";
  if (q35) q35FloppyController(v, order, els, boot, add);
  const iothreadIds = new Set(iothreads.map((o) => String((JSON.parse(o) as { id: string }).id)));
  order.forEach((i, pos) => {
    const d = v.disks[i]!;
    const path = `/domain/devices/disk[${i + 1}]`;
    const el = els[i];
    const chain = chains[pos]!;
    const node = `libvirt-${firstIndex[pos]!}`;
    const bus =
      d.targetBus ??
      (d.targetDev?.startsWith("vd")
        ? "virtio"
        : d.targetDev?.startsWith("sd")
          ? "scsi"
          : d.targetDev?.startsWith("fd")
            ? "fdc"
            : "ide");
    const unit = (counters[bus] = (counters[bus] ?? -1) + 1);
    const floppy = d.device === "floppy" && bus === "fdc" && (devs.rootBus === "pci.0" || q35);
    // device='lun': SCSI commands passed through to the host block device (scsi-block)
    const lun = d.device === "lun";
    if (lun) checkLun(d, el, path, bus);
    if (d.device !== "disk" && d.device !== "cdrom" && !floppy && !lun)
      throw unsupported(
        `${path}/@device`,
        d.device,
        d.device === "lun"
          ? "device='lun' passes SCSI commands through to a host device libvirt opens and labels (and, with <reservations>, a pr-helper it starts): use device='disk' or apply through libvirt"
          : "the builder attaches device='disk' and 'cdrom', and floppies on the PC and q35 machines' fdc; apply others through libvirt",
      );
    let drive: string | undefined;
    // encryption, transient: libvirt's secret store and overlays (storage.ts)
    if (el) checkDiskNeedsLibvirt(el, path);
    // a network disk: QEMU's own block driver for its protocol (provider/qemu/storage.ts)
    // HTTP cookies: a secret object QEMU reads from a file (libvirt: the same object, its data
    // encrypted with libvirt's master key), named as libvirt names it
    const cookieSecret = (cookie: string) => {
      const id = `${node}-storage-httpcookie-secret0`;
      const file = `${secrets.dir}/${id}`;
      secrets.files.push({ path: file, data: cookie });
      add("-object", JSON.stringify({ "qom-type": "secret", id, format: "raw", file }));
      return id;
    };
    const net = d.type === "network" && el ? networkStorage(el, path, cookieSecret) : undefined;
    // a host directory as a virtual FAT image (QEMU's vvfat), read-only, under a raw format node
    const fat = el && (d.type === "dir" || d.driverType === "fat") ? fatStorage(d, el, path) : undefined;
    const storageOf = net ?? fat;
    const src = storageOf ? { driver: String(storageOf.driver), filename: "" } : diskSource(d, path);
    const driverEl = el && firstChild(el, "driver");
    // libvirt: a shareable, writable disk without a cache mode is not cached on the host (cache='none')
    const cacheMode =
      (driverEl && getAttr(driverEl, "cache")) ??
      (d.shareable && !d.readonly && d.device === "disk" ? "none" : undefined);
    const cache = cacheMode === undefined || cacheMode === "default" ? undefined : DISK_CACHE_MODES[cacheMode];
    if (cacheMode !== undefined && cacheMode !== "default" && !cache)
      throw unsupported(
        `${path}/driver/@cache`,
        cacheMode,
        `use one of default, ${Object.keys(DISK_CACHE_MODES).join(", ")}`,
      );
    const cacheProps = cache ? { cache: { direct: cache.direct, "no-flush": cache.noFlush } } : {};
    const bp = el ? diskBlockdevProps(el, path) : { storage: {}, top: {}, copyOnRead: false, format: {} };
    if (src) {
      const readOnly = d.readonly || d.device === "cdrom";
      const fmt = d.driverType ?? "raw";
      if (!["raw", "qcow2", "fat"].includes(fmt))
        throw unsupported(`${path}/driver/@type`, fmt, "use a raw or qcow2 image");
      if (fat && chain.layers.length > 0)
        throw unsupported(
          `${path}/backingStore`,
          "fat",
          "a virtual FAT image has no backing image: remove <backingStore>",
        );
      if (d.shareable && fmt !== "raw")
        throw unsupported(
          `${path}/shareable`,
          fmt,
          "a shareable disk must be a raw image (qcow2 cannot be written by two guests)",
        );
      if (net && Object.keys(bp.storage).length)
        throw unsupported(
          `${path}/driver/@io`,
          String(bp.storage.aio),
          "the I/O mode is for local files and block devices: remove it",
        );
      const storage = {
        ...(storageOf ?? {
          driver:
            src.driver === "host_device" && d.device === "cdrom" && HOST_CDROM.test(src.filename)
              ? "host_cdrom"
              : src.driver,
          filename: src.filename,
        }),
        "node-name": `${node}-storage`,
        ...bp.storage,
      };
      // the backing chain, bottom layer first; each format node's backing is the layer below
      const layerNode = (k: number) => {
        const l = chain.layers[k]!;
        return `libvirt-${firstIndex[pos]! + k + 1}-${l.format === "raw" ? "storage" : "format"}`;
      };
      const backingOf = (k: number): Record<string, unknown> =>
        k < chain.layers.length ? { backing: layerNode(k) } : chain.closed ? { backing: null } : {};
      // the disk's discard applies to every layer of its chain (libvirt 12.9, checked in test/lab/direct-storage)
      const layerDiscard = bp.top.discard !== undefined ? { discard: bp.top.discard } : {};
      for (let k = chain.layers.length - 1; k >= 0; k--) {
        const l = chain.layers[k]!;
        const n = `libvirt-${firstIndex[pos]! + k + 1}`;
        if (l.format === "raw") {
          if (k + 1 < chain.layers.length)
            throw unsupported(`${path}/backingStore`, "raw", "a raw image has no backing image: end the chain there");
          add(
            "-blockdev",
            JSON.stringify({
              ...l.storage,
              "node-name": `${n}-storage`,
              "read-only": true,
              ...cacheProps,
              ...layerDiscard,
            }),
          );
        } else {
          add(
            "-blockdev",
            JSON.stringify({
              ...l.storage,
              "node-name": `${n}-storage`,
              "auto-read-only": true,
              discard: "unmap",
              ...cacheProps,
            }),
          );
          add(
            "-blockdev",
            JSON.stringify({
              "node-name": `${n}-format`,
              "read-only": true,
              ...cacheProps,
              ...layerDiscard,
              driver: l.format,
              ...l.formatProps,
              file: `${n}-storage`,
              ...backingOf(k + 1),
            }),
          );
        }
      }
      if (fmt === "raw" && Object.keys(bp.format).length > 0)
        throw unsupported(
          `${path}/driver`,
          Object.keys(bp.format)[0],
          "discard_no_unref and the metadata cache are qcow2 settings: remove them from a raw disk",
        );
      if (fmt === "raw" && chain.layers.length > 0)
        throw unsupported(
          `${path}/backingStore`,
          "raw",
          "a raw image has no backing image: remove <backingStore> or use qcow2",
        );
      if (fmt === "raw") {
        // as libvirt (qemuBlockStorageSourceNeedsFormatLayer): a raw image is the storage node itself
        add("-blockdev", JSON.stringify({ ...storage, "read-only": readOnly, ...cacheProps, ...bp.top }));
        drive = `${node}-storage`;
      } else {
        add("-blockdev", JSON.stringify({ ...storage, "auto-read-only": true, discard: "unmap", ...cacheProps }));
        add(
          "-blockdev",
          JSON.stringify({
            "node-name": `${node}-format`,
            "read-only": readOnly,
            ...cacheProps,
            ...bp.top,
            driver: fat ? "raw" : fmt,
            ...bp.format,
            file: `${node}-storage`,
            ...backingOf(0),
          }),
        );
        drive = `${node}-format`;
      }
      if (bp.copyOnRead) {
        // libvirt's copy-on-read filter node over the disk's top node, named by the target
        const cor = `libvirt-CoR-${d.targetDev ?? ""}`;
        add("-blockdev", JSON.stringify({ driver: "copy-on-read", "node-name": cor, file: drive, discard: "unmap" }));
        drive = cor;
      }
    }
    const bi = boot.get(d);
    const dev: Record<string, unknown> = {};
    // <iotune>: no argument; QMP block_set_io_throttle after start, skipped for an empty drive (libvirt)
    const ioTune = el ? diskIoTune(el, path) : undefined;
    if (el) checkDiskSourceSeclabels(el, path);
    if (el) checkStartupPolicy(el, path);
    const throttle = (id: string) => {
      if (ioTune && drive !== undefined) throttles.push({ path, args: { id, ...ioTune } });
    };
    if (floppy) {
      // the PC machine's built-in floppy controller: its boot index is a property of isa-fdc
      const a = driveAddress(el, path, driveIndex(d.targetDev) ?? unit, "fdc");
      if (a.controller !== 0 || a.bus !== 0 || a.target !== 0 || a.unit > 1)
        throw unsupported(
          `${path}/address`,
          undefined,
          "the floppy controller has units 0 and 1 (controller 0, bus 0)",
        );
      // on q35 the boot index is a property of the isa-fdc device (q35FloppyController)
      if (bi !== undefined && !q35) add("-global", `isa-fdc.bootindex${a.unit === 0 ? "A" : "B"}=${bi}`);
      const extra = el ? Object.keys(diskDeviceProps(d, el, path, "fdc"))[0] : undefined;
      if (extra !== undefined)
        throw unsupported(path, extra, "a floppy drive takes no such property: remove it or apply through libvirt");
      const fd: Record<string, unknown> = { driver: "floppy", unit: a.unit, drive, id: `fdc0-0-${a.unit}` };
      if (drive === undefined) delete fd.drive;
      if (cache) fd["write-cache"] = cache.writeCache ? "on" : "off";
      throttle(fd.id as string);
      add("-device", JSON.stringify(fd));
      return;
    }
    if (bus === "virtio") {
      if (d.device !== "disk") throw unsupported(`${path}/@device`, d.device, "a virtio disk must be device='disk'");
      Object.assign(dev, {
        driver: "virtio-blk-pci",
        ...pciAddressProps(el, path, devs),
        drive,
        id: `virtio-disk${driveIndex(d.targetDev) ?? unit}`,
      });
    } else if (bus === "ide" || bus === "sata") {
      // The target letter is the position: hda = bus 0 unit 0, hdc = bus 1 unit 0 (libvirt's rule).
      const a = driveAddress(el, path, driveIndex(d.targetDev) ?? unit, bus);
      if (
        a.controller !== 0 ||
        a.target !== 0 ||
        (bus === "ide" && (a.bus > 1 || a.unit > 1)) ||
        (bus === "sata" && (a.bus !== 0 || a.unit > 5))
      )
        throw unsupported(
          `${path}/address`,
          undefined,
          bus === "ide"
            ? 'the built-in IDE controller has buses 0-1, units 0-1 (controller 0, target 0): libvirt writes other units, but QEMU refuses them at start ("Can\'t create IDE unit 2, bus supports only 2 units", checked with QEMU 7.2 and 11); write a unit QEMU has'
            : "the built-in SATA controller has units 0-5 on controller 0, bus 0, target 0",
        );
      const driver = d.device === "cdrom" ? "ide-cd" : "ide-hd";
      if (bus === "ide")
        Object.assign(dev, { driver, bus: `ide.${a.bus}`, unit: a.unit, drive, id: `ide0-${a.bus}-${a.unit}` });
      // SATA: the q35 machine's built-in AHCI is `ide`, an added AHCI controller `sata0` (libvirt's names)
      else
        Object.assign(dev, {
          driver,
          bus: devs.rootBus === "pcie.0" ? `ide.${a.unit}` : `sata0.${a.unit}`,
          drive,
          id: `sata0-0-${a.unit}`,
        });
    } else if (bus === "scsi") {
      const a = driveAddress(el, path, driveIndex(d.targetDev) ?? unit, bus);
      // a SCSI controller the definition does not state is one libvirt adds: lsilogic
      const ctrl =
        v.controllers.find((c) => c.type === "scsi" && Number(c.index ?? "0") === a.controller) ??
        (implicitScsiControllers(v.disks, els, v.controllers).includes(a.controller)
          ? { type: "scsi", index: String(a.controller), model: "lsilogic" }
          : undefined);
      if (!ctrl)
        throw unsupported(`${path}/address/@controller`, `${a.controller}`, "add the SCSI controller of that index");
      const driver = lun ? "scsi-block" : d.device === "cdrom" ? "scsi-cd" : "scsi-hd";
      // as libvirt (qemuBuildDeviceAddressProps): lsi has one LUN per target id, virtio-scsi both
      if ((ctrl.model ?? "auto") === "auto" || ctrl.model === "lsilogic") {
        const id = `scsi${a.controller}-${a.bus}-${a.unit}`;
        if (a.target !== 0)
          throw unsupported(`${path}/address/@target`, `${a.target}`, "an lsilogic controller has target 0 only");
        Object.assign(dev, {
          driver,
          bus: `scsi${a.controller}.${a.bus}`,
          "scsi-id": a.unit,
          device_id: d.serial ?? `drive-${id}`,
          drive,
          id,
        });
      } else {
        const id = `scsi${a.controller}-${a.bus}-${a.target}-${a.unit}`;
        Object.assign(dev, {
          driver,
          bus: `scsi${a.controller}.0`,
          channel: a.bus,
          "scsi-id": a.target,
          lun: a.unit,
          device_id: d.serial ?? `drive-${id}`,
          drive,
          id,
        });
      }
    } else if (bus === "usb") {
      // usb-storage on the first USB controller's root hub, at libvirt's next free port
      const usb = devs.of("controller").filter((c) => getAttr(c, "type") === "usb");
      // none written: libvirt adds the PIIX3 USB controller on the PC machine (see buildControllers)
      const implicitUsb = usb.length === 0 && devs.rootBus === "pci.0" && v.os.machine !== "isapc";
      if ((usb.length === 0 && !implicitUsb) || (usb.length > 0 && usb.every((c) => getAttr(c, "model") === "none")))
        throw unsupported(
          `${path}/target/@bus`,
          bus,
          "a USB disk needs a USB controller: add <controller type='usb' model='qemu-xhci'/>",
        );
      const a = el && firstChild(el, "address");
      if (a && (getAttr(a, "type") !== "usb" || (getAttr(a, "bus") ?? "0") !== "0"))
        throw unsupported(`${path}/address`, undefined, "write <address type='usb' bus='0' port='N'/> or none");
      if (a)
        for (const at of a.attrs)
          if (!["type", "bus", "port"].includes(at.name))
            throw unsupported(`${path}/address/@${at.name}`, at.value, "remove it");
      if (drive === undefined)
        throw new DomainXmlError("a USB disk must not be empty", {
          path: `${path}/source`,
          fix: "give the USB disk a <source>, or use an IDE/SATA/SCSI cdrom for removable media",
        });
      const port = (el && usbPorts.get(el)) ?? "1";
      if (usb.every((c) => (getAttr(c, "model") ?? "piix3-uhci") === "piix3-uhci") && Number(port) > 2)
        throw unsupported(
          path,
          port,
          "the PIIX3 USB controller has 2 ports: use fewer USB devices, a qemu-xhci controller, or libvirt (it adds hubs)",
        );
      Object.assign(dev, {
        driver: "usb-storage",
        bus: "usb.0",
        port,
        drive,
        id: `usb-disk${driveIndex(d.targetDev) ?? unit}`,
      });
    } else {
      throw unsupported(`${path}/target/@bus`, bus, "use bus virtio, ide, sata, scsi or usb");
    }
    if (el) Object.assign(dev, diskDeviceProps(d, el, path, bus), diskIothreadProps(el, path, bus, iothreadIds));
    if (d.serial !== undefined) dev.serial = d.serial;
    if (lun) {
      // scsi-block: the host device answers the guest's SCSI inquiries itself (libvirt writes no device_id)
      delete dev.device_id;
      const own =
        Object.keys(dev).find((k) => !["driver", "bus", "channel", "scsi-id", "lun", "drive", "id"].includes(k)) ??
        (cache ? "cache" : undefined);
      if (own !== undefined)
        throw unsupported(
          path,
          own,
          "a device='lun' disk is the host's SCSI device as it is: remove what would change it (serial, wwn, vendor, product, geometry, blockio, cache, error policies) or use device='disk'",
        );
    }
    if (bi !== undefined) dev.bootindex = bi;
    if (cache) dev["write-cache"] = cache.writeCache ? "on" : "off";
    if (drive === undefined) delete dev.drive;
    // libvirt names a virtio disk's block backend by the virtio device inside the PCI proxy, a USB
    // disk's by the SCSI disk usb-storage makes on its own bus (qemuAssignDeviceDiskAlias's qomName)
    const id = String(dev.id);
    throttle(
      bus === "virtio"
        ? `/machine/peripheral/${id}/virtio-backend`
        : bus === "usb"
          ? `/machine/peripheral/${id}/${id}.0/legacy[0]`
          : id,
    );
    add("-device", deviceJson(dev));
  });
  return throttles;
}

/**
 * A `device='lun'` disk as the builder builds it: on a SCSI controller, over a host block device
 * (libvirt: "disk device='lun' is only valid for block type disk source"; SCSI passthrough over
 * virtio-blk is gone from QEMU). Network LUNs (iSCSI) and persistent reservations are refused.
 */
function checkLun(d: DomainDisk, el: XmlElement | undefined, path: string, bus: string): void {
  if (d.type !== "block")
    throw new DomainXmlError("a LUN must be a block device", {
      path: `${path}/@type`,
      value: d.type ?? "file",
      allowed: "block",
      fix: "write type='block' with <source dev='/dev/...'/> for device='lun', or use device='disk' (libvirt: disk device='lun' is only valid for block type disk source)",
    });
  if (bus !== "scsi")
    throw unsupported(
      `${path}/target/@bus`,
      bus,
      "device='lun' is built on a SCSI controller (scsi-block): write bus='scsi' (QEMU has no SCSI passthrough over virtio-blk)",
    );
  const src = el && firstChild(el, "source");
  if (src && firstChild(src, "reservations"))
    throw unsupported(
      `${path}/source/reservations`,
      undefined,
      "persistent reservations need the qemu-pr-helper process libvirt starts: remove <reservations> or apply through libvirt",
    );
}

/**
 * The q35 machine has no floppy controller built in: with a floppy disk, libvirt adds an
 * `isa-fdc` device before the disks (qemuBuildFloppyCommandLineControllerOptions), the floppies'
 * boot indexes its `bootindexA`/`bootindexB` (the PC machine's built-in one takes them as
 * `-global isa-fdc.bootindexA=`). Units as the disk loop reads them (driveAddress).
 */
function q35FloppyController(
  v: DomainView,
  order: readonly number[],
  els: readonly (XmlElement | undefined)[],
  boot: Map<object, number>,
  add: Add,
): void {
  const props: Record<string, unknown> = { driver: "isa-fdc" };
  let counter = -1;
  let any = false;
  for (const i of order) {
    const d = v.disks[i]!;
    if (diskBus(d) !== "fdc") continue;
    const unit = ++counter;
    if (d.device !== "floppy") continue;
    any = true;
    const a = driveAddress(els[i], `/domain/devices/disk[${i + 1}]`, driveIndex(d.targetDev) ?? unit, "fdc");
    const bi = boot.get(d);
    if (bi !== undefined && a.unit <= 1) props[`bootindex${a.unit === 0 ? "A" : "B"}`] = bi;
  }
  if (any) add("-device", JSON.stringify(props));
}

/**
 * A `<disk type='dir'>` with `<driver type='fat'>`: QEMU's vvfat driver presents the host
 * directory as a FAT file system, as libvirt writes it (`floppy` for a floppy, `rw` false). libvirt's
 * rules: the fat format only for a directory, a directory only as fat, read-only ("cannot create
 * virtual FAT disks in read-write mode").
 */
function fatStorage(d: DomainDisk, el: XmlElement, path: string): Record<string, unknown> {
  if (d.type !== "dir")
    throw new DomainXmlError("a virtual FAT image is made from a directory", {
      path: `${path}/@type`,
      value: d.type ?? "file",
      allowed: "dir",
      fix: "write <disk type='dir'> with <source dir='/path'/> for driver type='fat', or use a raw or qcow2 image",
    });
  if (d.driverType !== "fat")
    throw new DomainXmlError("a directory disk is a virtual FAT image", {
      path: `${path}/driver/@type`,
      value: d.driverType ?? "raw",
      allowed: "fat",
      fix: "write <driver name='qemu' type='fat'/>",
    });
  const dir = getAttr(firstChild(el, "source"), "dir");
  if (dir === undefined)
    throw new DomainXmlError("missing disk source", {
      path: `${path}/source/@dir`,
      fix: "write <source dir='/path'/>",
    });
  if (!d.readonly)
    throw new DomainXmlError("cannot create virtual FAT disks in read-write mode", {
      path: `${path}/readonly`,
      mirrorsLibvirt: true,
      fix: "add <readonly/> (QEMU's writable vvfat is not supported by libvirt)",
    });
  return { driver: "vvfat", dir, floppy: d.device === "floppy", rw: false };
}

/**
 * Whether the guest RAM is shared with other processes, as libvirt decides it for vhost-user
 * devices (qemuValidateDomainDefVhostUserRequireSharedMemory): `<memoryBacking><access
 * mode='shared'>`, or NUMA cells that are all `memAccess='shared'`.
 */
function guestMemoryShared(root: XmlElement): boolean {
  const access = firstChild(firstChild(root, "memoryBacking") ?? root, "access");
  const cells = childElements(firstChild(firstChild(root, "cpu") ?? root, "numa") ?? root, "cell");
  if (cells.length) return cells.every((c) => (getAttr(c, "memAccess") ?? getAttr(access, "mode")) === "shared");
  return !!access && getAttr(access, "mode") === "shared";
}

/** `hda` -> 0, `hdc` -> 2, `sdb` -> 1: libvirt's virDiskNameToIndex for one-letter suffixes. */
function driveIndex(dev: string | undefined): number | undefined {
  const m = dev ? /^(?:hd|sd|vd|xvd|fd)([a-z])$/.exec(dev) : null;
  return m?.[1] ? m[1].charCodeAt(0) - 97 : undefined;
}

function diskSource(d: DomainDisk, path: string): { driver: string; filename: string } | undefined {
  if (d.type === "file" || d.type === undefined)
    return d.sourceFile !== undefined ? { driver: "file", filename: d.sourceFile } : undefined;
  if (d.type === "block")
    return d.sourceDev !== undefined ? { driver: "host_device", filename: d.sourceDev } : undefined;
  throw unsupported(`${path}/@type`, d.type, DISK_TYPE_NEEDS[d.type] ?? "use type='file', 'block', 'network' or 'dir'");
}

/** Why a disk type needs libvirt (the fix of its refusal). */
const DISK_TYPE_NEEDS: Readonly<Record<string, string>> = {
  volume:
    "a storage pool volume is resolved by libvirt's storage driver, which the QEMU-direct backend has no access to: write the volume's path as type='file' or 'block', or apply through libvirt",
  nvme: "a host NVMe namespace is driven by QEMU over VFIO after libvirt detaches it from the host driver: apply through libvirt",
  vhostuser:
    "a vhost-user disk needs a vhost-user-blk server (e.g. qemu-storage-daemon) and guest memory shared with it, which libvirt sets up: apply through libvirt",
  vhostvdpa: "a vDPA block device is opened by libvirt and passed to QEMU as a file descriptor: apply through libvirt",
};

const NIC_DRIVERS: Record<string, string> = {
  virtio: "virtio-net-pci",
  e1000: "e1000",
  e1000e: "e1000e",
  rtl8139: "rtl8139",
};

function buildInterfaces(v: DomainView, add: Add, devs: DeviceElements, root: XmlElement): void {
  const boot = bootIndexes(v, devs);
  const els = devs.of("interface");
  v.interfaces.forEach((n: DomainInterface, i) => {
    const path = `/domain/devices/interface[${i + 1}]`;
    const { netdevId: id, deviceId } = nicIds(els[i], i);
    const netdev = interfaceNetdev(add, root, els[i], n.type, path, id);
    checkLinkState(els[i], path);
    if (netdev) add("-netdev", JSON.stringify(netdev));
    else if (n.type === "user") add("-netdev", JSON.stringify({ type: "user", id }));
    else if (n.type === "bridge") add("-netdev", JSON.stringify({ type: "bridge", br: n.sourceBridge, id }));
    else
      throw unsupported(
        `${path}/@type`,
        n.type,
        n.type === "network"
          ? "a libvirt network (a libvirt object) needs libvirt: write type='bridge' with the network's bridge (virsh net-info NAME), or apply through libvirt"
          : n.type === "hostdev"
            ? "libvirt sets the VF's MAC, VLAN and port profile on the host: write a <hostdev type='pci'> of the VF and set those on the host (ip link set PF vf N mac ...), or apply through libvirt"
            : n.type === "direct"
              ? "a macvtap is created by libvirt and passed to QEMU as an fd: use type='bridge' or 'ethernet', or apply through libvirt"
              : "use type='user', 'bridge', 'ethernet', 'mcast', 'udp', 'server', 'client', 'vdpa' or 'vhostuser', or apply through libvirt",
      );
    // libvirt's default NIC model (qemuDomainDefaultNetModel): rtl8139 on x86, virtio for vDPA and vhost-user
    const driver = NIC_DRIVERS[n.model ?? defaultNicModel(n.type)];
    if (!driver) throw unsupported(`${path}/model/@type`, n.model, `use one of ${Object.keys(NIC_DRIVERS).join(", ")}`);
    const dev: Record<string, unknown> = {
      driver,
      netdev: id,
      id: deviceId,
      ...pciAddressProps(els[i], path, devs),
      ...nicDeviceProps(els[i], path, driver),
    };
    if (n.mac !== undefined) dev.mac = n.mac.toLowerCase();
    const bi = boot.get(n);
    if (bi !== undefined) dev.bootindex = bi;
    add("-device", JSON.stringify(dev));
  });
}

/** The videos in libvirt's order: the one marked `primary='yes'` first (its parser inserts it first). Indexes. */
function videoOrder(devs: DeviceElements): number[] {
  const els = devs.of("video");
  const p = els.findIndex((el) => getAttr(firstChild(el, "model"), "primary") === "yes");
  const all = els.map((_, i) => i);
  return p <= 0 ? all : [p, ...all.filter((i) => i !== p)];
}

/**
 * The VNC listen address: `@listen`, or the `<listen type='address' address=>` child libvirt
 * keeps in step with it (virDomainGraphicsListensParseXML); 127.0.0.1 when neither is given (as
 * libvirt's default vnc_listen). Other listen types (socket, network, none) are refused.
 */
function vncListenAddress(attr: string | undefined, el: XmlElement | undefined, path: string): string {
  const listens = el ? childElements(el, "listen") : [];
  if (listens.length > 1)
    throw unsupported(`${path}/listen[2]`, undefined, "VNC listens on one address: keep one <listen>");
  const [l] = listens;
  if (!l) return attr ?? "127.0.0.1";
  const lp = `${path}/listen[1]`;
  const type = getAttr(l, "type");
  if (type !== "address") throw unsupported(`${lp}/@type`, type, "use <listen type='address' address='127.0.0.1'/>");
  for (const a of l.attrs)
    if (a.name !== "type" && a.name !== "address")
      throw unsupported(`${lp}/@${a.name}`, a.value, "remove it or apply through libvirt");
  const address = getAttr(l, "address");
  if (attr !== undefined && address !== undefined && attr !== address)
    throw new DomainXmlError("graphics 'listen' attribute does not match 'address' attribute of first listen element", {
      path: `${lp}/@address`,
      value: address,
      allowed: attr,
      fix: "write the same address in @listen and <listen address=>, or only one of them",
      mirrorsLibvirt: true,
    });
  return address ?? attr ?? "127.0.0.1";
}

function buildGraphics(
  v: DomainView,
  add: Add,
  secrets: { dir: string; files: QemuSecretFile[] },
  devs: DeviceElements,
  mediaCtx: media.MediaContext,
  audios: readonly media.AudioBackend[],
): void {
  media.checkGraphicsCombination((n) => devs.of(n));
  v.graphics.forEach((g, i) => {
    const path = `/domain/devices/graphics[${i + 1}]`;
    const gel = devs.of("graphics")[i];
    if (gel && g.type !== undefined && media.MEDIA_GRAPHICS.has(g.type))
      return media.buildMediaGraphics(mediaCtx, gel, path, audios);
    if (g.type !== "vnc")
      throw unsupported(`${path}/@type`, g.type, "use graphics of type vnc, spice, sdl, egl-headless or dbus");
    const extras = media.vncExtras(gel, path, audios);
    const special = media.vncSpecialDisplay(gel, path, mediaCtx.socketDir);
    if (special !== undefined) {
      add("-vnc", special + extras.before + vncAuth(g, i, path, add, secrets) + extras.after);
      return;
    }
    const address = vncListenAddress(g.listen, gel, path);
    const listen = qemuOptEscape(address.includes(":") ? `[${address}]` : address);
    const port =
      g.port !== undefined && g.port !== "-1" && g.autoport !== "yes"
        ? xmlWholeNumber(
            `${path}/@port`,
            g.port,
            5900,
            65535,
            "write a port from 5900 (display :0) up, or port='-1' autoport='yes'",
          )
        : undefined;
    const auth = vncAuth(g, i, path, add, secrets);
    add(
      "-vnc",
      (port !== undefined ? `${listen}:${port - 5900}` : `${listen}:0,to=99`) + extras.before + auth + extras.after,
    );
  });
  videoOrder(devs).forEach((i, pos) => {
    const el = devs.of("video")[i];
    const path = `/domain/devices/video[${i + 1}]`;
    const m =
      (v.videoModels[i] ?? getAttr(firstChild(devs.of("video")[i]!, "model"), "type")) ||
      iv.defaultVideoModel(v.os.machine ?? "pc", path);
    const id = iv.videoId(el, pos);
    const other = iv.otherVideoDevice(el, path, m, id);
    if (other) return add("-device", JSON.stringify(other));
    // a secondary virtio video is a virtio-gpu-pci (no VGA compatibility), as libvirt writes it
    const accel = media.videoAcceleration(el, path, m, pos === 0);
    const driver =
      accel.driver ??
      {
        vga: "VGA",
        cirrus: "cirrus-vga",
        virtio: pos === 0 ? "virtio-vga" : "virtio-gpu-pci",
        bochs: "bochs-display",
        qxl: pos === 0 ? "qxl-vga" : "qxl",
        none: "",
      }[m];
    if (driver === undefined)
      throw unsupported(
        `/domain/devices/video[${i + 1}]/model/@type`,
        m,
        "use vga, cirrus, virtio, bochs, qxl or none",
      );
    // libvirt's rule (qemu_validate.c): only qxl and virtio videos can be secondary
    if (pos > 0 && m !== "qxl" && m !== "virtio")
      throw new DomainXmlError(`video type '${m}' is only valid as primary video device`, {
        path: `${path}/model/@type`,
        value: m,
        allowed: "qxl, virtio",
        category: "unsupported configuration",
        mirrorsLibvirt: true,
        fix: "make it the primary video, or use a qxl or virtio secondary video",
      });
    const model = el && firstChild(el, "model");
    const heads = getAttr(model, "heads");
    const props: Record<string, unknown> = { ...accel.props };
    const vram = getAttr(model, "vram");
    if (m === "qxl") Object.assign(props, qxlProps(model, path));
    else
      for (const attr of ["ram", "vgamem", "vram64"]) {
        const val = getAttr(model, attr);
        if (val !== undefined) throw unsupported(`${path}/model/@${attr}`, val, "only a qxl video takes it: remove it");
      }
    if (m === "virtio")
      props.max_outputs = xmlWholeNumber(`${path}/model/@heads`, heads ?? "1", 1, 16, "write e.g. heads='1'");
    // VGA memory as libvirt writes it (vgamem_mb from vram, default 16 MiB); other models take none
    if (m === "vga")
      props.vgamem_mb =
        xmlWholeNumber(`${path}/model/@vram`, vram ?? "16384", 1024, 1048576, "write e.g. vram='16384' (KiB)") / 1024;
    else if (m === "bochs")
      props.vgamem =
        xmlWholeNumber(`${path}/model/@vram`, vram ?? "16384", 1024, 1048576, "write e.g. vram='16384' (KiB)") * 1024;
    else if (vram !== undefined && vram !== "16384" && m !== "qxl")
      throw unsupported(`${path}/model/@vram`, vram, "only a vga or bochs video takes its memory size: remove vram");
    else if (heads !== undefined && heads !== "1" && m !== "qxl" && m !== "virtio")
      throw unsupported(`${path}/model/@heads`, heads, "only a virtio video has several heads: write heads='1'");
    if (driver)
      add(
        "-device",
        JSON.stringify({ driver, id, ...props, ...pciAddressProps(el, path, devs), ...iv.acpiIndexProps(el, path) }),
      );
    else if (el && firstChild(el, "address"))
      throw unsupported(`${path}/address`, undefined, "a video of model none has no address: remove it");
  });
}

/**
 * VNC authentication for `passwd` (libvirt sets it over QMP after start; we give it at start): a
 * password comes from a secret object reading a file (never the command line, where
 * /proc/PID/cmdline shows it); an empty one allows no login at all (libvirt expires it at once).
 * Returns the `-vnc` options to append.
 */
function vncAuth(
  g: DomainGraphics,
  i: number,
  path: string,
  add: Add,
  secrets: { dir: string; files: QemuSecretFile[] },
): string {
  if (g.passwdValidTo !== undefined)
    throw unsupported(
      `${path}/@passwdValidTo`,
      g.passwdValidTo,
      "remove passwdValidTo (an expiring password needs libvirt)",
    );
  if (g.passwd === undefined) return "";
  if (g.passwd === "") return ",password=on";
  // libvirt's own rule (qemu_validate.c): VNC authentication uses 8 bytes, QEMU would drop the rest.
  const bytes = Buffer.byteLength(g.passwd, "utf8");
  if (bytes > 8) {
    throw new DomainXmlError(`VNC password is ${bytes} characters long, only 8 permitted`, {
      path: `${path}/@passwd`,
      category: "unsupported configuration",
      mirrorsLibvirt: true,
      fix: "use a VNC password of at most 8 characters",
    });
  }
  const id = `vnc${i}-secret`;
  const file = `${secrets.dir}/${id}`;
  secrets.files.push({ path: file, data: g.passwd });
  add("-object", JSON.stringify({ "qom-type": "secret", id, file, format: "raw" }));
  return `,password-secret=${id}`;
}

/** `<watchdog action=>` as `-watchdog-action` (libvirt's mapping); `dump` is done by libvirt itself. */
const WATCHDOG_ACTIONS: Readonly<Record<string, string>> = {
  reset: "reset",
  poweroff: "poweroff",
  shutdown: "shutdown",
  pause: "pause",
  none: "none",
  "inject-nmi": "inject-nmi",
};

/**
 * `<watchdog>` as libvirt writes it (qemuBuildWatchdogCommandLine): i6300esb (PCI) and ib700
 * (ISA) as `-device`, q35's built-in iTCO as `-global ICH9-LPC.noreboot=off`; the action once,
 * from the first watchdog. Other models and actions are refused.
 */
function buildWatchdogs(add: Add, devs: DeviceElements): void {
  const list = devs.of("watchdog");
  // libvirt adds the q35 machine's built-in iTCO watchdog (action reset) when none is written
  const implicitItco = devs.rootBus === "pcie.0" && !list.some((w) => getAttr(w, "model") === "itco");
  list.forEach((w, i) => {
    const path = `/domain/devices/watchdog[${i + 1}]`;
    const model = getAttr(w, "model");
    if (model === "i6300esb")
      add("-device", JSON.stringify({ driver: "i6300esb", id: `watchdog${i}`, ...pciAddressProps(w, path, devs) }));
    else if (model === "ib700") {
      if (firstChild(w, "address"))
        throw unsupported(`${path}/address`, undefined, "an ib700 watchdog is on ISA: remove <address>");
      add("-device", JSON.stringify({ driver: "ib700", id: `watchdog${i}` }));
    } else if (model === "itco" && devs.rootBus === "pcie.0") add("-global", "ICH9-LPC.noreboot=off");
    else throw unsupported(`${path}/@model`, model, "use model i6300esb or ib700 (itco on q35)");
  });
  if (implicitItco) add("-global", "ICH9-LPC.noreboot=off");
  const [first] = list;
  if (!first) {
    if (implicitItco) add("-watchdog-action", "reset");
    return;
  }
  const action = getAttr(first, "action") ?? "reset";
  const a = WATCHDOG_ACTIONS[action];
  if (!a)
    throw unsupported(
      "/domain/devices/watchdog[1]/@action",
      action,
      `use one of ${Object.keys(WATCHDOG_ACTIONS).join(", ")} (a dump is written by libvirt)`,
    );
  add("-watchdog-action", a);
}

const USB_INPUTS: Readonly<Record<string, string>> = { tablet: "usb-tablet", mouse: "usb-mouse", keyboard: "usb-kbd" };

/**
 * `<input>`: the PS/2 pair the PC machine has built in (no argument), USB tablet, mouse and
 * keyboard as libvirt writes them (`bus: usb.0`, the USB port from `<address type='usb'>` or
 * libvirt's next free port). Other buses and types are refused.
 */
function buildInputs(add: Add, devs: DeviceElements, soundPorts = 0): void {
  let port = Math.max(soundPorts, usbPortsBeforeInputs(devs));
  let n = 0;
  // hubs libvirt adds and ports behind hubs (provider/qemu/input-video.ts); undefined: in order on the root hub
  const layout = iv.usbInputLayout((name) => devs.of(name), devs.rootBus, usbRootPorts(devs));
  const written = devs.of("hub").length;
  layout?.implicitHubs.forEach((p, k) =>
    add("-device", JSON.stringify({ driver: "usb-hub", id: `hub${written + k}`, bus: "usb.0", port: p })),
  );
  devs.of("input").forEach((el, i) => {
    const path = `/domain/devices/input[${i + 1}]`;
    const bus = getAttr(el, "bus");
    const type = getAttr(el, "type") ?? "";
    if (bus === "ps2" && (type === "mouse" || type === "keyboard")) return;
    if (iv.buildVirtioOrEvdevInput({ add, pci: (e, p) => pciAddressProps(e, p, devs) }, el, path, `input${n}`))
      return void n++;
    const driver = USB_INPUTS[type];
    if (bus !== "usb" || !driver)
      throw unsupported(`${path}/@bus`, bus, "use a PS/2 mouse or keyboard, or a USB tablet, mouse or keyboard");
    const a = firstChild(el, "address");
    let at: string;
    const laid = layout?.ports.get(el);
    if (laid !== undefined) at = laid;
    else if (a && getAttr(a, "type") === "usb" && (getAttr(a, "bus") ?? "0") === "0" && !getAttr(a, "port"))
      at = String(++port);
    else if (a) {
      if (getAttr(a, "type") !== "usb" || (getAttr(a, "bus") ?? "0") !== "0")
        throw unsupported(`${path}/address`, undefined, "write <address type='usb' bus='0' port='N'/> or none");
      at = getAttr(a, "port") ?? "";
      if (!/^[1-9][0-9]*$/.test(at))
        throw unsupported(`${path}/address/@port`, at, "write a port on the root hub, e.g. port='1'");
      port = Math.max(port, Number(at));
    } else at = String(++port);
    // beyond the root hub's ports with no layout (usbInputLayout) to add hubs: refused, not built
    const rootPorts = usbRootPorts(devs);
    if (rootPorts !== undefined && laid === undefined && Number(at) > rootPorts)
      throw unsupported(
        path,
        type,
        `the USB controller has ${rootPorts} ports: use fewer USB devices, more ports (a qemu-xhci controller with ports='N'), or libvirt (it adds hubs)`,
      );
    add("-device", JSON.stringify({ driver, id: `input${n++}`, bus: "usb.0", port: at }));
  });
}

/** QXL memory as libvirt writes it (KiB in the XML; defaults ram 64 MiB, vram 64 MiB, vgamem 16 MiB). */
function qxlProps(model: XmlElement | undefined, path: string): Record<string, unknown> {
  const kib = (attr: string, dflt: string) =>
    xmlWholeNumber(
      `${path}/model/@${attr}`,
      getAttr(model, attr) ?? dflt,
      0,
      4194304,
      `write e.g. ${attr}='${dflt}' (KiB)`,
    );
  return {
    max_outputs: xmlWholeNumber(`${path}/model/@heads`, getAttr(model, "heads") ?? "1", 1, 16, "write e.g. heads='1'"),
    ram_size: kib("ram", "65536") * 1024,
    vram_size: kib("vram", "65536") * 1024,
    vram64_size_mb: Math.floor(kib("vram64", "0") / 1024),
    vgamem_mb: Math.floor(kib("vgamem", "16384") / 1024),
  };
}

/** `<memballoon autodeflate=>` as libvirt writes it (`deflate-on-oom`). */
function balloonProps(el: XmlElement | undefined): Record<string, unknown> {
  const a = getAttr(el, "autodeflate");
  if (a === undefined) return {};
  if (a !== "on" && a !== "off")
    throw unsupported("/domain/devices/memballoon[1]/@autodeflate", a, "write 'on' or 'off'");
  return { "deflate-on-oom": a === "on" };
}

/**
 * `<on_reboot>destroy</on_reboot>`: QEMU exits instead of rebooting (`-no-reboot`). libvirt asks
 * QEMU for the same at run time (QMP `set-action reboot=shutdown`); without libvirt there is no one
 * to ask, so the command line says it. `restart` is QEMU's default; other policies are refused by
 * the path table (provider/qemu/paths.ts).
 */
function buildLifecycle(root: XmlElement, add: Add): void {
  if (textContent(firstChild(root, "on_reboot"))?.trim() === "destroy") add("-no-reboot");
}

function buildMisc(v: DomainView, add: Add, devs: DeviceElements): void {
  v.rngModels.forEach((m, i) => {
    if (m !== "virtio") throw unsupported(`/domain/devices/rng[${i + 1}]/@model`, m, "use model='virtio'");
    const el = devs.of("rng")[i]!;
    add("-object", platform.rngBackendObject(el, i, add)); // platform.ts: random, builtin, egd
    const dev = { driver: "virtio-rng-pci", rng: `objrng${i}`, id: `rng${i}`, ...platform.rngDeviceProps(el, i) };
    add("-device", JSON.stringify({ ...dev, ...pciAddressProps(el, `/domain/devices/rng[${i + 1}]`, devs) }));
  });
  const balloon = devs.of("memballoon")[0];
  // libvirt adds a virtio balloon when the definition has none (virDomainDefAddImplicitDevices)
  if (v.memballoonModel === "virtio" || !balloon)
    add(
      "-device",
      JSON.stringify({
        driver: "virtio-balloon-pci",
        id: "balloon0",
        ...balloonProps(balloon),
        ...platform.balloonDriverProps(balloon),
        ...pciAddressProps(balloon, "/domain/devices/memballoon[1]", devs, balloon ?? IMPLICIT_BALLOON),
      }),
    );
  else if (balloon && firstChild(balloon, "address"))
    throw unsupported(
      "/domain/devices/memballoon[1]/address",
      undefined,
      "a memballoon of model none has no address: remove it",
    );
  else if (v.memballoonModel !== undefined && v.memballoonModel !== "none") {
    throw unsupported("/domain/devices/memballoon/@model", v.memballoonModel, "use model='virtio' or 'none'");
  }
}

/**
 * What the builder does not express (yet) outside `<devices>`, refused at preview naming it,
 * so that nothing the definition asks for is dropped without a word (issue 12). Each entry is a
 * path (element names from `<domain>`, a final `@name` for an attribute; a `qemu:` name matches
 * the QEMU namespace under any prefix) and how to fix the definition.
 */
export const REFUSED_PATHS: readonly { readonly path: string; readonly fix: string }[] = [
  {
    path: "/domain/launchSecurity",
    fix: "confidential guests (SEV, SEV-SNP, TDX, s390 PV) need libvirt: apply through libvirt",
  },
  { path: "/domain/os/shim", fix: "a Secure Boot shim needs libvirt's firmware handling: apply through libvirt" },
  {
    path: "/domain/qemu:capabilities",
    fix: "QEMU capability overrides need libvirt: remove it or apply through libvirt",
  },
  {
    path: "/domain/qemu:override",
    fix: "QEMU device property overrides need libvirt: remove it or apply through libvirt",
  },
  {
    path: "/domain/qemu:deprecation",
    fix: "the QEMU deprecation behavior is set by libvirt: remove it or apply through libvirt",
  },
];

/** Whether `el` is named `name` (`qemu:LOCAL` matching the QEMU namespace under any prefix). */
function namedAs(el: XmlElement, name: string): boolean {
  if (!name.startsWith("qemu:")) return el.name === name;
  const i = el.name.indexOf(":");
  return (i < 0 ? el.name : el.name.slice(i + 1)) === name.slice(5) && (i < 0 || el.name.slice(0, i) !== "");
}

/** Refuses the first {@link REFUSED_PATHS} entry the definition states. */
export function checkRefusedPaths(def: DomainDef): void {
  for (const r of REFUSED_PATHS) {
    const steps = r.path.split("/").slice(2);
    const attr = steps.at(-1)?.startsWith("@") ? steps.pop()!.slice(1) : undefined;
    let el: XmlElement | undefined = def.root;
    for (const s of steps) el = el && childElements(el).find((c) => namedAs(c, s));
    if (!el) continue;
    if (attr === undefined) throw unsupported(r.path, undefined, r.fix);
    const value = getAttr(el, attr);
    if (value !== undefined) throw unsupported(r.path, value, r.fix);
  }
}

/**
 * Device element names the builder understands; any other child of `<devices>` is refused.
 * `input` is here only in the forms the builder expresses (checked by
 * {@link checkDevicesSupported}; every other form is refused): a PS/2 mouse or keyboard is part
 * of the PC machine (libvirt adds both and passes nothing for them either), a USB tablet, mouse
 * or keyboard is a `-device` on the USB controller (buildInputs). `audio` and `sound` are built
 * by provider/qemu/media.ts (`-audiodev`, sound cards).
 */
export const SUPPORTED_DEVICES = new Set([
  "emulator",
  "disk",
  "filesystem",
  "interface",
  "serial",
  "console",
  "channel",
  "graphics",
  "video",
  "controller",
  "rng",
  "memballoon",
  "tpm",
  "input",
  "audio",
  "sound",
  "watchdog",
  "parallel",
  // virtio-pmem (provider/qemu/memory-devices.ts)
  "memory",
  // hostdev-net family (provider/qemu/hostdev-net.ts)
  "hostdev",
  "hub",
  "panic",
  "iommu",
  "vsock",
  "smartcard",
  "redirdev",
  // input-video family (provider/qemu/input-video.ts)
  "redirfilter",
]);

/** Refuses devices the builder cannot express, naming the first one. */
export function checkDevicesSupported(def: DomainDef): void {
  const d = firstChild(def.root, "devices");
  if (!d) return;
  const seen: Record<string, number> = {};
  for (const c of d.children) {
    if (c.kind !== "element") continue;
    seen[c.name] = (seen[c.name] ?? 0) + 1;
    const at = `/domain/devices/${c.name}[${seen[c.name]}]`;
    if (!SUPPORTED_DEVICES.has(c.name)) {
      throw unsupported(at, c.name, "remove it or apply through libvirt");
    }
    if (c.name === "input") iv.checkInputForm(c, at); // provider/qemu/input-video.ts
  }
}
