/**
 * What the QEMU command line builder ({@link buildQemuArgv}) does with every element and
 * attribute of a domain definition, as data: the ONE table behind "what it cannot express fails
 * at preview" (issue 12). A path of a definition is either
 *
 * - **expressed** ({@link EXPRESSED_PATHS}): the builder reads it into the command line (or
 *   refuses values it cannot build, with its own error naming the value);
 * - **no QEMU argument** ({@link NO_ARGV}): it legitimately produces no QEMU argument, in libvirt
 *   as here, with the reason for each (text for humans, libvirt's own policies, ...);
 * - **a default** ({@link DEFAULT_VALUED}): an explicit value equal to what the builder does anyway;
 * - or **refused** by {@link checkExpressedPaths}: a {@link DomainXmlError} naming the path, the
 *   value, what is built at that place, and the fix. Nothing is dropped without a word.
 *
 * Paths are element names from `<domain>`, a final `@name` for an attribute, without positions;
 * an element of the QEMU namespace is `qemu:LOCAL` under any prefix (matched by namespace URI, as
 * libvirt reads it). A few elements are qualified by the attribute that decides how they are built
 * (`sysinfo[@type='smbios']`, `entry[@name='serial']`, `input[@bus='ps2']`,
 * `controller[@type='pci']/@model='pci-root'`).
 *
 * Pure: no I/O.
 */
import { DomainDef } from "../xml/domain";
import { DomainXmlError } from "../xml/errors";
import { XmlElement, childElements, firstChild, getAttr, textContent } from "../xml/tree";
import { toKiB } from "../xml/units";

const SMBIOS_KEYS: Readonly<Record<string, readonly string[]>> = {
  bios: ["vendor", "version", "date", "release"],
  system: ["manufacturer", "product", "version", "serial", "uuid", "sku", "family"],
  baseBoard: ["manufacturer", "product", "version", "serial", "asset", "location"],
  chassis: ["manufacturer", "version", "serial", "asset", "sku"],
};

/** What a network disk's `<source>` holds, relative to it (provider/qemu/storage.ts networkStorage). */
const NETWORK_SOURCE_PATHS: readonly string[] = [
  "@protocol",
  "@name",
  "@query",
  "@tls",
  "host",
  "host/@name",
  "host/@port",
  "host/@transport",
  "host/@socket",
  "reconnect",
  "reconnect/@delay",
  "snapshot",
  "snapshot/@name",
  "config",
  "config/@file",
  "initiator",
  "initiator/iqn",
  "initiator/iqn/@name",
  "timeout",
  "timeout/@seconds",
  "readahead",
  "readahead/@size",
  "ssl",
  "ssl/@verify",
  "identity",
  "identity/@user",
  "identity/@group",
];

