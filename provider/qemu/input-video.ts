/**
 * Input devices other than the PS/2 pair and USB HID (`<input bus='virtio'>`, `<input
 * type='evdev'>`), the video models and defaults the video builder left out (`<video>` without a
 * model type, `ramfb`, `<driver name='vhostuser'>`), and the USB redirection filter
 * (`<redirfilter>`) on the QEMU command line, as libvirt's QEMU driver writes them
 * (qemuBuildInputCommandLine, qemuBuildVideoCommandLine, qemuBuildRedirdevDevProps in
 * `src/qemu/qemu_command.c`; the corpus `.args` files are the oracle). Called from
 * {@link buildQemuArgv} (provider/qemu/argv.ts), one line per family; what cannot be expressed
 * without libvirt is a {@link DomainXmlError} naming the element.
 *
 * Pure: no I/O.
 */
import { DomainXmlError } from "../xml/errors";
import { XmlElement, childElements, firstChild, getAttr } from "../xml/tree";
import { unsupported } from "./argv";
import { libvirtUint } from "./controllers";
import { virtioDriverProps } from "./media";

/** `<input type=>` on the virtio bus as the QEMU device libvirt writes (qemuBuildVirtioInputDevProps). */
const VIRTIO_INPUTS: Readonly<Record<string, string>> = {
  mouse: "virtio-mouse-pci",
  keyboard: "virtio-keyboard-pci",
  tablet: "virtio-tablet-pci",
  passthrough: "virtio-input-host-pci",
};

/** `<source grabToggle=>` values libvirt accepts (virDomainInputSourceGrabToggle). */
const GRAB_TOGGLES = ["ctrl-ctrl", "alt-alt", "shift-shift", "meta-meta", "scrolllock", "ctrl-scrolllock"];

/** The fix of every input refusal: what the builder builds. */
const INPUT_FORMS =
  "the PS/2 mouse and keyboard of the PC machine, USB tablet, mouse and keyboard, virtio mouse, keyboard, tablet and passthrough, and evdev inputs are built: remove it or apply through libvirt";

/**
 * Whether the builder expresses this `<input>` form (bus and type), for the device check of
 * provider/qemu/argv.ts: refuses every other form naming the attribute. `at` is the element's path.
 */
export function checkInputForm(el: XmlElement, at: string): void {
  const type = getAttr(el, "type") ?? "";
  const bus = getAttr(el, "bus") ?? (type === "evdev" ? "" : "ps2");
  const types: Readonly<Record<string, readonly string[]>> = {
    ps2: ["mouse", "keyboard"],
    usb: ["tablet", "mouse", "keyboard"],
    virtio: Object.keys(VIRTIO_INPUTS),
    "": ["evdev"],
  };
  const allowed = types[bus];
  if (!allowed) throw unsupported(`${at}/@bus`, getAttr(el, "bus"), INPUT_FORMS);
  if (!allowed.includes(type)) throw unsupported(`${at}/@type`, getAttr(el, "type"), INPUT_FORMS);
}

/** What the input builder needs from the command line builder. */
export interface InputContext {
  add: (...a: string[]) => void;
  /** The `bus`/`addr` of a PCI device (written address, or the slot libvirt would assign). */
  pci: (el: XmlElement, path: string) => Record<string, unknown>;
}

/**
 * A virtio or evdev `<input>` as libvirt writes it: `virtio-{mouse,keyboard,tablet}-pci` and
 * `virtio-input-host-pci` (with `<source evdev=>`) with the `<driver>` virtio options and a PCI
 * address; `type='evdev'` as an `input-linux` object (`<source dev grab repeat grabToggle>`).
 * `id` is libvirt's alias (`inputN`, counted over the inputs that are not PS/2). Returns false
 * for the forms built elsewhere (PS/2, USB).
 */
