/**
 * Host devices, network interface options and small devices of the QEMU command line (issue 12,
 * family "hostdev-net"): what libvirt's `qemuBuildHostdevCommandLine`, `qemuBuildNicDevProps`,
 * `qemuBuildHostNetProps`, `qemuBuildPanicCommandLine`, `qemuBuildIOMMUCommandLine`,
 * `qemuBuildVsockCommandLine`, `qemuBuildHubCommandLine` and `qemuBuildSmartcardCommandLine`
 * (src/qemu/qemu_command.c) write, for the forms QEMU can do alone:
 *
 * - `<hostdev type='pci'>` as `-device vfio-pci,host=DDDD:BB:SS.F` (the device must already be
 *   bound to vfio-pci: libvirt's `managed='yes'` rebinding is host set-up it does before start),
 *   `type='mdev' model='vfio-pci'` as `vfio-pci,sysfsdev=/sys/bus/mdev/devices/UUID`,
 *   `type='usb'` by bus/device as `usb-host,hostdevice=/dev/bus/usb/BBB/DDD`. SCSI host devices
 *   are refused: libvirt finds the `/dev/sgN` of an adapter/address in sysfs (a host probe) or
 *   logs in to iSCSI with its secrets; vhost-scsi and USB by vendor/product too (host probes);
 * - `<interface>` `<driver>` options of virtio-net (queues, txmode, offloads, queue sizes, RSS,
 *   virtio options), `<rom>`, `<script>`, `<link state='up'>`, and the `mcast`, `udp`,
 *   `server` and `client` socket back-ends; `ethernet` is a tap QEMU opens by name (libvirt
 *   creates it and passes its fd);
 * - `<panic model='isa'|'pvpanic'>`, `<iommu model='intel'|'virtio'>` on q35, `<vsock>` with a
 *   fixed CID, `<hub type='usb'>` and `<smartcard mode='host'|'host-certificates'>`.
 *
 * Pure: no I/O.
 */
import { XmlElement, childElements, firstChild, getAttr, textContent } from "../xml/tree";
import { DomainXmlError } from "../xml/errors";
import { DeviceElements, chardevBackend, pciAddressProps, qemuOptEscape, unsupported, xmlWholeNumber } from "./argv";
import { libvirtUint } from "./controllers";
import { redirFilter } from "./input-video";

type Add = (...a: string[]) => void;

/** A hex or decimal number as libvirt reads PCI source addresses (base 0). */
function hostNumber(path: string, value: string | undefined, max: number): number {
  const n = libvirtUint(value);
  if (!Number.isSafeInteger(n) || n < 0 || n > max)
    throw new DomainXmlError("invalid host device address", {
      path,
      value: value ?? "",
      allowed: `a number from 0 to ${max} (hex 0x.. or decimal)`,
      fix: "write the host's address, e.g. <address domain='0x0000' bus='0x06' slot='0x12' function='0x5'/>",
    });
  return n;
}

const hex = (n: number, w: number) => n.toString(16).padStart(w, "0");

/** A hostdev that takes a PCI slot: a PCI device or a vfio-pci mediated device. */
function takesPciSlot(el: XmlElement): boolean {
  const type = getAttr(el, "type");
  return (
    getAttr(el, "mode") !== "capabilities" &&
    (type === "pci" || type === "scsi_host" || (type === "mdev" && getAttr(el, "model") === "vfio-pci"))
  );
}

/**
 * The `<hostdev>` elements that get a PCI slot when written without an address, in libvirt's
 * order (qemuDomainAssignDevicePCISlots: after the virtio disks, before the balloon).
 */
export function hostdevsNeedingSlots(devs: DeviceElements): XmlElement[] {
  return devs.of("hostdev").filter((el) => takesPciSlot(el) && !firstChild(el, "address"));
}

/** The user alias (`<alias name='ua-...'>`) libvirt uses as the QEMU id, or the default. */
function deviceId(el: XmlElement, fallback: string): string {
  const alias = getAttr(firstChild(el, "alias"), "name");
  return alias !== undefined && alias.startsWith("ua-") ? alias : fallback;
}

/** `<teaming type='transient' persistent='ua-...'>` of a PCI host device: its failover pair (a virtio interface's alias). */
function hostdevTeaming(el: XmlElement, path: string, devs: DeviceElements): Record<string, unknown> {
  const t = firstChild(el, "teaming");
  if (!t) return {};
  const type = getAttr(t, "type");
  const pair = getAttr(t, "persistent");
  if (type !== "transient" || !pair)
    throw unsupported(
      `${path}/teaming`,
      type,
      "write <teaming type='transient' persistent='ua-ALIAS'/> naming a virtio interface's alias",
    );
  const partner = devs
    .of("interface")
    .find(
      (n) =>
        getAttr(firstChild(n, "alias"), "name") === pair && getAttr(firstChild(n, "teaming"), "type") === "persistent",
    );
  if (!partner)
    throw new DomainXmlError("no persistent interface of the team", {
      path: `${path}/teaming/@persistent`,
      value: pair,
      fix: "name the alias of an <interface> with <teaming type='persistent'/>",
    });
  return { failover_pair_id: pair };
}

/** `<rom bar= file= enabled=>` as libvirt writes it on a PCI device (rombar, romfile). */
function romProps(el: XmlElement, path: string): Record<string, unknown> {
  const rom = firstChild(el, "rom");
  if (!rom) return {};
  const p: Record<string, unknown> = {};
  const enabled = getAttr(rom, "enabled");
  if (enabled !== undefined && enabled !== "yes" && enabled !== "no")
    throw unsupported(`${path}/rom/@enabled`, enabled, "write enabled='yes' or 'no'");
  if (enabled === "no") return { romfile: "" };
  const bar = getAttr(rom, "bar");
  if (bar === "on") p.rombar = 1;
  else if (bar === "off") p.rombar = 0;
  else if (bar !== undefined) throw unsupported(`${path}/rom/@bar`, bar, "write bar='on' or 'off'");
  const file = getAttr(rom, "file");
  if (file !== undefined) p.romfile = file;
  return p;
}

/** A `<boot order>` of a device as a QEMU bootindex. */
function bootProps(el: XmlElement, path: string): Record<string, unknown> {
  const order = getAttr(firstChild(el, "boot"), "order");
  return order === undefined
    ? {}
    : { bootindex: xmlWholeNumber(`${path}/boot/@order`, order, 1, 65535, "write e.g. <boot order='1'/>") };
}