/** The paths the builder reads into the command line (provider/qemu/argv.ts). */
export const EXPRESSED_PATHS: ReadonlySet<string> = new Set<string>([
  "/domain",
  "/domain/@type",
  "/domain/name",
  "/domain/uuid",
  "/domain/hwuuid",
  "/domain/memory",
  "/domain/memory/@unit",
  // <memory dumpCore> -> -machine dump-guest-core=
  "/domain/memory/@dumpCore",
  "/domain/vcpu",
  "/domain/vcpu/@current",
  "/domain/os",
  "/domain/os/type",
  "/domain/os/type/@arch",
  "/domain/os/type/@machine",
  "/domain/os/boot",
  "/domain/os/boot/@dev",
  "/domain/os/smbios",
  "/domain/os/smbios/@mode",
  "/domain/os/loader",
  "/domain/os/loader/@type",
  "/domain/os/loader/@readonly",
  "/domain/os/loader/@stateless",
  "/domain/os/loader/@secure",
  "/domain/os/loader/@format", // raw or qcow2 (buildFirmware refuses others)
  "/domain/os/nvram",
  "/domain/os/nvram/@template",
  "/domain/os/nvram/@format", // raw or qcow2 (buildFirmware refuses others)
  "/domain/os/nvram/@templateFormat", // raw or qcow2 (buildFirmware refuses others)
  // firmware autoselection and NVRAM sources (provider/qemu/firmware.ts fillFirmware, argv.ts buildFirmware)
  "/domain/os/@firmware",
  "/domain/os/firmware",
  "/domain/os/firmware/feature",
  "/domain/os/firmware/feature/@enabled",
  "/domain/os/firmware/feature/@name",
  "/domain/os/nvram/@type",
  "/domain/os/nvram/source",
  "/domain/os/nvram/source/@file",
  "/domain/os/nvram/source/@dev",
  ...NETWORK_SOURCE_PATHS.map((a) => `/domain/os/nvram/source/${a}`),
  // SeaBIOS options and extra ACPI tables (provider/qemu/firmware.ts biosRebootTimeout, acpiTableArgs)
  "/domain/os/bios",
  "/domain/os/bios/@rebootTimeout",
  "/domain/os/bios/@useserial", // 'no' only (biosRebootTimeout refuses 'yes')
  "/domain/os/acpi",
  "/domain/os/acpi/table",
  "/domain/os/acpi/table/@type",
  "/domain/os/kernel",
  "/domain/os/initrd",
  "/domain/os/cmdline",
  "/domain/os/dtb",
  "/domain/genid",
  "/domain/maxMemory",
  "/domain/maxMemory/@unit",
  "/domain/maxMemory/@slots",
  "/domain/vcpus",
  "/domain/vcpus/vcpu",
  "/domain/vcpus/vcpu/@id",
  "/domain/vcpus/vcpu/@enabled",
  "/domain/vcpus/vcpu/@hotpluggable",
  "/domain/sysinfo[@type='smbios']",
  "/domain/sysinfo[@type='fwcfg']",
  "/domain/sysinfo/@type",
  "/domain/sysinfo/entry",
  "/domain/sysinfo/entry/@name",
  "/domain/sysinfo/entry/@file",
  "/domain/sysinfo/oemStrings",
  "/domain/sysinfo/oemStrings/entry",
  ...Object.entries(SMBIOS_KEYS).flatMap(([b, keys]) => [
    `/domain/sysinfo/${b}`,
    `/domain/sysinfo/${b}/entry/@name`,
    ...keys.map((n) => `/domain/sysinfo/${b}/entry[@name='${n}']`),
  ]),
  "/domain/cpu",
  "/domain/cpu/@mode",
  "/domain/cpu/model",
  "/domain/cpu/topology",
  ...["sockets", "dies", "clusters", "cores", "threads"].map((a) => `/domain/cpu/topology/@${a}`),
  "/domain/cpu/numa",
  "/domain/cpu/numa/cell",
  ...["id", "cpus", "memory", "unit"].map((a) => `/domain/cpu/numa/cell/@${a}`),
  "/domain/cpu/numa/cell/distances",
  "/domain/cpu/numa/cell/distances/sibling",
  "/domain/cpu/numa/cell/distances/sibling/@id",
  "/domain/cpu/numa/cell/distances/sibling/@value",
  "/domain/features",
  "/domain/features/acpi",
  "/domain/clock",
  "/domain/clock/@offset",
  "/domain/devices",
  "/domain/devices/emulator",
  "/domain/devices/disk",
  "/domain/devices/disk/@type",
  "/domain/devices/disk/@device",
  "/domain/devices/disk/driver",
  "/domain/devices/disk/driver/@name",
  "/domain/devices/disk/driver/@type",
  "/domain/devices/disk/source",
  "/domain/devices/disk/source/@file",
  "/domain/devices/disk/source/@dev",
  "/domain/devices/disk/target",
  "/domain/devices/disk/target/@dev",
  "/domain/devices/disk/target/@bus",
  "/domain/devices/disk/readonly",
  "/domain/devices/disk/serial",
  "/domain/devices/disk/boot",
  "/domain/devices/disk/boot/@order",
  "/domain/devices/interface",
  "/domain/devices/interface/@type",
  "/domain/devices/interface/mac",
  "/domain/devices/interface/mac/@address",
  "/domain/devices/interface/model",
  "/domain/devices/interface/model/@type",
  "/domain/devices/interface/source",
  "/domain/devices/interface/source/@bridge",
  "/domain/devices/interface/target",
  "/domain/devices/interface/target/@dev",
  "/domain/devices/interface/boot",
  "/domain/devices/interface/boot/@order",
  ...["serial", "console", "channel"].flatMap((k) => [
    `/domain/devices/${k}`,
    `/domain/devices/${k}/@type`,
    `/domain/devices/${k}/source`,
    `/domain/devices/${k}/source/@path`,
    `/domain/devices/${k}/target`,
    `/domain/devices/${k}/target/@type`,
    `/domain/devices/${k}/target/@port`,
  ]),
  "/domain/devices/channel/target/@name",
  ...["serial", "channel"].flatMap((k) => [
    `/domain/devices/${k}/source/@mode`,
    `/domain/devices/${k}/source/@host`,
    `/domain/devices/${k}/source/@service`,
    `/domain/devices/${k}/protocol`,
    `/domain/devices/${k}/protocol/@type`,
  ]),
  // chardev family (provider/qemu/chardev.ts): console and parallel sources (tcp, udp, unix modes),
  // UDP's second source, a file's append, the ISA serial model, virtio-serial port addresses,
  // guestfwd targets, and the qemu-vdagent channel's clipboard and mouse
  ...["console", "parallel"].flatMap((k) => [
    `/domain/devices/${k}/source/@mode`,
    `/domain/devices/${k}/source/@host`,
    `/domain/devices/${k}/source/@service`,
    `/domain/devices/${k}/protocol`,
    `/domain/devices/${k}/protocol/@type`,
  ]),
  ...["serial", "console", "parallel"].map((k) => `/domain/devices/${k}/source/@append`),
  "/domain/devices/serial/target/model",
  "/domain/devices/serial/target/model/@name",
  ...["", "/@type", "/@controller", "/@bus", "/@port"].map((a) => `/domain/devices/channel/address${a}`),
  "/domain/devices/channel/target/@address",
  "/domain/devices/channel/source/clipboard",
  "/domain/devices/channel/source/clipboard/@copypaste",
  "/domain/devices/channel/source/mouse",
  "/domain/devices/channel/source/mouse/@mode",
  ...["serial", "console", "channel", "parallel"].flatMap((k) => [
    `/domain/devices/${k}/log`,
    `/domain/devices/${k}/log/@file`,
    `/domain/devices/${k}/log/@append`,
  ]),
  "/domain/devices/channel/source/@channel",
  ...["serial", "console"].flatMap((k) => [
    `/domain/devices/${k}/source/@channel`,
    ...["", "/@type", "/@iobase", "/@irq", "/@domain", "/@bus", "/@slot", "/@function"].map(
      (a) => `/domain/devices/${k}/address${a}`,
    ),
  ]),
  "/domain/devices/graphics",
  "/domain/devices/graphics/@type",
  "/domain/devices/graphics/@port",
  "/domain/devices/graphics/@autoport",
  "/domain/devices/graphics/@listen",
  "/domain/devices/graphics/@passwd",
  "/domain/devices/graphics/@passwdValidTo",
  "/domain/devices/video",
  "/domain/devices/video/model",
  "/domain/devices/video/model/@type",
  "/domain/devices/controller",
  "/domain/devices/controller/@type",
  "/domain/devices/controller/@index",
  "/domain/devices/controller/@model",
  // memory devices: dimm, nvdimm, virtio-mem, virtio-pmem (provider/qemu/memory-devices.ts; sgx-epc refused there;
  // what a model does not take is refused there too)
  ...[
    "",
    "/@model",
    "/@access",
    "/@discard",
    "/source",
    "/source/path",
    "/target",
    "/target/size",
    "/target/size/@unit",
  ].map((a) => `/domain/devices/memory${a}`),
  "/domain/devices/memory/target/address",
  "/domain/devices/memory/target/address/@base",
  ...["", "/@type", "/@domain", "/@bus", "/@slot", "/@function"].map((a) => `/domain/devices/memory/address${a}`),
  "/domain/devices/memory/address/@base",
  ...["nodemask", "pagesize", "pagesize/@unit", "alignsize", "alignsize/@unit", "pmem"].map(
    (a) => `/domain/devices/memory/source/${a}`,
  ),
  ...[
    "node",
    "label",
    "label/size",
    "label/size/@unit",
    "readonly",
    "block",
    "block/@unit",
    "requested",
    "requested/@unit",
    "@dynamicMemslots",
  ].map((a) => `/domain/devices/memory/target/${a}`),
  // NUMA HMAT: -machine hmat=on, initiator=, -numa hmat-lb / hmat-cache (provider/qemu/memory-cpu.ts readHmat)
  ...["", "/@level", "/@associativity", "/@policy", "/size", "/size/@value", "/size/@unit", "/line"].map(
    (a) => `/domain/cpu/numa/cell/cache${a}`,
  ),
  ...["/line/@value", "/line/@unit"].map((a) => `/domain/cpu/numa/cell/cache${a}`),
  "/domain/cpu/numa/interconnects",
  ...["latency", "bandwidth"].flatMap((e) =>
    ["", "/@initiator", "/@target", "/@cache", "/@type", "/@value", "/@unit"].map(
      (a) => `/domain/cpu/numa/interconnects/${e}${a}`,
    ),
  ),
  "/domain/devices/controller[@type='pci']/@model='pci-root'",
  "/domain/devices/controller[@type='pci']/@model='pcie-root'",
  "/domain/devices/input[@bus='ps2']",
  "/domain/devices/input/@type",
  "/domain/devices/input/@bus",
  "/domain/devices/rng",
  "/domain/devices/rng/@model",
  "/domain/devices/memballoon",
  "/domain/devices/memballoon/@model",
  ...["disk", "controller", "interface", "video", "rng", "memballoon"].flatMap((d) =>
    [
      "",
      "/@type",
      "/@domain",
      "/@bus",
      "/@slot",
      "/@function",
      "/@multifunction",
      "/@controller",
      "/@target",
      "/@unit",
    ].map((a) => `/domain/devices/${d}/address${a}`),
  ),
  "/domain/devices/audio",
  "/domain/clock/timer",
  "/domain/features/apic",
  "/domain/features/apic/@eoi",
  "/domain/pm",
  "/domain/pm/suspend-to-mem",
  "/domain/pm/suspend-to-mem/@enabled",
  "/domain/pm/suspend-to-disk",
  "/domain/pm/suspend-to-disk/@enabled",
  "/domain/devices/video/model/@ram",
  "/domain/devices/video/model/@vgamem",
  "/domain/devices/video/model/@vram64",
  ...["", "/@type", "/source", "/source/@path", "/target", "/target/@port"].map((a) => `/domain/devices/parallel${a}`),
  "/domain/cpu/feature",
  "/domain/cpu/feature/@name",
  "/domain/cpu/feature/@policy",
  "/domain/cpu/@migratable",
  ...["name", "tickpolicy", "present", "track"].map((a) => `/domain/clock/timer/@${a}`),
  "/domain/devices/video/model/@vram",
  "/domain/devices/video/model/@heads",
  "/domain/devices/watchdog",
  "/domain/devices/watchdog/@model",
  "/domain/devices/watchdog/@action",
  "/domain/devices/watchdog/address",
  ...["type", "domain", "bus", "slot", "function", "multifunction"].map(
    (a) => `/domain/devices/watchdog/address/@${a}`,
  ),
  "/domain/devices/input[@bus='usb']",
  "/domain/devices/input/address",
  "/domain/devices/input/address/@type",
  "/domain/devices/input/address/@bus",
  "/domain/devices/input/address/@port",
  "/domain/devices/disk/driver/@cache",
  "/domain/os/bootmenu",
  "/domain/os/bootmenu/@enable",
  "/domain/os/bootmenu/@timeout",
  "/domain/devices/graphics/listen",
  "/domain/devices/graphics/listen/@type",
  "/domain/devices/graphics/listen/@address",
  "/domain/devices/rng/backend",
  "/domain/devices/rng/backend/@model",
  "/domain/devices/audio/@id",
  "/domain/devices/audio/@type",
  // ---- audio, sound, graphics other than VNC, video acceleration (provider/qemu/media.ts) ----
  ...["timerPeriod", "tryMMap", "exclusive", "dspPolicy", "serverName", "path", "driver", "runtimeDir"].map(
    (a) => `/domain/devices/audio/@${a}`,
  ),
  ...["input", "output"].flatMap((d) => [
    `/domain/devices/audio/${d}`,
    ...[
      "mixingEngine",
      "fixedSettings",
      "voices",
      "bufferLength",
      "dev",
      "bufferCount",
      "serverName",
      "clientName",
      "connectPorts",
      "exactName",
      "tryPoll",
      "name",
      "streamName",
      "latency",
    ].map((a) => `/domain/devices/audio/${d}/@${a}`),
    `/domain/devices/audio/${d}/settings`,
    ...["frequency", "channels", "format"].map((a) => `/domain/devices/audio/${d}/settings/@${a}`),
  ]),
  "/domain/devices/sound",
  ...["model", "multichannel", "streams"].map((a) => `/domain/devices/sound/@${a}`),
  "/domain/devices/sound/codec",
  "/domain/devices/sound/codec/@type",
  "/domain/devices/sound/audio",
  "/domain/devices/sound/audio/@id",
  "/domain/devices/sound/driver",
  ...["iommu", "ats", "packed"].map((a) => `/domain/devices/sound/driver/@${a}`),
  "/domain/devices/sound/address",
  ...["type", "domain", "bus", "slot", "function", "multifunction", "port"].map(
    (a) => `/domain/devices/sound/address/@${a}`,
  ),
  ...[
    "tlsPort",
    "defaultMode",
    "websocket",
    "sharePolicy",
    "powerControl",
    "display",
    "xauth",
    "fullscreen",
    "address",
    "p2p",
  ].map((a) => `/domain/devices/graphics/@${a}`),
  "/domain/devices/graphics/listen/@socket",
  "/domain/devices/graphics/channel",
  "/domain/devices/graphics/channel/@name",
  "/domain/devices/graphics/channel/@mode",
  ...["image", "jpeg", "zlib", "playback"].flatMap((e) => [
    `/domain/devices/graphics/${e}`,
    `/domain/devices/graphics/${e}/@compression`,
  ]),
  "/domain/devices/graphics/streaming",
  "/domain/devices/graphics/streaming/@mode",
  "/domain/devices/graphics/clipboard",
  "/domain/devices/graphics/clipboard/@copypaste",
  "/domain/devices/graphics/filetransfer",
  "/domain/devices/graphics/filetransfer/@enable",
  "/domain/devices/graphics/mouse",
  "/domain/devices/graphics/mouse/@mode",
  "/domain/devices/graphics/gl",
  "/domain/devices/graphics/gl/@enable",
  "/domain/devices/graphics/gl/@rendernode",
  "/domain/devices/graphics/audio",
  "/domain/devices/graphics/audio/@id",
  "/domain/devices/video/model/acceleration",
  "/domain/devices/video/model/acceleration/@accel3d",
  "/domain/devices/video/model/@blob",
  "/domain/devices/video/model/resolution",
  "/domain/devices/video/model/resolution/@x",
  "/domain/devices/video/model/resolution/@y",
  "/domain/devices/video/driver",
  ...["iommu", "ats", "packed"].map((a) => `/domain/devices/video/driver/@${a}`),
  // ---- end of audio, sound, graphics, video ----
  // ---- input-video family: virtio and evdev inputs, video defaults, ramfb, redirfilter (provider/qemu/input-video.ts) ----
  "/domain/devices/input[@bus='virtio']",
  "/domain/devices/input[@bus='']",
  "/domain/devices/input/@model",
  "/domain/devices/input/source",
  ...["evdev", "dev", "grab", "grabToggle", "repeat"].map((a) => `/domain/devices/input/source/@${a}`),
  "/domain/devices/input/driver",
  ...["iommu", "ats", "packed"].map((a) => `/domain/devices/input/driver/@${a}`),
  ...["domain", "slot", "function", "multifunction"].map((a) => `/domain/devices/input/address/@${a}`),
  "/domain/devices/video/driver/@name",
  "/domain/devices/video/alias",
  "/domain/devices/video/alias/@name",
  "/domain/devices/video/acpi",
  "/domain/devices/video/acpi/@index",
  "/domain/devices/redirfilter",
  "/domain/devices/redirfilter/usbdev",
  ...["class", "vendor", "product", "version", "allow"].map((a) => `/domain/devices/redirfilter/usbdev/@${a}`),
  // ---- end of input-video family ----
  // ---- disks, controllers, filesystems (provider/qemu/storage.ts) ----
  ...["wwn", "vendor", "product", "shareable", "geometry", "blockio"].map((e) => `/domain/devices/disk/${e}`),
  ...["cyls", "heads", "secs", "trans"].map((a) => `/domain/devices/disk/geometry/@${a}`),
  ...["logical_block_size", "physical_block_size", "discard_granularity"].map(
    (a) => `/domain/devices/disk/blockio/@${a}`,
  ),
  "/domain/devices/disk/target/@rotation_rate",
  "/domain/devices/disk/target/@removable",
  ...[
    "error_policy",
    "rerror_policy",
    "io",
    "discard",
    "detect_zeroes",
    "copy_on_read",
    "queues",
    "queue_size",
    "iommu",
    "ats",
    "packed",
    "page_per_vq",
    "discard_no_unref",
  ].map((a) => `/domain/devices/disk/driver/@${a}`),
  "/domain/devices/disk/driver/metadata_cache",
  "/domain/devices/disk/driver/metadata_cache/max_size",
  "/domain/devices/disk/driver/metadata_cache/max_size/@unit",
  "/domain/devices/disk/address/@port",
  // a backing chain, up to 8 layers deep (deeper layers are refused, naming them)
  ...[1, 2, 3, 4, 5, 6, 7, 8].flatMap((depth) => {
    const b = `/domain/devices/disk${"/backingStore".repeat(depth)}`;
    return [
      b,
      `${b}/@type`,
      `${b}/format`,
      `${b}/format/@type`,
      `${b}/format/metadata_cache`,
      `${b}/format/metadata_cache/max_size`,
      `${b}/format/metadata_cache/max_size/@unit`,
      `${b}/source`,
      `${b}/source/@file`,
      `${b}/source/@dev`,
      ...NETWORK_SOURCE_PATHS.map((a) => `${b}/source/${a}`),
    ];
  }),
  ...NETWORK_SOURCE_PATHS.map((a) => `/domain/devices/disk/source/${a}`),
  // ---- r3 storage leftovers (provider/qemu/storage.ts) ----
  // <iotune>: no argument, in libvirt as here: QMP block_set_io_throttle after start (QemuCommand.blockThrottles)
  "/domain/devices/disk/iotune",
  ...["total", "read", "write"]
    .flatMap((k) => ["bytes_sec", "iops_sec"].flatMap((u) => [`${k}_${u}`, `${k}_${u}_max`, `${k}_${u}_max_length`]))
    .map((e) => `/domain/devices/disk/iotune/${e}`),
  ...["size_iops_sec", "group_name"].map((e) => `/domain/devices/disk/iotune/${e}`),
  ...["event_idx", "ioeventfd"].map((a) => `/domain/devices/disk/driver/@${a}`),
  // HTTP(S) cookies of a disk's own source (a backing layer's stay refused): a secret object read from a file
  ...["cookies", "cookies/cookie", "cookies/cookie/@name"].map((e) => `/domain/devices/disk/source/${e}`),
  // virtiofs over the socket of a virtiofsd the user runs (storage.ts buildVirtiofsSocket)
  "/domain/devices/filesystem/source/@socket",
  "/domain/devices/filesystem/driver/@queue",
  // what a missing image does at start (storage.ts checkStartupPolicy; the backend applies it: applyStartupPolicies)
  "/domain/devices/disk/source/@startupPolicy",
  // a host directory as a virtual FAT image (argv.ts fatStorage)
  "/domain/devices/disk/source/@dir",
  // a virtio disk's IOThread, or its queues' IOThreads (storage.ts diskIothreadProps)
  ...["@iothread", "iothreads", "iothreads/iothread", "iothreads/iothread/@id"].map(
    (e) => `/domain/devices/disk/driver/${e}`,
  ),
  ...["iothreads/iothread/queue", "iothreads/iothread/queue/@id"].map((e) => `/domain/devices/disk/driver/${e}`),
  // a virtio-scsi controller's IOThread(s), the same way (storage.ts controllerDriverProps)
  ...["@iothread", "iothreads", "iothreads/iothread", "iothreads/iothread/@id"].map(
    (e) => `/domain/devices/controller/driver/${e}`,
  ),
  ...["iothreads/iothread/queue", "iothreads/iothread/queue/@id"].map((e) => `/domain/devices/controller/driver/${e}`),
  // a disk source's seclabel asking for no relabeling (storage.ts checkDiskSourceSeclabels refuses the others):
  // no argument, in libvirt as here (libvirt's security drivers label files before start)
  ...["seclabel", "seclabel/@model", "seclabel/@relabel", "seclabel/@labelskip"].map(
    (e) => `/domain/devices/disk/source/${e}`,
  ),
  // ---- end of r3 storage leftovers ----

  "/domain/devices/controller/@ports",
  "/domain/devices/controller/@vectors",
  "/domain/devices/controller/driver",
  ...["queues", "cmd_per_lun", "max_sectors", "ioeventfd", "iommu", "ats", "packed", "page_per_vq"].map(
    (a) => `/domain/devices/controller/driver/@${a}`,
  ),
  "/domain/devices/controller/target",
  "/domain/devices/controller/target/@hotplug",
  "/domain/devices/controller[@type='pci']/@model='pcie-root-port'",
  "/domain/devices/controller/model",
  "/domain/devices/controller/model/@name",
  "/domain/devices/controller/target/@chassis",
  "/domain/devices/controller/target/@port",
  "/domain/devices/controller/master",
  "/domain/devices/controller/master/@startport",
  // ---- the PCI bus tree (provider/qemu/controllers.ts) ----
  ...[
    "pci-bridge",
    "dmi-to-pci-bridge",
    "pcie-to-pci-bridge",
    "pcie-switch-upstream-port",
    "pcie-switch-downstream-port",
    "pci-expander-bus",
    "pcie-expander-bus",
  ].map((m) => `/domain/devices/controller[@type='pci']/@model='${m}'`),
  "/domain/devices/controller/target/@chassisNr",
  "/domain/devices/controller/target/@busNr",
  "/domain/devices/controller/target/@memReserve",
  "/domain/devices/controller/target/node",
  "/domain/devices/controller/driver/@iothread",
  "/domain/devices/controller/driver/iothreads",
  "/domain/devices/controller/driver/iothreads/iothread",
  "/domain/devices/controller/driver/iothreads/iothread/@id",
  "/domain/devices/controller/driver/iothreads/iothread/queue",
  "/domain/devices/controller/driver/iothreads/iothread/queue/@id",
  ...[
    "",
    "/@type",
    "/@accessmode",
    "/@multidevs",
    "/@fmode",
    "/@dmode",
    "/driver",
    "/driver/@type",
    "/driver/@wrpolicy",
    "/driver/@iommu",
    "/driver/@ats",
    "/driver/@packed",
    "/driver/@page_per_vq",
    "/source",
    "/source/@dir",
    "/target",
    "/target/@dir",
    "/readonly",
    ...["", "/@type", "/@domain", "/@bus", "/@slot", "/@function", "/@multifunction"].map((a) => `/address${a}`),
  ].map((a) => `/domain/devices/filesystem${a}`),
  "/domain/qemu:commandline",
  "/domain/qemu:commandline/qemu:arg",
  "/domain/qemu:commandline/qemu:arg/@value",
  "/domain/qemu:commandline/qemu:env",
  "/domain/qemu:commandline/qemu:env/@name",
  "/domain/qemu:commandline/qemu:env/@value",
  // hostdev-net family (provider/qemu/hostdev-net.ts): host devices, interface options, small devices
  ...[
    "",
    "/@mode",
    "/@type",
    "/@model",
    "/@display",
    "/@ramfb",
    "/source",
    "/source/@guestReset",
    "/source/address",
    ...["domain", "bus", "slot", "function", "uuid", "device"].map((a) => `/source/address/@${a}`),
    "/driver",
    "/driver/@name",
    "/boot",
    "/boot/@order",
    "/alias",
    "/alias/@name",
  ].map((a) => `/domain/devices/hostdev${a}`),
  ...["hostdev", "interface"].flatMap((d) =>
    ["/rom", "/rom/@bar", "/rom/@file", "/rom/@enabled"].map((a) => `/domain/devices/${d}${a}`),
  ),
  ...["hostdev", "panic", "iommu", "vsock"].flatMap((d) =>
    ["", "/@type", "/@domain", "/@bus", "/@slot", "/@function", "/@multifunction"].map(
      (a) => `/domain/devices/${d}/address${a}`,
    ),
  ),
  "/domain/devices/hostdev/address/@port",
  "/domain/devices/panic/address/@iobase",
  ...["", "/@type", "/address", "/address/@type", "/address/@bus", "/address/@port"].map(
    (a) => `/domain/devices/hub${a}`,
  ),
  ...["", "/@model"].map((a) => `/domain/devices/panic${a}`),
  ...[
    "",
    "/@model",
    "/driver",
    ...["intremap", "caching_mode", "eim", "iotlb", "dma_translation", "aw_bits"].map((a) => `/driver/@${a}`),
  ].map((a) => `/domain/devices/iommu${a}`),
  ...["", "/@model", "/cid", "/cid/@auto", "/cid/@address"].map((a) => `/domain/devices/vsock${a}`),
  ...["", "/@mode", "/certificate", "/database"].map((a) => `/domain/devices/smartcard${a}`),
  ...[
    "/driver",
    "/driver/@name",
    "/driver/@queues",
    "/driver/@txmode",
    "/driver/@ioeventfd",
    "/driver/@event_idx",
    "/driver/@rss",
    "/driver/@rss_hash_report",
    "/driver/@iommu",
    "/driver/@ats",
    "/driver/@packed",
    "/driver/@page_per_vq",
    "/driver/@rx_queue_size",
    "/driver/@tx_queue_size",
    "/driver/host",
    ...["csum", "gso", "tso4", "tso6", "ecn", "ufo", "mrg_rxbuf"].map((a) => `/driver/host/@${a}`),
    "/driver/guest",
    ...["csum", "tso4", "tso6", "ecn", "ufo"].map((a) => `/driver/guest/@${a}`),
    "/script",
    "/script/@path",
    "/downscript",
    "/downscript/@path",
    "/target/@managed",
    "/source/@address",
    "/source/@port",
    "/source/local",
    "/source/local/@address",
    "/source/local/@port",
    "/source/@dev",
    "/source/@type",
    "/source/@path",
    "/source/@mode",
    "/alias",
    "/alias/@name",
    "/teaming",
    "/teaming/@type",
    "/ip",
    "/ip/@address",
    "/ip/@family",
    "/ip/@prefix",
  ].map((a) => `/domain/devices/interface${a}`),
  ...[
    "",
    "/@bus",
    "/@type",
    "/source",
    "/source/@mode",
    "/source/@path",
    "/source/@host",
    "/source/@service",
    "/protocol",
    "/protocol/@type",
    "/boot",
    "/boot/@order",
    "/address",
    "/address/@type",
    "/address/@bus",
    "/address/@port",
  ].map((a) => `/domain/devices/redirdev${a}`),
  ...["/teaming", "/teaming/@type", "/teaming/@persistent"].map((a) => `/domain/devices/hostdev${a}`),
  "/domain/devices/hostdev/source/@protocol",
  "/domain/devices/hostdev/source/@wwpn",
  ...[
    "/@type",
    "/source",
    "/source/@mode",
    "/source/@path",
    "/source/@host",
    "/source/@service",
    "/protocol",
    "/protocol/@type",
    "/address",
    "/address/@type",
    "/address/@controller",
    "/address/@slot",
  ].map((a) => `/domain/devices/smartcard${a}`),
  // TPM family (provider/qemu/tpm.ts): an emulator (swtpm, started by the QEMU-direct backend) or an external swtpm's socket
  "/domain/devices/tpm",
  "/domain/devices/tpm/@model",
  "/domain/devices/tpm/backend",
  "/domain/devices/tpm/backend/@type",
  "/domain/devices/tpm/backend/@version",
  "/domain/devices/tpm/backend/@persistent_state",
  "/domain/devices/tpm/backend/@debug",
  "/domain/devices/tpm/backend/source",
  "/domain/devices/tpm/backend/source/@type",
  "/domain/devices/tpm/backend/source/@path",
  "/domain/devices/tpm/backend/source/@mode",
  "/domain/devices/tpm/backend/active_pcr_banks",
  ...["sha1", "sha256", "sha384", "sha512"].map((b) => `/domain/devices/tpm/backend/active_pcr_banks/${b}`),
  // ---- end of TPM family ----
  // platform family (provider/qemu/platform.ts): features, ACPI tables, SeaBIOS, clock, pcihole64, RNG and balloon options
  ...["vmport", "ps2", "pmu", "vmcoreinfo"].flatMap((f) => [`/domain/features/${f}`, `/domain/features/${f}/@state`]),
  "/domain/features/ioapic",
  "/domain/features/ioapic/@driver",
  "/domain/features/async-teardown",
  "/domain/features/async-teardown/@enabled",
  "/domain/features/tcg",
  "/domain/features/tcg/tb-cache",
  "/domain/features/tcg/tb-cache/@unit",
  "/domain/features/kvm",
  ...["hidden", "hint-dedicated", "poll-control", "pv-ipi", "dirty-ring"].flatMap((f) => [
    `/domain/features/kvm/${f}`,
    `/domain/features/kvm/${f}/@state`,
  ]),
  "/domain/features/kvm/dirty-ring/@size",
  "/domain/cpu/@check", // partial, full: -cpu ...,enforce=on (cpuCheckOptions)
  // no argument: emulatorpin is the CPU affinity QEMU is spawned with, vcpupin/iothreadpin are set
  // on QEMU's threads after start (QemuCommand.cpuAffinity, threadAffinity); the rest is refused (cputunePinning)
  "/domain/cputune",
  ...["emulatorpin", "vcpupin", "iothreadpin"].flatMap((e) => [`/domain/cputune/${e}`, `/domain/cputune/${e}/@cpuset`]),
  "/domain/cputune/vcpupin/@vcpu",
  "/domain/cputune/iothreadpin/@iothread",
  "/domain/os/acpi",
  "/domain/os/acpi/table",
  "/domain/os/acpi/table/@type",
  "/domain/os/bios",
  "/domain/os/bios/@rebootTimeout",
  "/domain/os/bios/@useserial", // 'no' only (biosRebootTimeout refuses 'yes', firmware.ts)
  ...["start", "timezone", "adjustment", "basis"].map((a) => `/domain/clock/@${a}`),
  "/domain/devices/controller/pcihole64",
  "/domain/devices/controller/pcihole64/@unit",
  ...["rng", "memballoon"].flatMap((d) => [
    `/domain/devices/${d}/driver`,
    ...["iommu", "ats", "packed", "page_per_vq"].map((a) => `/domain/devices/${d}/driver/@${a}`),
  ]),
  "/domain/devices/rng/rate",
  "/domain/devices/rng/rate/@bytes",
  "/domain/devices/rng/rate/@period",
  "/domain/devices/rng/backend/@type",
  ...["", "/@mode", "/@path", "/@host", "/@service"].map((a) => `/domain/devices/rng/backend/source${a}`),
  "/domain/devices/rng/backend/protocol",
  "/domain/devices/rng/backend/protocol/@type",
  "/domain/devices/memballoon/@autodeflate", // deflate-on-oom (argv.ts balloonProps)
  "/domain/devices/memballoon/@freePageReporting",
  "/domain/devices/memballoon/stats", // no argument: the polling period, set over QMP after start (QemuCommand.balloonStatsPeriodSeconds)
  "/domain/devices/memballoon/stats/@period",
  // memory and CPU (provider/qemu/memory-cpu.ts)
  "/domain/vcpu/@cpuset", // no argument: the backend spawns QEMU with this CPU affinity (QemuCommand.cpuAffinity)
  "/domain/memoryBacking",
  "/domain/memoryBacking/locked",
  "/domain/memoryBacking/nosharepages",
  "/domain/memoryBacking/source",
  "/domain/memoryBacking/source/@type",
  "/domain/memoryBacking/access",
  "/domain/memoryBacking/access/@mode",
  "/domain/memoryBacking/allocation",
  "/domain/memoryBacking/allocation/@mode",
  "/domain/memoryBacking/allocation/@threads",
  "/domain/memoryBacking/discard",
  "/domain/memoryBacking/hugepages", // needs the host's hugetlbfs mounts (QemuArgvOptions.hugetlbfs)
  "/domain/memoryBacking/hugepages/page",
  "/domain/memoryBacking/hugepages/page/@size",
  "/domain/memoryBacking/hugepages/page/@unit",
  "/domain/memoryBacking/hugepages/page/@nodeset",
  "/domain/cpu/numa/cell/@memAccess",
  "/domain/cpu/numa/cell/@discard",
  "/domain/numatune", // placement='auto' and mode='restrictive' refused by readNumatune (numad, cgroups)
  "/domain/numatune/memory",
  "/domain/numatune/memory/@mode",
  "/domain/numatune/memory/@nodeset",
  "/domain/numatune/memory/@placement",
  "/domain/numatune/memnode",
  "/domain/numatune/memnode/@cellid",
  "/domain/numatune/memnode/@mode",
  "/domain/numatune/memnode/@nodeset",
  "/domain/cpu/cache",
  "/domain/cpu/cache/@mode",
  "/domain/cpu/cache/@level",
  "/domain/cpu/maxphysaddr",
  "/domain/cpu/maxphysaddr/@mode",
  "/domain/cpu/maxphysaddr/@bits",
  "/domain/cpu/maxphysaddr/@limit",
  "/domain/currentMemory", // no argument: the balloon target, set over QMP after start (QemuCommand.balloonTargetBytes)
  "/domain/currentMemory/@unit",
  "/domain/iothreads",
  "/domain/iothreadids",
  "/domain/iothreadids/iothread",
  "/domain/iothreadids/iothread/@id",
  "/domain/features/pvspinlock",
  "/domain/features/pvspinlock/@state",
  "/domain/features/smm",
  "/domain/features/smm/@state",
  "/domain/features/smm/tseg",
  "/domain/features/smm/tseg/@unit",
  "/domain/features/hyperv",
  "/domain/features/hyperv/@mode",
  ...[
    "relaxed",
    "vapic",
    "spinlocks",
    "vpindex",
    "runtime",
    "synic",
    "stimer",
    "reset",
    "vendor_id",
    "frequencies",
    "reenlightenment",
    "tlbflush",
    "ipi",
    "evmcs",
    "avic",
    "emsr_bitmap",
    "xmm_input",
  ].flatMap((f) => [`/domain/features/hyperv/${f}`, `/domain/features/hyperv/${f}/@state`]),
  "/domain/features/hyperv/spinlocks/@retries",
  "/domain/features/hyperv/vendor_id/@value",
  ...["stimer/direct", "tlbflush/direct", "tlbflush/extended"].flatMap((f) => [
    `/domain/features/hyperv/${f}`,
    `/domain/features/hyperv/${f}/@state`,
  ]),
]);