export function buildVirtioOrEvdevInput(ctx: InputContext, el: XmlElement, path: string, id: string): boolean {
  const type = getAttr(el, "type") ?? "";
  const bus = getAttr(el, "bus");
  if (type === "evdev" && bus === undefined) {
    ctx.add("-object", JSON.stringify(evdevProps(el, path, id)));
    return true;
  }
  if (bus !== "virtio") return false;
  const driver = VIRTIO_INPUTS[type];
  if (!driver) throw unsupported(`${path}/@type`, type, INPUT_FORMS);
  const model = getAttr(el, "model");
  if (model !== undefined && model !== "virtio")
    throw new DomainXmlError(`virtio (non-)transitional models are not supported for input type=${type}`, {
      path: `${path}/@model`,
      value: model,
      allowed: "virtio",
      category: "unsupported configuration",
      mirrorsLibvirt: true,
      fix: "write model='virtio' or no model",
    });
  const props: Record<string, unknown> = { driver, id };
  const source = firstChild(el, "source");
  if (type === "passthrough") {
    const evdev = getAttr(source, "evdev");
    if (!evdev)
      throw new DomainXmlError("a passthrough input needs the event device to pass", {
        path: `${path}/source/@evdev`,
        category: "unsupported configuration",
        fix: "write <source evdev='/dev/input/eventN'/>",
      });
    props.evdev = evdev;
  } else if (source)
    throw unsupported(`${path}/source`, undefined, "only a passthrough input has a <source>: remove it");
  const address = firstChild(el, "address");
  if (address && getAttr(address, "type") !== "pci")
    throw unsupported(
      `${path}/address/@type`,
      getAttr(address, "type"),
      "a virtio input is a PCI device: write <address type='pci' .../> or none",
    );
  ctx.add("-device", JSON.stringify({ ...props, ...virtioDriverProps(el, path), ...ctx.pci(el, path) }));
  return true;
}

/** `<input type='evdev'><source dev grab repeat grabToggle/>` as libvirt's `input-linux` object (qemuBuildInputEvdevProps). */
function evdevProps(el: XmlElement, path: string, id: string): Record<string, unknown> {
  const sp = `${path}/source`;
  const source = firstChild(el, "source");
  const dev = getAttr(source, "dev");
  if (!dev)
    throw new DomainXmlError("an evdev input needs its event device", {
      path: `${sp}/@dev`,
      category: "unsupported configuration",
      fix: "write <source dev='/dev/input/eventN'/>",
    });
  if (firstChild(el, "address"))
    throw unsupported(`${path}/address`, undefined, "an evdev input is no device on a bus: remove <address>");
  const props: Record<string, unknown> = { "qom-type": "input-linux", id, evdev: dev };
  const repeat = getAttr(source, "repeat");
  if (repeat !== undefined) props.repeat = onOff(`${sp}/@repeat`, repeat);
  const grab = getAttr(source, "grab");
  if (grab !== undefined) {
    if (grab !== "all") throw invalid(`${sp}/@grab`, grab, "all", "write grab='all' or no grab");
    props.grab_all = true;
  }
  const toggle = getAttr(source, "grabToggle");
  if (toggle !== undefined) {
    if (!GRAB_TOGGLES.includes(toggle))
      throw invalid(`${sp}/@grabToggle`, toggle, GRAB_TOGGLES.join(", "), "write one of the toggles libvirt knows");
    props["grab-toggle"] = toggle;
  }
  return props;
}

function invalid(path: string, value: string, allowed: string, fix: string): DomainXmlError {
  return new DomainXmlError(`invalid value '${value}'`, { path, value, allowed, fix });
}

function onOff(path: string, value: string): boolean {
  if (value !== "on" && value !== "off") throw invalid(path, value, "on, off", "write 'on' or 'off'");
  return value === "on";
}

/**
 * The model of a `<video>` written without `<model type>`: libvirt's default for the machine
 * (qemuDomainDeviceVideoDefPostParse: Cirrus VGA on x86 `pc` and `q35`, the corpus
 * x86_64-pc-default-models and x86_64-q35-default-models); other machines are refused.
 */
export function defaultVideoModel(machine: string, path: string): string {
  if (/^(pc|q35)\b/.test(machine) || /^pc-(i440fx|q35)-/.test(machine)) return "cirrus";
  throw unsupported(
    `${path}/model/@type`,
    undefined,
    `libvirt picks the default video of machine ${machine}: write <model type='vga'/> (or virtio, cirrus, ...)`,
  );
}