/** Whether any `<hostdev>` states a `<boot order>` (then no disk gets a boot index from `<os><boot>`). */
export function hostdevsHaveBootOrder(devs: DeviceElements): boolean {
  return [...devs.of("hostdev"), ...devs.of("redirdev")].some((el) => firstChild(el, "boot") !== undefined);
}

/**
 * `<redirdev bus='usb'>`: a character device (tcp, unix, or SPICE's `spicevmc` channel with SPICE
 * graphics) and a `usb-redir` on the next USB port, as libvirt writes them (qemuBuildRedirdevCommandLine).
 */
export function buildRedirdevs(add: Add, devs: DeviceElements): void {
  const ports = usbPorts(devs);
  const spice = devs.of("graphics").some((g) => getAttr(g, "type") === "spice");
  const filter = redirFilter((n) => devs.of(n)); // provider/qemu/input-video.ts
  devs.of("redirdev").forEach((el, i) => {
    const path = `/domain/devices/redirdev[${i + 1}]`;
    const bus = getAttr(el, "bus");
    if (bus !== "usb") throw unsupported(`${path}/@bus`, bus, "write bus='usb'");
    const type = getAttr(el, "type");
    const id = `charredir${i}`;
    if (type === "spicevmc") {
      if (!spice)
        throw unsupported(
          `${path}/@type`,
          type,
          "a spicevmc channel needs <graphics type='spice'>: add it, or use a tcp or unix source",
        );
      add("-chardev", `spicevmc,id=${id},name=usbredir`);
    } else if (type === "tcp" || type === "unix")
      add("-chardev", chardevBackend(type, id, getAttr(firstChild(el, "source"), "path"), path, el));
    else throw unsupported(`${path}/@type`, type, "write type='tcp', 'unix' or 'spicevmc'");
    add(
      "-device",
      JSON.stringify({
        driver: "usb-redir",
        chardev: id,
        id: `redir${i}`,
        ...(filter === undefined ? {} : { filter }),
        ...bootProps(el, path),
        bus: "usb.0",
        port: ports.get(el),
      }),
    );
  });
}

/**
 * The root-hub ports of USB bus 0: 2 on the PIIX3 UHCI, an xHCI's written `ports` (else 15), 6 on
 * other models (15 for the qemu-xhci libvirt adds to a q35 without one), 0 with `model='none'`.
 */
export function usbRootPorts(devs: DeviceElements): number | undefined {
  const usb = devs.of("controller").filter((c) => getAttr(c, "type") === "usb" && (getAttr(c, "index") ?? "0") === "0");
  const model = usb.length ? getAttr(usb[0], "model") : devs.rootBus === "pci.0" ? "piix3-uhci" : undefined;
  if (model === "none") return 0;
  // no USB controller on q35: the qemu-xhci libvirt adds (argv.ts buildControllers)
  if (usb.length === 0 && devs.rootBus === "pcie.0") return 15;
  if (model === undefined || model === "piix3-uhci") return 2;
  if (model !== "qemu-xhci" && model !== "nec-xhci") return 6;
  // an xHCI's written ports (built as p2/p3, storage.ts usbControllerProps) are its root ports, as libvirt counts them
  const ports = getAttr(usb[0], "ports");
  return ports !== undefined && /^[1-9][0-9]*$/.test(ports) ? Math.min(Number(ports), 15) : 15;
}

/**
 * The USB root-hub ports libvirt gives the devices of this family, in its order
 * (virDomainUSBDeviceDefForeach: hubs, host devices, then the CCID controller of smartcards;
 * USB input devices come after them, see {@link usbPortsBeforeInputs}). A written
 * `<address type='usb' bus='0' port='N'>` keeps its port; others get the lowest free one.
 */
function usbPorts(devs: DeviceElements): Map<XmlElement, string> {
  const m = new Map<XmlElement, string>();
  const users: { el: XmlElement; path: string }[] = [];
  devs.of("hub").forEach((el, i) => users.push({ el, path: `/domain/devices/hub[${i + 1}]` }));
  devs
    .of("hostdev")
    .forEach((el, i) => getAttr(el, "type") === "usb" && users.push({ el, path: `/domain/devices/hostdev[${i + 1}]` }));
  const ccid = ccidReader(devs);
  if (ccid) users.push(ccid);
  const redirs = devs.of("redirdev").map((el, i) => ({ el, path: `/domain/devices/redirdev[${i + 1}]` }));
  if (users.length === 0 && redirs.length === 0) return m;
  const ports = usbRootPorts(devs);
  if (ports === 0)
    throw unsupported(
      users[0]!.path,
      users[0]!.el.name,
      "USB is disabled (controller model='none'): remove the device or add a USB controller",
    );
  const used = new Set<string>();
  const hubPorts = new Set<string>();
  // USB inputs are numbered by buildInputs, after these; their written ports are taken here too
  const inputs = devs
    .of("input")
    .flatMap((el, i) => (getAttr(el, "bus") === "usb" ? [{ el, path: `/domain/devices/input[${i + 1}]` }] : []));
  for (const { el, path } of [...users, ...inputs, ...redirs]) {
    const a = firstChild(el, "address");
    // an address without a port is no address (libvirt assigns one: usb-port-missing)
    const portless = getAttr(a, "type") === "usb" && (getAttr(a, "bus") ?? "0") === "0" && !getAttr(a, "port");
    if (!a || el.name === "smartcard" || portless) continue;
    if (getAttr(a, "type") !== "usb" || (getAttr(a, "bus") ?? "0") !== "0")
      throw unsupported(`${path}/address`, getAttr(a, "type"), "write <address type='usb' bus='0' port='N'/> or none");
    const port = getAttr(a, "port") ?? "";
    if (!/^[1-9][0-9]*(\.[1-9][0-9]*){0,3}$/.test(port))
      throw unsupported(
        `${path}/address/@port`,
        port,
        "write a port on the root hub, e.g. port='1', or behind a hub, e.g. port='1.2' (at most 4 levels, as libvirt)",
      );
    const parent = port.includes(".") ? port.slice(0, port.lastIndexOf(".")) : undefined;
    if (parent !== undefined && !hubPorts.has(parent))
      throw new DomainXmlError(`there is no hub at port ${parent}`, {
        path: `${path}/address/@port`,
        value: port,
        fix: `add <hub type='usb'> at port '${parent}' before this device, or use a port on the root hub`,
      });
    const [root, ...below] = port.split(".").map(Number);
    if ((ports !== undefined && root! > ports) || below.some((p) => p > 8))
      throw new DomainXmlError(`requested USB port ${port} not present on USB bus 0`, {
        path: `${path}/address/@port`,
        value: port,
        allowed: `root ports 1 to ${ports ?? "the controller's count"}, hub ports 1 to 8`,
        fix: "write a port the controller or hub has, or no address",
      });
    if (el.name === "hub") hubPorts.add(port);
    if (used.has(port))
      throw new DomainXmlError("duplicate USB address", {
        path: `${path}/address/@port`,
        value: port,
        allowed: "one device a port",
        fix: "give each USB device its own port, or write no address",
      });
    used.add(port);
    m.set(el, port);
  }
  const rootPort = (p: string) => Number(p.split(".")[0]);
  let next = 1;
  const assign = ({ el, path }: { el: XmlElement; path: string }) => {
    if (m.has(el)) return;
    while (used.has(String(next))) next++;
    if (ports !== undefined && next > ports)
      throw unsupported(
        path,
        el.name,
        `the USB controller has ${ports} ports: use fewer USB devices, a qemu-xhci controller, or libvirt (it adds hubs)`,
      );
    used.add(String(next));
    m.set(el, String(next));
  };
  users.forEach(assign);
  // USB inputs as buildInputs numbers them (after the highest port above), then redirected devices
  let port = Math.max(0, ...users.map((u) => rootPort(m.get(u.el) ?? "0")));
  for (const { el } of inputs) {
    const written = m.get(el);
    if (written !== undefined) port = Math.max(port, rootPort(written));
    else {
      m.set(el, String(++port));
      used.add(String(port));
    }
  }
  redirs.forEach(assign);
  return m;
}