/**
 * What legitimately produces no QEMU argument, in libvirt as in the builder, with the reason.
 * An element listed here is not looked into (its whole content is covered by the reason).
 */
export const NO_ARGV: Readonly<Record<string, string>> = {
  "/domain/@id": "the running domain's id, a libvirt runtime number (status XML), not configuration",
  "/domain/title": "text for humans; libvirt passes it to no process",
  "/domain/description": "text for humans; libvirt passes it to no process",
  "/domain/metadata": "applications' own data, kept in the definition; libvirt passes it to no process",
  "/domain/on_poweroff":
    "what the manager does when the guest powers off, libvirt's lifecycle policy run on QEMU's SHUTDOWN event (libvirt's -no-shutdown only keeps QEMU alive to see it)",
  "/domain/on_crash":
    "what the manager does when the guest crashes, libvirt's lifecycle policy run on QEMU's GUEST_PANICKED event; no QEMU argument",
  // hostdev-net family (provider/qemu/hostdev-net.ts)
  "/domain/devices/hostdev/@managed":
    "whether libvirt rebinds the host device to vfio-pci before start and back after (host set-up, no QEMU argument); the QEMU-direct backend expects the device already bound to vfio-pci, and QEMU says so at start when it is not",
  "/domain/devices/hostdev/driver/@model":
    "the host driver libvirt binds the device to (vfio-pci or a variant such as vfio-pci-igb), host set-up; QEMU is given vfio-pci either way",
  "/domain/devices/hostdev/shareable":
    "a SCSI host device shared with other domains: libvirt's own bookkeeping of host devices (no QEMU argument)",
  ...Object.fromEntries(
    ["/source/@index", ...[1, 2, 3, 4, 5, 6, 7, 8].map((n) => `${"/backingStore".repeat(n)}/@index`)].map((p) => [
      `/domain/devices/disk${p}`,
      "libvirt's number for one layer of a disk's backing chain, by which its block jobs name the layer (vda[2]); no argument, in libvirt as here",
    ]),
  ),
  "/domain/devices/disk/mirror":
    "the state of a block copy or commit job libvirt runs on a live domain (its status XML); libvirt starts no job and passes no argument for it at start, nor does the builder",
  "/domain/devices/disk/target/@tray":
    "the tray of a removable drive (open or closed) is runtime state libvirt records; it passes no argument for it at start, and QEMU starts with the tray closed, in libvirt as here",
  // chardev family (provider/qemu/chardev.ts)
  "/domain/devices/channel/target/@state":
    "whether the guest agent has the channel open: runtime state libvirt records from QEMU's VSERPORT_CHANGE events (its status XML); no QEMU argument, in libvirt as here",
  // platform family (provider/qemu/platform.ts)
  "/domain/clock/timer/catchup":
    "the catch-up tuning of a timer with tickpolicy='catchup' (threshold, slew, limit): libvirt's QEMU driver passes nothing for it (QEMU has no such settings; the tick policy itself is -rtc driftfix=slew)",
  "/domain/cpu/model/@fallback":
    "whether libvirt may pick a CPU model other than the one written when checking the host before start (qemuProcessUpdateGuestCPU); the command line carries the model itself either way",
  // memory family (provider/qemu/memory-devices.ts)
  "/domain/idmap":
    "the user namespace maps of a container: libvirt's LXC driver applies them (lxcContainerSetID, virLXCControllerSetupUserns); its QEMU driver reads them nowhere, passes no argument and applies nothing, as the QEMU-direct backend",
};