/**
 * A video model the main video builder does not build: `ramfb` (a sysbus device, no PCI address,
 * libvirt's `{"driver":"ramfb","id":"videoN"}`). `<driver name='vhostuser'>` is refused: the GPU
 * runs in a vhost-user-gpu process libvirt starts and connects. Returns the `-device` props, or
 * `undefined` when the model is not one of these.
 */
export function otherVideoDevice(
  el: XmlElement | undefined,
  path: string,
  model: string,
  id: string,
): object | undefined {
  const name = getAttr(el && firstChild(el, "driver"), "name");
  if (name !== undefined && name !== "qemu")
    throw unsupported(
      `${path}/driver/@name`,
      name,
      name === "vhostuser"
        ? "a vhost-user GPU runs in a vhost-user-gpu process libvirt starts and connects: apply through libvirt, or remove <driver name>"
        : "write <driver name='qemu'/> or none",
    );
  if (model === "none" && el && firstChild(el, "acpi"))
    throw unsupported(`${path}/acpi`, undefined, "a video of model none is no device: remove <acpi>");
  if (model !== "ramfb") return undefined;
  if (el && firstChild(el, "address"))
    throw new DomainXmlError("address not supported for video type ramfb", {
      path: `${path}/address`,
      category: "unsupported configuration",
      mirrorsLibvirt: true,
      fix: "remove <address>: a ramfb display is no PCI device",
    });
  if (el && firstChild(el, "acpi"))
    throw unsupported(`${path}/acpi`, undefined, "a ramfb display is no PCI device: remove <acpi>");
  const m = el && firstChild(el, "model");
  for (const a of ["vram", "ram", "vgamem", "vram64", "heads"])
    if (getAttr(m, a) !== undefined && !(a === "heads" && getAttr(m, a) === "1"))
      throw unsupported(
        `${path}/model/@${a}`,
        getAttr(m, a),
        "a ramfb display takes no memory size nor heads: remove it",
      );
  return { driver: "ramfb", id };
}

/**
 * The QEMU id of the video at position `pos` (primary first): its user alias (`<alias
 * name='ua-...'>`), as libvirt uses it, else `videoN`. Other aliases are libvirt's own runtime
 * names, ignored at define as libvirt does.
 */
export function videoId(el: XmlElement | undefined, pos: number): string {
  const alias = getAttr(el && firstChild(el, "alias"), "name");
  return alias !== undefined && alias.startsWith("ua-") ? alias : `video${pos}`;
}

/**
 * `<acpi index='N'/>` of a PCI device as libvirt writes it (`acpi-index`, 1 to 16383: the index
 * the guest names the device by, e.g. `eno1`). `{}` when not written.
 */
export function acpiIndexProps(el: XmlElement | undefined, path: string): Record<string, unknown> {
  const acpi = el && firstChild(el, "acpi");
  if (!acpi) return {};
  const v = getAttr(acpi, "index") ?? "";
  const n = /^[0-9]+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > 16383)
    throw invalid(`${path}/acpi/@index`, v, "a whole number from 1 to 16383", "write e.g. <acpi index='1'/>");
  return { "acpi-index": n };
}

/** The next port for a SPICE `autoport='yes'`: `ports` in order, then (or without them) 5900 up past the last. */
export function autoPorts(ports: readonly number[] | undefined): () => number {
  let i = 0;
  let last = 5899;
  return () => (last = ports?.[i++] ?? last + 1);
}

/** The next CID for a `<vsock><cid auto='yes'/>`: `cids` in order, then (or without them) 3 up past the last. */
export function autoCids(cids: readonly number[] | undefined): () => number {
  let i = 0;
  let last = 2;
  return () => (last = cids?.[i++] ?? last + 1);
}

/** A `<usbdev>` attribute of `<redirfilter>` as a number (`-1` any), checked against its maximum. */
function usbdevNumber(path: string, value: string | undefined, max: number): number {
  if (value === undefined || value === "-1") return -1;
  const n = libvirtUint(value);
  if (!Number.isSafeInteger(n) || n > max)
    throw invalid(path, value, `-1 (any) or 0 to 0x${max.toString(16)}`, "write a hex number such as 0x08, or -1");
  return n;
}