/**
 * The USB CCID reader of the smartcards: a written `<controller type='ccid'>` (index 0, the only one
 * built), else the one libvirt adds for a `<smartcard>`; keyed by that element for its USB port.
 */
function ccidReader(devs: DeviceElements): { el: XmlElement; path: string } | undefined {
  const controllers = devs.of("controller");
  const i = controllers.findIndex((c) => getAttr(c, "type") === "ccid");
  if (i >= 0) {
    const path = `/domain/devices/controller[${i + 1}]`;
    const c = controllers[i]!;
    if ((getAttr(c, "index") ?? "0") !== "0" || controllers.filter((x) => getAttr(x, "type") === "ccid").length > 1)
      throw unsupported(`${path}/@index`, getAttr(c, "index"), "one CCID controller (index='0') is built");
    return { el: c, path };
  }
  const [card] = devs.of("smartcard");
  return card ? { el: card, path: "/domain/devices/smartcard[1]" } : undefined;
}

/** The highest root-hub port this family's USB devices take: USB inputs are numbered after it. */
export function usbPortsBeforeInputs(devs: DeviceElements): number {
  const before = [...usbPorts(devs)].filter(([el]) => el.name !== "input" && el.name !== "redirdev");
  return Math.max(0, ...before.map(([, p]) => Number(p.split(".")[0])));
}

/** `<hub type='usb'>` as `-device usb-hub` (libvirt's qemuBuildHubCommandLine). */
export function buildHubs(add: Add, devs: DeviceElements): void {
  const ports = usbPorts(devs);
  devs.of("hub").forEach((el, i) => {
    const path = `/domain/devices/hub[${i + 1}]`;
    const type = getAttr(el, "type");
    if (type !== "usb") throw unsupported(`${path}/@type`, type, "write <hub type='usb'/>");
    add("-device", JSON.stringify({ driver: "usb-hub", id: `hub${i}`, bus: "usb.0", port: ports.get(el) }));
  });
}

/**
 * `<hostdev>`: PCI (vfio-pci), vfio-pci mediated devices and USB by bus/device, as libvirt
 * writes them; the rest is refused naming it and why.
 */