/**
 * Values equal to what the builder does anyway (libvirt's documented defaults), keyed by path:
 * stated explicitly they ask for nothing more. The value is the attribute value (for an element,
 * the element is passed and the value is empty).
 */
export const DEFAULT_VALUED: Readonly<Record<string, (el: XmlElement, value: string, parent: XmlElement) => boolean>> =
  {
    "/domain/vcpu/@placement": (_, v) => v === "static",
    "/domain/on_reboot": (el) => ["restart", "destroy"].includes(textContent(el)?.trim() ?? ""),
    "/domain/cpu/@match": (_, v) => v === "exact",
    "/domain/cpu/@check": (_, v) => v === "none",
    "/domain/devices/memballoon/@autodeflate": (_, v) => v === "off",
    // QEMU's x86 CPU models have the PAE on; libvirt writes no argument for a bare <pae/>
    "/domain/features/pae": (el) => el.attrs.length === 0 && childElements(el).length === 0,
    "/domain/currentMemory": (el, _, domain) => currentMemoryIsMemory(el, domain),
    "/domain/currentMemory/@unit": () => true,
    "/domain/devices/video/model/@primary": (_, v) => v === "yes" || v === "no",
    // hostdev-net family: an interface link that is up, QEMU's default (down is refused by the builder)
    "/domain/devices/interface/link": (el) => getAttr(el, "state") === "up" && el.attrs.length === 1,
    // chardev family: a character device without TLS, what the builder makes (TLS is refused)
    ...Object.fromEntries(
      ["serial", "console", "channel", "parallel"].map((k) => [
        `/domain/devices/${k}/source/@tls`,
        (_: XmlElement, v: string) => v === "no",
      ]),
    ),
    // a lone <seclabel type='none'> (model none or dac, or unstated) asks for no confinement, which is
    // what the QEMU-direct backend does: it applies no SELinux/AppArmor/DAC labels, and libvirt writes no QEMU
    // argument for it either. Dynamic/static labels, relabel/labelskip and several seclabels need libvirt's
    // security drivers and stay refused.
    "/domain/seclabel": (el, _, domain) =>
      childElements(domain, "seclabel").length === 1 &&
      childElements(el).length === 0 &&
      getAttr(el, "type") === "none" &&
      el.attrs.every((a) => a.name === "type" || (a.name === "model" && ["none", "dac"].includes(a.value))),
  };