/** A `<usbdev version='MAJOR.MINOR'>` as the BCD number USB uses (libvirt's parse: "1.10" is 0x0110, "9.4" is 0x0940). */
function usbdevVersion(path: string, value: string | undefined): number {
  if (value === undefined || value === "-1") return -1;
  const m = /^([0-9]{1,2})\.([0-9]{1,2})$/.exec(value);
  if (!m) throw invalid(path, value, "-1 (any) or MAJOR.MINOR, e.g. 1.10", "write e.g. version='2.00'");
  return parseInt(m[1]!.padStart(2, "0") + m[2]!.padEnd(2, "0"), 16);
}

/**
 * `<redirfilter>` as the `filter` property of every `usb-redir` (qemuBuildRedirdevDevProps): one
 * `class:vendor:product:version:allow` rule a `<usbdev>` (hex, `-1` any), joined by `|`.
 * `undefined` when the definition has no filter.
 */
export function redirFilter(devices: (name: string) => XmlElement[]): string | undefined {
  const filters = devices("redirfilter");
  if (filters.length === 0) return undefined;
  if (filters.length > 1)
    throw unsupported("/domain/devices/redirfilter[2]", "redirfilter", "libvirt keeps one <redirfilter>: merge them");
  const hex = (n: number, w: number) => (n < 0 ? "-1" : `0x${n.toString(16).toUpperCase().padStart(w, "0")}`);
  const rules = childElements(filters[0]!, "usbdev").map((u, i) => {
    const p = `/domain/devices/redirfilter[1]/usbdev[${i + 1}]`;
    const allow = getAttr(u, "allow");
    if (allow !== "yes" && allow !== "no")
      throw invalid(`${p}/@allow`, allow ?? "", "yes, no", "write allow='yes' or allow='no'");
    return [
      hex(usbdevNumber(`${p}/@class`, getAttr(u, "class"), 0xff), 2),
      hex(usbdevNumber(`${p}/@vendor`, getAttr(u, "vendor"), 0xffff), 4),
      hex(usbdevNumber(`${p}/@product`, getAttr(u, "product"), 0xffff), 4),
      hex(usbdevVersion(`${p}/@version`, getAttr(u, "version")), 4),
      allow === "yes" ? "1" : "0",
    ].join(":");
  });
  return rules.length ? rules.join("|") : undefined;
}

/** Ports of a USB hub (libvirt's VIR_DOMAIN_USB_HUB_PORTS). */
const USB_HUB_PORTS = 8;

/** A USB hub of the layout: its port path (`""` the root hub), its port count and the ports taken. */
interface UsbHubNode {
  path: string;
  ports: number;
  taken: Set<number>;
}

/** USB inputs and hubs as libvirt lays them out: every input's port, and the hubs libvirt adds. */
export interface UsbInputLayout {
  /** The port of each USB `<input>` (written, or assigned). */
  readonly ports: ReadonlyMap<XmlElement, string>;
  /** The ports of the hubs libvirt adds when the ports run out (`hubN` after the written hubs). */
  readonly implicitHubs: readonly string[];
}

/** A written USB port libvirt takes as given (virDomainUSBAddressPortIsValid): `N[.N]*`. */
const USB_PORT = /^[1-9][0-9]*(\.[1-9][0-9]*){0,3}$/;

/**
 * USB inputs and hubs as libvirt lays them out on the root hub of a PC machine
 * (qemuDomainAssignUSBAddresses): the written ports are kept; when the devices outnumber the ports
 * of the controller and the written hubs it adds hubs (qemuDomainUSBAddressAddHubs: one for every 7
 * missing ports, plus one); then hubs, then inputs, take the first free port, a free port of the
 * root hub first, else of the hubs below in port order, depth first (virDomainUSBAddressFindFreePort).
 * `undefined` when the inputs fit on the root hub in order (the simple numbering of buildInputs), or
 * when other USB devices (host devices, smartcard readers, redirections, USB sound) share the bus:
 * those are laid out by provider/qemu/hostdev-net.ts.
 */