export function buildHostdevs(add: Add, devs: DeviceElements): void {
  const ports = usbPorts(devs);
  const hostdevs = devs.of("hostdev");
  const seen = new Set<string>();
  const graphics = devs.of("graphics").length > 0;
  let ramfb = 0;
  hostdevs.forEach((el, i) => {
    const path = `/domain/devices/hostdev[${i + 1}]`;
    const mode = getAttr(el, "mode") ?? "subsystem";
    const type = getAttr(el, "type");
    if (mode !== "subsystem")
      throw unsupported(
        `${path}/@mode`,
        mode,
        "host block/char devices (mode='capabilities') need libvirt: apply through libvirt",
      );
    const source = firstChild(el, "source");
    const sa = source && firstChild(source, "address");
    const id = deviceId(el, `hostdev${i}`);
    const dup = (key: string) => {
      if (seen.has(key))
        throw new DomainXmlError("Hostdev already exists in the domain configuration", {
          path: `${path}/source`,
          value: key,
          allowed: "each host device once",
          fix: "remove the duplicate <hostdev>",
        });
      seen.add(key);
    };
    const display = getAttr(el, "display");
    const rf = getAttr(el, "ramfb");
    if (display !== undefined && display !== "on" && display !== "off")
      throw unsupported(`${path}/@display`, display, "write display='on' or 'off'");
    if (rf !== undefined && rf !== "on" && rf !== "off")
      throw unsupported(`${path}/@ramfb`, rf, "write ramfb='on' or 'off'");
    if (display === "on" && !graphics)
      throw new DomainXmlError("graphics device is needed for attribute value 'display=on' in <hostdev>", {
        path: `${path}/@display`,
        value: display,
        fix: "add a <graphics> device, or write display='off'",
      });
    if (rf === "on" && ++ramfb > 1)
      throw new DomainXmlError("Only one vgpu device can have 'ramfb' enabled", {
        path: `${path}/@ramfb`,
        value: rf,
        fix: "write ramfb='on' on one host device only",
      });
    const displayProps = (dflt: string | undefined): Record<string, unknown> => {
      const p: Record<string, unknown> = {};
      const d = display ?? dflt;
      if (d !== undefined) p.display = d;
      if (rf === "on") p.ramfb = true;
      return p;
    };
    if (type === "pci") {
      if (!sa)
        throw unsupported(
          `${path}/source/address`,
          undefined,
          "write the host PCI address in <source><address .../></source>",
        );
      const drv = firstChild(el, "driver");
      const dn = getAttr(drv, "name");
      if (dn !== undefined && dn !== "vfio")
        throw unsupported(`${path}/driver/@name`, dn, "PCI passthrough is vfio: write <driver name='vfio'/> or none");
      const host = `${hex(hostNumber(`${path}/source/address/@domain`, getAttr(sa, "domain") ?? "0", 0xffff), 4)}:${hex(
        hostNumber(`${path}/source/address/@bus`, getAttr(sa, "bus"), 0xff),
        2,
      )}:${hex(hostNumber(`${path}/source/address/@slot`, getAttr(sa, "slot"), 0x1f), 2)}.${hostNumber(
        `${path}/source/address/@function`,
        getAttr(sa, "function"),
        7,
      )}`;
      dup(`pci ${host}`);
      if (getAttr(firstChild(el, "address"), "type") === "unassigned") return;
      add(
        "-device",
        JSON.stringify({
          driver: rf === "on" ? "vfio-pci-nohotplug" : "vfio-pci",
          host,
          id,
          ...hostdevTeaming(el, path, devs),
          ...displayProps(undefined),
          ...bootProps(el, path),
          ...pciAddressProps(el, path, devs),
          ...romProps(el, path),
        }),
      );
      return;
    }
    if (type === "mdev") {
      const model = getAttr(el, "model");
      if (model !== "vfio-pci")
        throw unsupported(
          `${path}/@model`,
          model,
          "mediated devices of model vfio-pci are built; vfio-ccw and vfio-ap need s390",
        );
      const uuid = getAttr(sa, "uuid");
      if (!uuid)
        throw new DomainXmlError("Missing 'uuid' attribute for element <address>", {
          path: `${path}/source/address/@uuid`,
          fix: "write <source><address uuid='...'/></source> with the mediated device's UUID",
        });
      dup(`mdev ${uuid.toLowerCase()}`);
      const a = firstChild(el, "address");
      if (a && getAttr(a, "type") !== "pci")
        throw new DomainXmlError(
          `Unsupported address type '${getAttr(a, "type") ?? ""}' with mediated device model 'vfio-pci'`,
          {
            path: `${path}/address/@type`,
            value: getAttr(a, "type"),
            fix: "write a PCI address (type='pci') or none",
          },
        );
      add(
        "-device",
        JSON.stringify({
          driver: rf === "on" ? "vfio-pci-nohotplug" : "vfio-pci",
          id,
          sysfsdev: `/sys/bus/mdev/devices/${uuid}`,
          ...displayProps("off"),
          ...bootProps(el, path),
          ...pciAddressProps(el, path, devs),
        }),
      );
      return;
    }
    if (type === "usb") {
      const vendor = source && firstChild(source, "vendor");
      if (vendor || !sa)
        throw unsupported(
          `${path}/source`,
          undefined,
          "a USB device found by vendor/product needs libvirt's host search: write <address bus='N' device='M'/> instead",
        );
      const bus = xmlWholeNumber(`${path}/source/address/@bus`, getAttr(sa, "bus"), 0, 999, "write e.g. bus='14'");
      const dev = xmlWholeNumber(
        `${path}/source/address/@device`,
        getAttr(sa, "device"),
        0,
        999,
        "write e.g. device='6'",
      );
      const hostdevice = `/dev/bus/usb/${String(bus).padStart(3, "0")}/${String(dev).padStart(3, "0")}`;
      dup(`usb ${hostdevice}`);
      const props: Record<string, unknown> = { driver: "usb-host", hostdevice, id };
      const reset = getAttr(source, "guestReset");
      if (reset === "off") props["guest-reset"] = false;
      else if (reset === "uninitialized") {
        props["guest-reset"] = true;
        props["guest-resets-all"] = false;
      } else if (reset === "on") {
        props["guest-reset"] = true;
        props["guest-resets-all"] = true;
      } else if (reset !== undefined && reset !== "default")
        throw unsupported(`${path}/source/@guestReset`, reset, "write guestReset='off', 'uninitialized' or 'on'");
      add("-device", JSON.stringify({ ...props, ...bootProps(el, path), bus: "usb.0", port: ports.get(el) }));
      return;
    }
    if (type === "scsi_host") {
      const protocol = getAttr(source, "protocol");
      const wwpn = getAttr(source, "wwpn");
      if (protocol !== "vhost" || !wwpn)
        throw unsupported(`${path}/source`, protocol, "write <source protocol='vhost' wwpn='naa.…'/>");
      for (const a of ["rawio", "sgio"])
        if (getAttr(el, a) !== undefined)
          throw new DomainXmlError(`${a} is only supported for scsi host device`, {
            path: `${path}/@${a}`,
            value: getAttr(el, a),
            fix: `remove ${a}`,
          });
      if (firstChild(el, "boot"))
        throw new DomainXmlError("booting from assigned devices is not supported by vhost SCSI devices", {
          path: `${path}/boot`,
          fix: "remove <boot> from the vhost-scsi host device",
        });
      dup(`vhost ${wwpn}`);
      // libvirt opens /dev/vhost-scsi and passes vhostfd; QEMU opens it itself without one
      add("-device", JSON.stringify({ driver: "vhost-scsi-pci", wwpn, id, ...pciAddressProps(el, path, devs) }));
      return;
    }
    throw unsupported(
      `${path}/@type`,
      type,
      type === "scsi"
        ? "SCSI host devices need libvirt (it finds the /dev/sgN of the adapter in sysfs, or logs in to iSCSI with its secrets): apply through libvirt, or pass the disk as a <disk>"
        : "PCI, mediated (vfio-pci) and USB host devices are built: apply through libvirt",
    );
  });
}

// ---------------------------------------------------------------------------------------------
// <interface>: back-ends and <driver> options

/** The on/off attributes of `<driver>` libvirt writes on virtio-net, as QEMU properties. */
const NIC_DRIVER_SWITCHES: Readonly<Record<string, string>> = {
  ioeventfd: "ioeventfd",
  event_idx: "event_idx",
  rss: "rss",
  rss_hash_report: "hash",
  iommu: "iommu_platform",
  ats: "ats",
  packed: "packed",
  page_per_vq: "page-per-vq",
};
const NIC_HOST_OFFLOADS: Readonly<Record<string, string>> = {
  csum: "csum",
  gso: "gso",
  tso4: "host_tso4",
  tso6: "host_tso6",
  ecn: "host_ecn",
  ufo: "host_ufo",
  mrg_rxbuf: "mrg_rxbuf",
};
const NIC_GUEST_OFFLOADS: Readonly<Record<string, string>> = {
  csum: "guest_csum",
  tso4: "guest_tso4",
  tso6: "guest_tso6",
  ecn: "guest_ecn",
  ufo: "guest_ufo",
};