/** `<currentMemory>` equal to `<memory>` sets no balloon target (libvirt sets one only below). */
function currentMemoryIsMemory(cur: XmlElement, domain: XmlElement): boolean {
  const kib = (el: XmlElement | undefined) => {
    if (!el) return undefined;
    try {
      return toKiB(textContent(el) ?? "", getAttr(el, "unit"), `/domain/${el.name}`);
    } catch {
      return undefined;
    }
  };
  const c = kib(cur);
  return c !== undefined && c === kib(firstChild(domain, "memory"));
}

/** The QEMU driver's namespace: its elements count by URI, whatever their prefix (as libvirt reads them). */
const QEMU_NS_URI = "http://libvirt.org/schemas/domain/qemu/1.0";

function withNs(el: XmlElement, scope: ReadonlyMap<string, string>): Map<string, string> {
  const m = new Map(scope);
  for (const a of el.attrs)
    if (a.name === "xmlns" || a.name.startsWith("xmlns:")) m.set(a.name === "xmlns" ? "" : a.name.slice(6), a.value);
  return m;
}

/** `qemu:LOCAL` for an element of the QEMU namespace under any prefix, else its name. */
function nameByUri(el: XmlElement, scope: ReadonlyMap<string, string>): string {
  const i = el.name.indexOf(":");
  const local = i < 0 ? el.name : el.name.slice(i + 1);
  return withNs(el, scope).get(i < 0 ? "" : el.name.slice(0, i)) === QEMU_NS_URI ? `qemu:${local}` : el.name;
}