export function usbInputLayout(
  of: (name: string) => XmlElement[],
  rootBus: string,
  rootPorts: number | undefined,
): UsbInputLayout | undefined {
  const inputs = of("input").filter((el) => getAttr(el, "bus") === "usb");
  const hubs = of("hub");
  if (rootBus !== "pci.0" || rootPorts === undefined || rootPorts === 0 || inputs.length === 0) return undefined;
  const others =
    of("hostdev").some((h) => getAttr(h, "type") === "usb") ||
    of("smartcard").length > 0 ||
    of("redirdev").length > 0 ||
    of("sound").some((s) => getAttr(s, "model") === "usb") ||
    of("controller").some((c) => getAttr(c, "type") === "ccid") ||
    of("disk").some((d) => getAttr(firstChild(d, "target"), "bus") === "usb");
  const written = (el: XmlElement) => {
    const a = firstChild(el, "address");
    const port = a && getAttr(a, "type") === "usb" ? getAttr(a, "port") : undefined;
    return port !== undefined && USB_PORT.test(port) ? port : undefined;
  };
  const fitsInOrder =
    hubs.length === 0 &&
    inputs.length <= rootPorts &&
    inputs.every((el) => !firstChild(el, "address") || written(el)?.includes(".") === false);
  if (others || fitsInOrder) return undefined;
  const nodes = new Map<string, UsbHubNode>([["", { path: "", ports: rootPorts, taken: new Set() }]]);
  const take = (port: string, path?: string) => {
    const i = port.lastIndexOf(".");
    const parent = nodes.get(i < 0 ? "" : port.slice(0, i));
    if (!parent) {
      // libvirt names the first level without a hub
      const levels = port.split(".");
      const missing = levels.map((_, k) => levels.slice(0, k + 1).join(".")).find((p) => !nodes.has(p))!;
      throw new DomainXmlError(`there is no hub at port ${missing} in USB address bus: 0 port: ${port}`, {
        path: `${path}/address/@port`,
        value: port,
        mirrorsLibvirt: true,
        fix: `add <hub type='usb'> at port '${missing}' before this device, or use a port on the root hub`,
      });
    }
    parent.taken.add(Number(port.slice(i + 1)));
  };
  const addHub = (port: string) => nodes.set(port, { path: port, ports: USB_HUB_PORTS, taken: new Set() });
  const findFree = (node: UsbHubNode): string | undefined => {
    for (let p = 1; p <= node.ports; p++) if (!node.taken.has(p)) return node.path ? `${node.path}.${p}` : String(p);
    for (let p = 1; p <= node.ports; p++) {
      const child = nodes.get(node.path ? `${node.path}.${p}` : String(p));
      const found = child && findFree(child);
      if (found) return found;
    }
    return undefined;
  };
  const assign = (path: string): string => {
    const port = findFree(nodes.get("")!);
    if (port === undefined)
      throw unsupported(path, undefined, "no free USB port is left: remove USB devices or add a <hub type='usb'/>");
    take(port);
    return port;
  };
  // written ports first (hubs, then inputs), then the hubs libvirt adds, then the others in order
  const hubPorts = hubs.map(written);
  hubPorts.forEach((p, i) => {
    if (p === undefined) return;
    take(p, `/domain/devices/hub[${i + 1}]`);
    addHub(p);
  });
  const ports = new Map<XmlElement, string>();
  of("input").forEach((el, i) => {
    const p = getAttr(el, "bus") === "usb" ? written(el) : undefined;
    if (p === undefined) return;
    take(p, `/domain/devices/input[${i + 1}]`);
    ports.set(el, p);
  });
  const count = hubs.length + inputs.length;
  const available = rootPorts + USB_HUB_PORTS * hubs.length;
  const added = count > available ? Math.ceil((count - available + 1) / (USB_HUB_PORTS - 1)) : 0;
  hubPorts.forEach((p, i) => p === undefined && addHub(assign(`/domain/devices/hub[${i + 1}]`)));
  const implicitHubs: string[] = [];
  for (let k = 0; k < added; k++) {
    const p = assign("/domain/devices/hub");
    addHub(p);
    implicitHubs.push(p);
  }
  of("input").forEach((el, i) => {
    if (getAttr(el, "bus") === "usb" && !ports.has(el)) ports.set(el, assign(`/domain/devices/input[${i + 1}]`));
  });
  return { ports, implicitHubs };
}