function onOff(path: string, value: string): boolean {
  if (value !== "on" && value !== "off") throw unsupported(path, value, "write 'on' or 'off'");
  return value === "on";
}

/** `<driver queues>` of an interface (1 when absent). */
function nicQueues(el: XmlElement, path: string): number {
  const q = getAttr(firstChild(el, "driver"), "queues");
  return q === undefined ? 1 : xmlWholeNumber(`${path}/driver/@queues`, q, 1, 256, "write e.g. queues='4'");
}

/**
 * The QEMU ids of an interface: `hostnetN`/`netN`, or `hostALIAS`/`ALIAS` for a user alias
 * (`<alias name='ua-...'>`), as libvirt names them (qemuAssignDeviceNetAlias).
 */
export function nicIds(el: XmlElement | undefined, i: number): { netdevId: string; deviceId: string } {
  const alias = el && deviceId(el, "");
  return alias ? { netdevId: `host${alias}`, deviceId: alias } : { netdevId: `hostnet${i}`, deviceId: `net${i}` };
}

/** `<teaming type='persistent'>` of a virtio interface (`failover`), as libvirt checks and writes it. */
function teamingProps(el: XmlElement, path: string, driver: string): Record<string, unknown> {
  const t = firstChild(el, "teaming");
  if (!t) return {};
  const type = getAttr(t, "type");
  if (type !== "persistent")
    throw unsupported(
      `${path}/teaming/@type`,
      type,
      "an interface is the persistent side of a team: write type='persistent'",
    );
  if (driver !== "virtio-net-pci") throw unsupported(`${path}/teaming`, type, "failover teaming needs model='virtio'");
  if (getAttr(t, "persistent") !== undefined)
    throw unsupported(
      `${path}/teaming/@persistent`,
      getAttr(t, "persistent"),
      "only a transient hostdev names its persistent pair: remove it",
    );
  return { failover: true };
}

/**
 * The `-device` properties of an interface's `<driver>` and `<rom>` (libvirt's
 * qemuBuildNicDevProps): virtio-net options, offloads, queue sizes and the ROM. Options of
 * other models are refused.
 */
export function nicDeviceProps(el: XmlElement | undefined, path: string, driver: string): Record<string, unknown> {
  if (!el) return {};
  const p: Record<string, unknown> = {};
  const drv = firstChild(el, "driver");
  if (drv) {
    const virtio = driver === "virtio-net-pci";
    const name = getAttr(drv, "name");
    if (name !== undefined && name !== "qemu" && name !== "vhost")
      throw unsupported(`${path}/driver/@name`, name, "write name='qemu' or 'vhost'");
    for (const a of drv.attrs) {
      if (a.name === "name" || a.name === "queues") continue;
      if (!virtio)
        throw unsupported(`${path}/driver/@${a.name}`, a.value, "driver options are built for model='virtio' only");
      const ap = `${path}/driver/@${a.name}`;
      const sw = NIC_DRIVER_SWITCHES[a.name];
      if (sw) p[sw] = onOff(ap, a.value);
      else if (a.name === "txmode") {
        if (a.value === "iothread") p.tx = "bh";
        else if (a.value === "timer") p.tx = "timer";
        else throw unsupported(ap, a.value, "write txmode='iothread' or 'timer'");
      } else if (a.name === "rx_queue_size" || a.name === "tx_queue_size") {
        const n = xmlWholeNumber(ap, a.value, 1, 65535, "write a power of two, e.g. 256");
        if ((n & (n - 1)) !== 0)
          throw new DomainXmlError(`${a.name} has to be a power of two`, {
            path: ap,
            value: a.value,
            fix: "write a power of two, e.g. 256",
          });
        p[a.name] = n;
      } else throw unsupported(ap, a.value, "remove it or apply through libvirt");
    }
    for (const [child, table] of [
      ["host", NIC_HOST_OFFLOADS],
      ["guest", NIC_GUEST_OFFLOADS],
    ] as const) {
      const c = firstChild(drv, child);
      if (!c) continue;
      if (!virtio) throw unsupported(`${path}/driver/${child}`, child, "offloads are built for model='virtio' only");
      for (const a of c.attrs) {
        const prop = table[a.name];
        if (!prop)
          throw unsupported(`${path}/driver/${child}/@${a.name}`, a.value, "remove it or apply through libvirt");
        p[prop] = onOff(`${path}/driver/${child}/@${a.name}`, a.value);
      }
    }
    const queues = nicQueues(el, path);
    if (queues > 1) {
      if (!virtio)
        throw unsupported(`${path}/driver/@queues`, String(queues), "multiqueue is built for model='virtio' only");
      p.mq = true;
      p.vectors = 2 * queues + 2;
    }
  }
  return { ...p, ...teamingProps(el, path, driver), ...romProps(el, path) };
}

/** The `<source>` attributes each interface type reads (the rest is refused, not dropped). */
const SOURCE_ATTRS: Readonly<Record<string, readonly string[]>> = {
  user: [],
  ethernet: [],
  bridge: ["bridge"],
  mcast: ["address", "port"],
  udp: ["address", "port"],
  server: ["address", "port"],
  client: ["address", "port"],
  vdpa: ["dev"],
  vhostuser: ["type", "path", "mode"],
};

/**
 * The `-netdev` of an interface of the types libvirt does not need for (libvirt's
 * qemuBuildHostNetProps): `ethernet` a tap QEMU opens by name (`<target dev>`; libvirt creates it
 * and passes the fd), running `<script>`/`<downscript>` itself as libvirt would, with
 * `<driver name='vhost' queues>`; the socket back-ends `mcast`, `udp`, `server`, `client`; a
 * `vdpa` device QEMU opens by path; `vhostuser` as a socket chardev (added through `add`) and a
 * vhost-user netdev, with shared guest memory; `user` with `<ip>` networks. Returns undefined for
 * what buildInterfaces builds itself (a plain user network, a bridge).
 */