/** The path of an element, qualified where the builder decides on an attribute. */
function qualified(p: string, el: XmlElement): string {
  if (p === "/domain/sysinfo") return `${p}[@type='${getAttr(el, "type") ?? ""}']`;
  if (/^\/domain\/sysinfo\/(system|bios|baseBoard|chassis)\/entry$/.test(p))
    return `${p}[@name='${getAttr(el, "name") ?? ""}']`;
  if (p === "/domain/devices/input") return `${p}[@bus='${getAttr(el, "bus") ?? ""}']`;
  return p;
}

/** One path of a definition the builder neither expresses nor lists as producing no argument. */
export interface UnexpressedPath {
  /** The table path (no positions), e.g. `/domain/devices/disk/driver/@cache`. */
  readonly path: string;
  /** The same with positions, e.g. `/domain/devices/disk[2]/driver/@cache`. */
  readonly at: string;
  /** The attribute value, or the element name. */
  readonly value: string;
  /** What the builder expresses at that place (the parent's expressed children). */
  readonly expressedHere: string[];
}

function expressedChildren(parent: string): string[] {
  const out = new Set<string>();
  for (const p of [...EXPRESSED_PATHS, ...Object.keys(NO_ARGV)]) {
    if (!p.startsWith(`${parent}/`)) continue;
    const rest = p.slice(parent.length + 1);
    if (!rest.includes("/") || /^@[^/]+$/.test(rest)) out.add(rest.replace(/\[.*$/, "").replace(/='.*$/, ""));
  }
  return [...out];
}

/**
 * Every path of the definition that is neither expressed, nor without QEMU argument, nor a
 * default, reported at its top-most unexpressed element or attribute, in document order.
 */
export function unexpressedPaths(def: DomainDef): UnexpressedPath[] {
  const out: UnexpressedPath[] = [];
  walk(def.root, "/domain", "/domain", new Map(), out);
  return out;
}

function walk(el: XmlElement, p: string, at: string, scope: ReadonlyMap<string, string>, out: UnexpressedPath[]): void {
  const inner = withNs(el, scope);
  for (const a of el.attrs) {
    if (a.name === "xmlns" || a.name.startsWith("xmlns:")) continue;
    if (p === "/domain/devices/controller" && a.name === "model" && getAttr(el, "type") === "pci") {
      const q = `${p}[@type='pci']/@model='${a.value}'`;
      if (!EXPRESSED_PATHS.has(q))
        out.push({
          path: q,
          at: `${at}/@model`,
          value: a.value,
          expressedHere: [...EXPRESSED_PATHS].flatMap(
            (e) => /controller\[@type='pci'\]\/@model='(.*)'$/.exec(e)?.[1] ?? [],
          ),
        });
      continue;
    }
    const ap = `${p}/@${a.name}`;
    if (EXPRESSED_PATHS.has(ap) || ap in NO_ARGV || DEFAULT_VALUED[ap]?.(el, a.value, el)) continue;
    out.push({ path: ap, at: `${at}/@${a.name}`, value: a.value, expressedHere: expressedChildren(p) });
  }
  const seen: Record<string, number> = {};
  const children = childElements(el);
  for (const c of children) {
    const cp = `${p}/${nameByUri(c, inner)}`;
    const n = (seen[c.name] = (seen[c.name] ?? 0) + 1);
    // positions as the builder writes them: every device, and any element that has namesakes
    const indexed = p === "/domain/devices" || children.filter((x) => x.name === c.name).length > 1;
    const cat = indexed ? `${at}/${c.name}[${n}]` : `${at}/${c.name}`;
    if (cp in NO_ARGV || DEFAULT_VALUED[cp]?.(c, "", el)) continue;
    const q = qualified(cp, c);
    if (!EXPRESSED_PATHS.has(q)) {
      out.push({ path: q, at: cat, value: c.name, expressedHere: expressedChildren(p) });
      continue;
    }
    walk(c, cp, cat, inner, out);
  }
}

/**
 * Refuses the first path of the definition the builder does not express (see the tables above):
 * a {@link DomainXmlError} naming it, its value, what is built at that place, and the fix.
 */
export function checkExpressedPaths(def: DomainDef): void {
  const [first] = unexpressedPaths(def);
  if (!first) return;
  throw new DomainXmlError("not built on the QEMU command line without libvirt", {
    path: first.at,
    value: first.value,
    category: "unsupported configuration",
    allowed: first.expressedHere.length
      ? `what the QEMU-direct backend builds here: ${first.expressedHere.join(", ")}`
      : undefined,
    fix: `remove ${first.path.replace(/^.*\//, "")} from the definition, or apply the domain through libvirt`,
  });
}