export function interfaceNetdev(
  add: Add,
  root: XmlElement,
  el: XmlElement | undefined,
  type: string | undefined,
  path: string,
  id: string,
): Record<string, unknown> | undefined {
  if (!el) return undefined;
  if (type !== "user" && firstChild(el, "ip"))
    throw unsupported(
      `${path}/ip`,
      type,
      "guest IP settings are built for type='user' only (QEMU's user network): remove <ip>",
    );
  const source = firstChild(el, "source");
  const allowed = SOURCE_ATTRS[type ?? ""];
  if (source && allowed)
    for (const a of source.attrs)
      if (!allowed.includes(a.name))
        throw unsupported(
          `${path}/source/@${a.name}`,
          a.value,
          `an interface of type '${type ?? ""}' takes ${allowed.length ? allowed.join(", ") : "no attribute"} on <source>: remove it`,
        );
  const hostPort = (p: string) => {
    const addr = getAttr(source, "address") ?? "";
    const port = xmlWholeNumber(
      `${p}/@port`,
      getAttr(p === `${path}/source` ? source : firstChild(source ?? el, "local"), "port"),
      0,
      65535,
      "write e.g. port='5558'",
    );
    return `${addr}:${port}`;
  };
  switch (type) {
    case "ethernet": {
      const t: Record<string, unknown> = { type: "tap" };
      const target = firstChild(el, "target");
      const ifname = getAttr(target, "dev");
      if (ifname !== undefined) t.ifname = ifname;
      const managed = getAttr(target, "managed");
      if (managed !== undefined && managed !== "yes" && managed !== "no")
        throw unsupported(`${path}/target/@managed`, managed, "write managed='yes' or 'no'");
      if (source && childElements(source).length)
        throw unsupported(
          `${path}/source`,
          undefined,
          "host-side IP addresses and routes of a tap are set by libvirt: set them in <script>, or apply through libvirt",
        );
      t.script = getAttr(firstChild(el, "script"), "path") ?? "no";
      t.downscript = getAttr(firstChild(el, "downscript"), "path") ?? "no";
      const drv = firstChild(el, "driver");
      if (getAttr(drv, "name") === "vhost") t.vhost = true;
      else if (getAttr(drv, "name") === "qemu") t.vhost = false;
      const queues = nicQueues(el, path);
      if (queues > 1) t.queues = queues;
      return { ...t, id };
    }
    case "mcast":
    case "server":
    case "client": {
      const key = { mcast: "mcast", server: "listen", client: "connect" }[type];
      const v = hostPort(`${path}/source`);
      const local = source && firstChild(source, "local");
      const extra: Record<string, unknown> = {};
      if (local && type === "mcast") extra.localaddr = getAttr(local, "address");
      return { type: "socket", [key]: v, ...extra, id };
    }
    case "udp": {
      const local = source && firstChild(source, "local");
      if (!local) throw unsupported(`${path}/source/local`, undefined, "write <local address= port=/> inside <source>");
      return { type: "socket", udp: hostPort(`${path}/source`), localaddr: hostPort(`${path}/source/local`), id };
    }
    case "vdpa": {
      const dev = getAttr(source, "dev");
      if (!dev)
        throw unsupported(
          `${path}/source/@dev`,
          undefined,
          "write the vDPA device, e.g. <source dev='/dev/vhost-vdpa-0'/>",
        );
      // libvirt opens the device and passes it as /dev/fdset/N; QEMU opens it by path itself
      const queues = nicQueues(el, path);
      return { type: "vhost-vdpa", vhostdev: dev, ...(queues > 1 ? { queues } : {}), id };
    }
    case "vhostuser": {
      if (getAttr(source, "type") !== "unix")
        throw unsupported(
          `${path}/source/@type`,
          getAttr(source, "type"),
          "write <source type='unix' path=... mode=.../>",
        );
      const sock = getAttr(source, "path");
      if (!sock) throw unsupported(`${path}/source/@path`, undefined, "write the vhost-user socket path");
      const mode = getAttr(source, "mode");
      if (mode !== "server" && mode !== "client")
        throw unsupported(`${path}/source/@mode`, mode, "write mode='server' (QEMU listens) or 'client'");
      if (source && firstChild(source, "reconnect"))
        throw unsupported(
          `${path}/source/reconnect`,
          undefined,
          "the reconnect option is spelled differently by QEMU 7.2 (reconnect) and 11 (reconnect-ms): remove it or apply through libvirt",
        );
      if (!sharedMemory(root))
        throw new DomainXmlError("'interface' requires shared memory", {
          path: `${path}/@type`,
          value: type,
          fix: "add <memoryBacking><access mode='shared'/></memoryBacking> (vhost-user needs guest memory the back-end can map)",
        });
      const chardev = id.replace(/^hostnet/, "charnet");
      add("-chardev", `socket,id=${chardev},path=${qemuOptEscape(sock)}${mode === "server" ? ",server=on" : ""}`);
      const queues = nicQueues(el, path);
      return { type: "vhost-user", chardev, ...(queues > 1 ? { queues } : {}), id };
    }
    case "user": {
      const ips = childElements(el, "ip");
      if (ips.length === 0) return undefined;
      const u: Record<string, unknown> = { type: "user" };
      ips.forEach((ip, k) => {
        const ap = `${path}/ip${ips.length > 1 ? `[${k + 1}]` : ""}`;
        const family = getAttr(ip, "family") ?? (getAttr(ip, "address")?.includes(":") ? "ipv6" : "ipv4");
        const address = getAttr(ip, "address");
        if (!address)
          throw unsupported(`${ap}/@address`, undefined, "write the network address, e.g. address='10.0.2.0'");
        for (const a of ip.attrs)
          if (!["address", "family", "prefix"].includes(a.name))
            throw unsupported(`${ap}/@${a.name}`, a.value, "address, family and prefix are built: remove it");
        const prefix = getAttr(ip, "prefix");
        if (family === "ipv4") {
          if (u.net !== undefined) throw unsupported(ap, address, "one IPv4 network a user interface");
          u.net =
            prefix === undefined
              ? address
              : `${address}/${xmlWholeNumber(`${ap}/@prefix`, prefix, 0, 32, "write e.g. prefix='24'")}`;
        } else if (family === "ipv6") {
          if (u["ipv6-prefix"] !== undefined) throw unsupported(ap, address, "one IPv6 network a user interface");
          u["ipv6-prefix"] = address;
          if (prefix !== undefined)
            u["ipv6-prefixlen"] = xmlWholeNumber(`${ap}/@prefix`, prefix, 0, 128, "write e.g. prefix='64'");
        } else throw unsupported(`${ap}/@family`, family, "write family='ipv4' or 'ipv6'");
      });
      return { ...u, id };
    }
    default:
      return undefined;
  }
}

/** `-cpu` flags of `<panic model='hyperv'>`: the Hyper-V crash MSRs (`hv-crash`), as libvirt adds them. */
export function panicCpuFlags(root: XmlElement): string[] {
  const devices = firstChild(root, "devices");
  const hyperv = (devices ? childElements(devices, "panic") : []).some((p) => getAttr(p, "model") === "hyperv");
  return hyperv ? ["hv-crash"] : [];
}

/** Guest memory a vhost-user back-end can map: `<memoryBacking><access mode='shared'>`, or every NUMA cell shared. */
function sharedMemory(root: XmlElement): boolean {
  const access = getAttr(firstChild(firstChild(root, "memoryBacking") ?? root, "access"), "mode");
  const cells = childElements(firstChild(firstChild(root, "cpu") ?? root, "numa") ?? root, "cell");
  if (cells.length > 0) return cells.every((c) => (getAttr(c, "memAccess") ?? access) === "shared");
  return access === "shared";
}

/** libvirt's NIC model when none is written: virtio for vDPA and vhost-user (they are virtio back-ends), else rtl8139 (x86). */
export function defaultNicModel(type: string | undefined): string {
  return type === "vdpa" || type === "vhostuser" ? "virtio" : "rtl8139";
}

/** `<link state>`: `up` is QEMU's default; `down` needs a QMP `set_link` after start (libvirt does it): refused. */
export function checkLinkState(el: XmlElement | undefined, path: string): void {
  const state = getAttr(el && firstChild(el, "link"), "state");
  if (state === undefined || state === "up") return;
  throw unsupported(
    `${path}/link/@state`,
    state,
    "libvirt sets the link down over QMP after start: write state='up' or apply through libvirt",
  );
}

// ---------------------------------------------------------------------------------------------
// <panic>, <iommu>, <vsock>, <smartcard>

/** `<panic model='isa'|'pvpanic'>` (x86): the ISA pvpanic device at an I/O port, or pvpanic-pci. */
export function buildPanics(add: Add, devs: DeviceElements): void {
  devs.of("panic").forEach((el, i) => {
    const path = `/domain/devices/panic[${i + 1}]`;
    const model = getAttr(el, "model") ?? "isa";
    const a = firstChild(el, "address");
    if (model === "isa") {
      const p: Record<string, unknown> = { driver: "pvpanic" };
      if (a) {
        if (getAttr(a, "type") !== "isa")
          throw unsupported(
            `${path}/address/@type`,
            getAttr(a, "type"),
            "write <address type='isa' iobase='0x505'/> or none",
          );
        for (const at of a.attrs)
          if (at.name !== "type" && at.name !== "iobase")
            throw unsupported(`${path}/address/@${at.name}`, at.value, "only iobase is built: remove it");
        const io = getAttr(a, "iobase");
        if (io !== undefined) p.ioport = hostNumber(`${path}/address/@iobase`, io, 0xffff);
      }
      add("-device", JSON.stringify(p));
    } else if (model === "pvpanic") {
      if (a && getAttr(a, "type") !== "pci")
        throw new DomainXmlError("pvpanic is supported only with PCI address type", {
          path: `${path}/address/@type`,
          value: getAttr(a, "type"),
          fix: "write a PCI address (type='pci') or none",
        });
      // without an address: the root-bus slot the PCI layout gives it (an integrated device; controllers.ts)
      add("-device", JSON.stringify({ driver: "pvpanic-pci", ...pciAddressProps(el, path, devs) }));
    } else if (model === "hyperv") {
      // a CPU feature (panicCpuFlags), no device
      if (a) throw unsupported(`${path}/address`, undefined, "the hyperv panic device has no address: remove it");
    } else
      throw unsupported(`${path}/@model`, model, "the isa, pvpanic and hyperv models are built: apply through libvirt");
  });
}

/** The `<driver>` options of the Intel IOMMU as libvirt writes them (qemuBuildIOMMUCommandLine). */
const INTEL_IOMMU_SWITCHES: Readonly<Record<string, [string, "bool" | "onoff"]>> = {
  intremap: ["intremap", "onoff"],
  caching_mode: ["caching-mode", "bool"],
  eim: ["eim", "onoff"],
  iotlb: ["device-iotlb", "bool"],
  dma_translation: ["dma-translation", "bool"],
};

function intelIommuProps(driver: XmlElement | undefined, path: string, root: XmlElement): Record<string, unknown> {
  if (!driver) return {};
  const p: Record<string, unknown> = {};
  for (const a of driver.attrs) {
    const sw = INTEL_IOMMU_SWITCHES[a.name];
    if (sw) {
      const on = onOff(`${path}/@${a.name}`, a.value);
      p[sw[0]] = sw[1] === "bool" ? on : a.value;
    } else if (a.name === "aw_bits")
      p["aw-bits"] = xmlWholeNumber(`${path}/@aw_bits`, a.value, 39, 64, "write aw_bits='39' or '48'");
    else throw unsupported(`${path}/@${a.name}`, a.value, "remove it or apply through libvirt");
  }
  if (p.intremap === "on") {
    const ioapic = getAttr(firstChild(firstChild(root, "features") ?? root, "ioapic"), "driver");
    if (ioapic !== "qemu")
      throw new DomainXmlError("IOMMU interrupt remapping requires split I/O APIC (ioapic driver='qemu')", {
        path: `${path}/@intremap`,
        value: "on",
        fix: "add <features><ioapic driver='qemu'/></features>",
      });
  }
  if (p.eim === "on" && p.intremap !== "on")
    throw new DomainXmlError("IOMMU eim requires interrupt remapping to be enabled", {
      path: `${path}/@eim`,
      value: "on",
      fix: "write intremap='on' too",
    });
  return p;
}

/**
 * `<iommu model='intel'|'virtio'>` on q35 (libvirt's qemuBuildIOMMUCommandLine), with the Intel
 * IOMMU's `<driver>` options; the virtio IOMMU takes none (as libvirt).
 */
export function buildIommu(add: Add, devs: DeviceElements, acpi: boolean, root: XmlElement): void {
  devs.of("iommu").forEach((el, i) => {
    const path = `/domain/devices/iommu[${i + 1}]`;
    const model = getAttr(el, "model");
    const q35 = devs.rootBus === "pcie.0";
    if (model !== "intel" && model !== "virtio")
      throw unsupported(`${path}/@model`, model, "the intel and virtio models are built: apply through libvirt");
    if (!q35)
      throw new DomainXmlError(`IOMMU device: '${model}' is only supported with Q35 machines`, {
        path: `${path}/@model`,
        value: model,
        fix: "use a q35 machine (<type machine='q35'>)",
      });
    const driver = firstChild(el, "driver");
    if (model === "intel") {
      const props = intelIommuProps(driver, `${path}/driver`, root);
      if (firstChild(el, "address"))
        throw unsupported(`${path}/address`, undefined, "the intel IOMMU has no address: remove it");
      add("-device", JSON.stringify({ driver: "intel-iommu", id: `iommu${i}`, ...props }));
      return;
    }
    if (driver)
      throw new DomainXmlError("iommu model 'virtio' doesn't support additional attributes", {
        path: `${path}/driver`,
        fix: "remove <driver> from the virtio IOMMU",
      });
    if (!acpi)
      throw new DomainXmlError("IOMMU device: 'virtio' requires ACPI", {
        path: `${path}/@model`,
        value: model,
        fix: "add <features><acpi/></features>",
      });
    const a = firstChild(el, "address");
    if (a && getAttr(a, "type") !== "pci")
      throw new DomainXmlError("IOMMU device: 'virtio' needs a PCI address", {
        path: `${path}/address/@type`,
        value: getAttr(a, "type"),
        fix: "write a PCI address on pcie.0 or none",
      });
    // without an address: the slot the PCI layout gives it, the first free one of pcie.0 (an integrated device; controllers.ts)
    add("-device", JSON.stringify({ driver: "virtio-iommu", id: `iommu${i}`, ...pciAddressProps(el, path, devs) }));
  });
}

/**
 * `<vsock model='virtio'>` with a fixed `<cid address>` as `vhost-vsock-pci,guest-cid=N` (QEMU
 * opens /dev/vhost-vsock itself; libvirt opens it and passes `vhostfd`). `auto='yes'` asks for a
 * free CID on the host: the one `autoCid` gives (the QEMU-direct backend finds it at start).
 */
export function buildVsock(add: Add, devs: DeviceElements, autoCid?: () => number): void {
  devs.of("vsock").forEach((el, i) => {
    const path = `/domain/devices/vsock[${i + 1}]`;
    const model = getAttr(el, "model");
    if (model !== undefined && model !== "virtio") throw unsupported(`${path}/@model`, model, "write model='virtio'");
    const cid = firstChild(el, "cid");
    const address = getAttr(cid, "address");
    // auto='yes': a free CID found at start (input-video family: provider/backends/qemu/free-ports.ts)
    const auto = getAttr(cid, "auto") === "yes" && autoCid ? autoCid() : undefined;
    if (auto === undefined && (getAttr(cid, "auto") === "yes" || address === undefined))
      throw unsupported(
        `${path}/cid`,
        getAttr(cid, "auto"),
        "libvirt picks a free CID on the host for auto='yes': write <cid auto='no' address='N'/> (N >= 3)",
      );
    const n =
      auto ??
      xmlWholeNumber(`${path}/cid/@address`, address, 3, 0xfffffffe, "write a CID of 3 or more, e.g. address='4'");
    add(
      "-device",
      JSON.stringify({
        driver: "vhost-vsock-pci",
        id: `vsock${i}`,
        "guest-cid": n,
        ...pciAddressProps(el, path, devs),
      }),
    );
  });
}

/**
 * `<smartcard mode='host'|'host-certificates'>` as a `usb-ccid` controller and a
 * `ccid-card-emulated` (NSS on the host, as libvirt writes it). `passthrough` needs a character
 * device libvirt opens (and passes as an fd): refused.
 */
export function buildSmartcards(add: Add, devs: DeviceElements): void {
  const reader = ccidReader(devs);
  if (!reader) return;
  add(
    "-device",
    JSON.stringify({ driver: "usb-ccid", id: "ccid0", bus: "usb.0", port: usbPorts(devs).get(reader.el) }),
  );
  const cards = devs.of("smartcard");
  if (cards.length === 0) return;
  if (cards.length > 1)
    throw unsupported("/domain/devices/smartcard[2]", "smartcard", "one smartcard is built: remove the others");
  const el = cards[0]!;
  const path = "/domain/devices/smartcard[1]";
  const mode = getAttr(el, "mode");
  const a = firstChild(el, "address");
  if (
    a &&
    !(
      getAttr(a, "type") === "ccid" &&
      (getAttr(a, "controller") ?? "0") === "0" &&
      (getAttr(a, "slot") ?? "0") === "0" &&
      a.attrs.every((x) => ["type", "controller", "slot"].includes(x.name))
    )
  )
    throw unsupported(
      `${path}/address`,
      getAttr(a, "type"),
      "write <address type='ccid' controller='0' slot='0'/> or none",
    );
  const card: Record<string, unknown> = { driver: "ccid-card-emulated" };
  if (mode === "host") card.backend = "nss-emulated";
  else if (mode === "host-certificates") {
    card.backend = "certificates";
    const certs = childElements(el, "certificate").map((c) => textContent(c) ?? "");
    if (certs.length !== 3)
      throw unsupported(`${path}/certificate`, String(certs.length), "write exactly three <certificate> elements");
    certs.forEach((c, i) => (card[`cert${i + 1}`] = c));
    card.db = textContent(firstChild(el, "database")) ?? "/etc/pki/nssdb";
  } else if (mode === "passthrough") {
    const source = firstChild(el, "source");
    const type = getAttr(el, "type");
    if (type === "spicevmc") {
      if (!devs.of("graphics").some((g) => getAttr(g, "type") === "spice"))
        throw unsupported(
          `${path}/@type`,
          type,
          "a spicevmc channel needs <graphics type='spice'>: add it, or use a tcp or unix source",
        );
      add("-chardev", "spicevmc,id=charsmartcard0,name=smartcard");
    } else add("-chardev", chardevBackend(type, "charsmartcard0", source && getAttr(source, "path"), path, el));
    card.driver = "ccid-card-passthru";
    card.chardev = "charsmartcard0";
  } else throw unsupported(`${path}/@mode`, mode, "write mode='host', 'host-certificates' or 'passthrough'");
  add("-device", JSON.stringify({ ...card, id: "smartcard0", bus: "ccid0.0" }));
}
