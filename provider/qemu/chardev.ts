/**
 * Character devices as libvirt's QEMU driver writes them (`qemuBuildChardevCommandLine`,
 * `qemuBuildSerialCommandLine`, `qemuBuildChannelsCommandLine`, `qemuBuildConsoleCommandLine`,
 * `qemuBuildParallelsCommandLine`): `<serial>`, `<console>`, `<channel>` and `<parallel>`, their
 * backends (pty, null, vc, stdio, dev, file, pipe, unix, tcp, udp, spicevmc, qemu-vdagent), the
 * virtio-serial ports of channels (libvirt's `virDomainVirtioSerialAddr*`, the controllers it
 * adds) and guestfwd channels (a user-mode netdev forwarding to the chardev).
 *
 * Pure: no I/O. A unix channel without a source path gets its path in the directory the caller
 * gives ({@link ChardevOptions.channelTargetDir}), where libvirt's daemon makes it in its own.
 */
import { DomainXmlError } from "../xml/errors";
import { XmlElement, childElements, firstChild, getAttr } from "../xml/tree";
import { libvirtUint } from "./controllers";
import { DeviceElements, pciAddressProps, qemuOptEscape, unsupported, xmlWholeNumber } from "./argv";

type Add = (...a: string[]) => void;

/** libvirt's directory for the unix sockets of virtio channels without a path (`qemu.conf` `channel_target_dir`). */
export const LIBVIRT_CHANNEL_TARGET_DIR = "/var/lib/libvirt/qemu/channel/target";

/** The longest path a unix socket can have on Linux (`sun_path` is 108 bytes with its NUL). */
const UNIX_PATH_MAX_BYTES = 107;

/**
 * libvirt's per-domain channel directory, `channel_target_dir/domain-ID-NAME` (the name cut to
 * 20 characters, virDomainDefGetShortName); the test suite's domains have the id -1.
 */
export function libvirtChannelTargetDir(id: number, name: string): string {
  return `${LIBVIRT_CHANNEL_TARGET_DIR}/domain-${id}-${[...name].slice(0, 20).join("")}`;
}

/** Where the builder puts what libvirt's daemon would make for character devices. */
export interface ChardevOptions {
  /**
   * The directory of the unix sockets of virtio channels written without `<source path>`
   * (`DIR/TARGET-NAME`, or `DIR/vioser-CC-BB-PP.sock` without a target name, as libvirt's
   * qemuDomainPrepareChannel); the QEMU-direct backend gives its per-domain state directory.
   */
  readonly channelTargetDir: string;
}

/** The key of a virtio-serial controller libvirt adds (for the PCI slot table), by index. */
const IMPLICIT_VIRTIO_SERIAL_KEYS = new Map<number, object>();

/** The key of the implicit virtio-serial controller of an index (for the PCI slot table). */
export function implicitVirtioSerialKey(index: number): object {
  let k = IMPLICIT_VIRTIO_SERIAL_KEYS.get(index);
  if (!k) IMPLICIT_VIRTIO_SERIAL_KEYS.set(index, (k = Object.freeze({ implicit: `virtio-serial${index}` })));
  return k;
}

/** A port of a virtio-serial controller: `virtio-serialCONTROLLER.0`, `nr` PORT. */
export interface VirtioSerialAddress {
  readonly controller: number;
  readonly port: number;
}

/** The virtio-serial layout of a definition: the controllers libvirt adds and every virtio channel's port. */
export interface VirtioSerialLayout {
  /** Indexes of the virtio-serial controllers libvirt adds (none written with that index), ascending. */
  readonly implicit: number[];
  /** Per `<channel>` (document order): its port, for virtio channels. */
  readonly channels: (VirtioSerialAddress | undefined)[];
}

/** QEMU's default number of ports of a virtio-serial controller (libvirt's too). */
const DEFAULT_VIRTIO_SERIAL_PORTS = 31;

const isVirtio = (el: XmlElement) => getAttr(firstChild(el, "target"), "type") === "virtio";

/**
 * Lays out virtio-serial ports as libvirt does: a virtio channel or console on a controller index
 * no `<controller type='virtio-serial'>` states adds that controller (index 0 without an address,
 * virDomainDefMaybeAddVirtioSerialController); written ports are reserved; then each channel
 * without a port takes the next free port from 1 (of its written controller, or of the first
 * controller with one free, or of a controller libvirt adds at the lowest free index:
 * virDomainVirtioSerialAddrNext). Consoles get no port (QEMU numbers virtconsoles itself).
 */
export function virtioSerialLayout(devs: Pick<DeviceElements, "of">): VirtioSerialLayout {
  const ports = new Map<number, boolean[]>();
  const written = new Set<number>();
  devs.of("controller").forEach((el, i) => {
    if (getAttr(el, "type") !== "virtio-serial") return;
    const path = `/domain/devices/controller[${i + 1}]`;
    const index = xmlWholeNumber(`${path}/@index`, getAttr(el, "index") ?? "0", 0, 65535, "write e.g. index='0'");
    const n = getAttr(el, "ports");
    const max =
      n === undefined
        ? DEFAULT_VIRTIO_SERIAL_PORTS
        : xmlWholeNumber(`${path}/@ports`, n, 1, 31, "write e.g. ports='16'");
    written.add(index);
    ports.set(index, new Array<boolean>(max).fill(false));
  });
  const implicit = new Set<number>();
  const addController = (index: number) => {
    if (ports.has(index)) return;
    implicit.add(index);
    ports.set(index, new Array<boolean>(DEFAULT_VIRTIO_SERIAL_PORTS).fill(false));
  };
  // the address each virtio channel states: complete (a port), a controller only, or none
  const channels = devs.of("channel");
  const wanted = channels.map((el, i) => {
    if (!isVirtio(el)) return undefined;
    const path = `/domain/devices/channel[${i + 1}]/address`;
    const a = firstChild(el, "address");
    if (!a) return { path, controller: undefined, port: undefined };
    if (getAttr(a, "type") !== "virtio-serial")
      throw unsupported(
        `${path}/@type`,
        getAttr(a, "type"),
        "a virtio channel is on a virtio-serial port: write type='virtio-serial'",
      );
    const controller = xmlWholeNumber(
      `${path}/@controller`,
      getAttr(a, "controller") ?? "0",
      0,
      65535,
      "write e.g. controller='0'",
    );
    const p = getAttr(a, "port");
    if (p === undefined) return { path, controller, port: undefined };
    const bus = getAttr(a, "bus") ?? "0";
    if (bus !== "0" && bus !== "0x0")
      throw unsupported(
        `${path}/@bus`,
        bus,
        "a virtio-serial controller has one bus, 0: write bus='0' or leave it out",
      );
    const port = xmlWholeNumber(
      `${path}/@port`,
      p,
      1,
      30,
      "write a port from 1 (port 0 is a virtio console's) to the controller's ports - 1",
      "not a virtio-serial port of a channel",
    );
    return { path, controller, port };
  });
  for (const w of wanted) if (w) addController(w.controller ?? 0);
  devs.of("console").forEach((el) => {
    if (isVirtio(el)) addController(0);
  });
  const sorted = () => [...ports.keys()].sort((a, b) => a - b);
  // the written ports first
  for (const w of wanted) {
    if (!w || w.port === undefined) continue;
    const map = ports.get(w.controller)!;
    if (w.port >= map.length)
      throw new DomainXmlError("virtio-serial port beyond the controller's ports", {
        path: `${w.path}/@port`,
        value: String(w.port),
        allowed: `1 to ${map.length - 1} (virtio-serial${w.controller} has ${map.length} ports)`,
        fix: `raise <controller type='virtio-serial' index='${w.controller}' ports=...>, or write a lower port`,
      });
    if (map[w.port])
      throw new DomainXmlError("virtio-serial port already in use", {
        path: `${w.path}/@port`,
        value: String(w.port),
        fix: "give each channel its own port, or leave port out (libvirt and the builder pick a free one)",
      });
    map[w.port] = true;
  }
  const freeOn = (index: number) => {
    const map = ports.get(index)!;
    const p = map.findIndex((used, n) => n >= 1 && !used);
    if (p < 0) return undefined;
    map[p] = true;
    return p;
  };
  const out = wanted.map((w): VirtioSerialAddress | undefined => {
    if (!w) return undefined;
    if (w.port !== undefined) return { controller: w.controller, port: w.port };
    if (w.controller !== undefined) {
      const port = freeOn(w.controller);
      if (port === undefined)
        throw new DomainXmlError("no free port on the virtio-serial controller", {
          path: `${w.path}/@controller`,
          value: String(w.controller),
          fix: `raise <controller type='virtio-serial' index='${w.controller}' ports=...>, or put the channel on another controller`,
        });
      return { controller: w.controller, port };
    }
    for (const index of sorted()) {
      const port = freeOn(index);
      if (port !== undefined) return { controller: index, port };
    }
    let index = 0;
    while (ports.has(index)) index++;
    addController(index);
    ports.get(index)![1] = true;
    return { controller: index, port: 1 };
  });
  return { implicit: [...implicit].filter((i) => !written.has(i)).sort((a, b) => a - b), channels: out };
}

/**
 * Whether the first console (a serial target) states nothing its serial port does not: the same
 * type, and each attribute of its `<source>`s, `<protocol>` and `<address>` equal to the serial's
 * (libvirt makes that console an alias of the serial, virDomainDefAddConsoleCompat: anything else
 * the console says would be dropped).
 */
function consoleMatchesSerial(console: XmlElement, serial: XmlElement): boolean {
  if ((getAttr(console, "type") ?? "pty") !== (getAttr(serial, "type") ?? "pty")) return false;
  const subset = (a: XmlElement | undefined, b: XmlElement | undefined) =>
    !a || a.attrs.every((x) => getAttr(b, x.name) === x.value);
  const cs = childElements(console, "source");
  const ss = childElements(serial, "source");
  // a pty's source path is the pty the running domain got (runtime state)
  if (getAttr(console, "type") !== "pty" && !cs.every((c, i) => subset(c, ss[i]))) return false;
  for (const n of ["protocol", "address"]) if (!subset(firstChild(console, n), firstChild(serial, n))) return false;
  return true;
}

/**
 * A character device backend as libvirt writes it (qemuBuildChardevCommandLine): pty, null, vc,
 * stdio, a host serial or parallel port (`dev`), a file (`append`), a pipe, a unix socket, a TCP
 * socket (`mode='bind'` listens: `server=on,wait=off`; `connect` connects; `<protocol
 * type='telnet'>` is `telnet=on`) and UDP (the `connect` source is the peer, the `bind` source
 * the local end). TLS, logs, reconnect and the rest are refused (the paths table names them).
 * `sourcePath` is the path to use (written, or made by the caller).
 */
export function chardevBackend(
  type: string | undefined,
  id: string,
  sourcePath: string | undefined,
  path: string,
  el?: XmlElement,
): string {
  return backend(type, id, sourcePath, path, el) + logOptions(el, path);
}

/**
 * `<log file append>`: QEMU copies what the device sends to that file (`logfile=`, `logappend=`);
 * libvirt opens it itself and passes it as `/dev/fdset/N` (a listed fd-passing difference).
 */
function logOptions(el: XmlElement | undefined, path: string): string {
  const log = el && firstChild(el, "log");
  if (!log) return "";
  const file = getAttr(log, "file");
  if (!file)
    throw unsupported(
      `${path}/log/@file`,
      file,
      "write the file QEMU logs the device's output to, e.g. <log file='/var/log/guest-serial.log'/>",
    );
  const append = getAttr(log, "append");
  if (append !== undefined && append !== "on" && append !== "off")
    throw unsupported(`${path}/log/@append`, append, "write append='on' or 'off'");
  return `,logfile=${qemuOptEscape(file)}${append === undefined ? "" : `,logappend=${append}`}`;
}

function backend(
  type: string | undefined,
  id: string,
  sourcePath: string | undefined,
  path: string,
  el: XmlElement | undefined,
): string {
  const source = el && firstChild(el, "source");
  const mode = getAttr(source, "mode");
  const listen = (defaultMode: string) => {
    const m = mode ?? defaultMode;
    if (m !== "bind" && m !== "connect") throw unsupported(`${path}/source/@mode`, m, "write mode='bind' or 'connect'");
    return m === "bind" ? ",server=on,wait=off" : "";
  };
  const sourcePathArg = () => {
    if (sourcePath) return qemuOptEscape(sourcePath);
    throw unsupported(
      `${path}/source/@path`,
      undefined,
      "write the path QEMU should use, e.g. <source mode='bind' path='/run/guest.sock'/>, or apply through libvirt",
    );
  };
  const service = (src: XmlElement | undefined, at: string) =>
    xmlWholeNumber(`${at}/@service`, getAttr(src, "service"), 0, 65535, "write e.g. service='9999'");
  switch (type) {
    case "pty":
      return `pty,id=${id}`;
    case "null":
      return `null,id=${id}`;
    case "vc":
      return `vc,id=${id}`;
    case "stdio":
      return `stdio,id=${id}`;
    case "dev":
      return `${id.startsWith("charparallel") ? "parallel" : "serial"},id=${id},path=${sourcePathArg()}`;
    case "file": {
      const append = getAttr(source, "append");
      if (append !== undefined && append !== "on" && append !== "off")
        throw unsupported(`${path}/source/@append`, append, "write append='on' or 'off'");
      return `file,id=${id},path=${sourcePathArg()}${append === undefined ? "" : `,append=${append}`}`;
    }
    case "pipe":
      return `pipe,id=${id},path=${sourcePathArg()}`;
    case "spiceport": {
      // SPICE's port named by <source channel> (the caller checks that SPICE graphics exist)
      const channel = getAttr(source, "channel");
      if (!channel)
        throw unsupported(
          `${path}/source/@channel`,
          channel,
          "write the SPICE port's name, e.g. <source channel='org.qemu.console.serial.0'/>",
        );
      return `spiceport,id=${id},name=${qemuOptEscape(channel)}`;
    }
    case "unix":
      return `socket,id=${id},path=${sourcePathArg()}${listen("bind")}`;
    case "tcp": {
      const protocol = getAttr(el && firstChild(el, "protocol"), "type") ?? "raw";
      if (protocol !== "raw" && protocol !== "telnet")
        throw unsupported(`${path}/protocol/@type`, protocol, "use protocol raw or telnet");
      const host = getAttr(source, "host") ?? "";
      const port = service(source, `${path}/source`);
      return `socket,id=${id},host=${qemuOptEscape(host)},port=${port}${protocol === "telnet" ? ",telnet=on" : ""}${listen("connect")}`;
    }
    case "udp": {
      // libvirt's parser: a source without mode (or mode='connect') is the peer, mode='bind' the local end
      const sources = el ? childElements(el, "source") : [];
      const at = (s: XmlElement) => `${path}/source[${sources.indexOf(s) + 1}]`;
      sources.forEach((s) => {
        const m = getAttr(s, "mode");
        if (m !== undefined && m !== "bind" && m !== "connect")
          throw unsupported(`${at(s)}/@mode`, m, "write mode='bind' or 'connect'");
      });
      const peer = sources.find((s) => (getAttr(s, "mode") ?? "connect") === "connect");
      const local = sources.find((s) => getAttr(s, "mode") === "bind");
      if (!peer)
        throw unsupported(
          `${path}/source`,
          undefined,
          "a UDP character device needs the peer: <source mode='connect' host='...' service='...'/>",
        );
      const localPort = local && getAttr(local, "service") !== undefined ? service(local, at(local)) : 0;
      return (
        `udp,id=${id},host=${qemuOptEscape(getAttr(peer, "host") ?? "")},port=${service(peer, at(peer))}` +
        `,localaddr=${qemuOptEscape(getAttr(local, "host") ?? "")},localport=${localPort}`
      );
    }
    default:
      throw unsupported(
        `${path}/@type`,
        type,
        "use a pty, null, vc, stdio, dev, file, pipe, unix, tcp, udp or spiceport character device",
      );
  }
}

/** `<parallel>` ports as libvirt writes them: a chardev and an `isa-parallel` each. */
export function buildParallels(add: Add, devs: Pick<DeviceElements, "of">): void {
  devs.of("parallel").forEach((el, i) => {
    const path = `/domain/devices/parallel[${i + 1}]`;
    const id = `charparallel${i}`;
    const src = firstChild(el, "source");
    if (getAttr(el, "type") === "spiceport" && !devs.of("graphics").some((g) => getAttr(g, "type") === "spice"))
      throw unsupported(
        `${path}/@type`,
        "spiceport",
        "a spiceport needs <graphics type='spice'>: add it, or use a pty",
      );
    add("-chardev", chardevBackend(getAttr(el, "type"), id, getAttr(src, "path"), path, el));
    add("-device", JSON.stringify({ driver: "isa-parallel", chardev: id, id: `parallel${i}` }));
  });
}

/** The serial port of a `<serial>` (its `<target port>`, else one above the highest, libvirt's post-parse). */
function serialIndexes(serials: readonly XmlElement[]): number[] {
  const out: number[] = [];
  serials.forEach((el, i) => {
    const p = getAttr(firstChild(el, "target"), "port");
    if (p !== undefined)
      out.push(xmlWholeNumber(`/domain/devices/serial[${i + 1}]/target/@port`, p, 0, 3, "write a port from 0 to 3"));
    else out.push(Math.max(-1, ...out) + 1);
  });
  return out;
}

/** The serial target types the builder makes, each a QEMU device of the same model name (libvirt's). */
const SERIAL_DEVICES: Readonly<Record<string, string>> = {
  "isa-serial": "isa-serial",
  "isa-debug": "isa-debugcon",
  "pci-serial": "pci-serial",
};

/**
 * The device of a `<serial>` (libvirt's qemuBuildChrDeviceProps): `isa-serial` with its index
 * and an ISA address's `iobase`/`irq`, `isa-debugcon` (target type isa-debug) at its `iobase`,
 * or `pci-serial` at its written PCI address; the `<target><model>` must be the target's model.
 */
function serialDevice(
  el: XmlElement,
  path: string,
  id: string,
  n: number,
  index: number,
  devs: DeviceElements,
): Record<string, unknown> {
  const target = firstChild(el, "target");
  // a console standing for serial 0 (no <serial> written) has the console's target type, serial
  const type = el.name === "console" ? "isa-serial" : (getAttr(target, "type") ?? "isa-serial");
  const driver = SERIAL_DEVICES[type];
  if (!driver)
    throw unsupported(
      `${path}/target/@type`,
      type,
      `the builder makes ${Object.keys(SERIAL_DEVICES).join(", ")} serial ports: use one, or apply through libvirt`,
    );
  const model = target && el.name !== "console" ? firstChild(target, "model") : undefined;
  if (model && getAttr(model, "name") !== driver)
    throw unsupported(
      `${path}/target/model/@name`,
      getAttr(model, "name"),
      `a ${type} serial port is model ${driver}: write name='${driver}' or leave <model> out`,
    );
  const dev: Record<string, unknown> = { driver, chardev: id, id: `serial${n}` };
  if (driver === "isa-serial") dev.index = index;
  const a = firstChild(el, "address");
  if (driver === "pci-serial") {
    if (!a)
      throw unsupported(
        `${path}/address`,
        undefined,
        "write the PCI address of a pci-serial port, e.g. <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>",
      );
    return { ...dev, ...pciAddressProps(el, path, devs) };
  }
  if (a) {
    if (getAttr(a, "type") !== "isa")
      throw unsupported(
        `${path}/address/@type`,
        getAttr(a, "type"),
        "an ISA serial port has an ISA address: write type='isa'",
      );
    const other = a.attrs.find((x) => !["type", "iobase", "irq"].includes(x.name));
    if (other)
      throw unsupported(
        `${path}/address/@${other.name}`,
        other.value,
        "an ISA address has iobase and irq only: remove it",
      );
    for (const k of ["iobase", "irq"]) {
      const v = getAttr(a, k);
      if (v === undefined) continue;
      if (k === "irq" && driver === "isa-debugcon")
        throw unsupported(`${path}/address/@irq`, v, "a debug console has no IRQ: remove irq");
      const num = libvirtUint(v);
      if (!Number.isSafeInteger(num) || num > (k === "irq" ? 15 : 0xffff))
        throw new DomainXmlError("not an ISA address", {
          path: `${path}/address/@${k}`,
          value: v,
          allowed: k === "irq" ? "an IRQ from 0 to 15" : "an I/O port from 0x0 to 0xffff",
          fix: `write e.g. ${k === "irq" ? "irq='0x4'" : "iobase='0x3f8'"}`,
        });
      dev[k] = num;
    }
  }
  return dev;
}

/**
 * Serial ports, consoles and channels as libvirt writes them: `isa-serial` per `<serial>`; a
 * console with a serial target is the first serial port (libvirt's console compat: without a
 * `<serial>`, it becomes serial 0, virDomainDefAddConsoleCompat; with one, it must state the same
 * source); a virtio console a `virtconsole`; a virtio channel a `virtserialport` on the port
 * {@link virtioSerialLayout} gives it (its unix socket in `channelTargetDir` when no path is
 * written), SPICE's agent (`spicevmc`) or QEMU's own (`qemu-vdagent`) included; a guestfwd
 * channel a user-mode netdev forwarding the guest's address and port to the chardev.
 */
export function buildChardevs(add: Add, devs: DeviceElements, opts: ChardevOptions): void {
  const serials = devs.of("serial");
  const consoles = devs.of("console");
  const spice = devs.of("graphics").some((g) => getAttr(g, "type") === "spice");
  const spiceOnly = (el: XmlElement, path: string) => {
    if (getAttr(el, "type") === "spiceport" && !spice)
      throw unsupported(
        `${path}/@type`,
        "spiceport",
        "a spiceport needs <graphics type='spice'>: add it, or use a pty",
      );
  };
  const consoleTarget = (el: XmlElement | undefined) =>
    getAttr(firstChild(el ?? consoles[0]!, "target"), "type") ?? "serial";
  const [first] = consoles;
  const compat = serials.length === 0 && first !== undefined && consoleTarget(first) === "serial";
  if (first && serials[0] && consoleTarget(first) === "serial") {
    // libvirt replaces that console's source with the first serial's: a different one would be dropped
    if (!consoleMatchesSerial(first, serials[0]))
      throw unsupported(
        "/domain/devices/console[1]/source",
        getAttr(first, "type"),
        "the first console is the first serial port: give it the same type and <source> as <serial>, or leave its <source> out",
      );
  }
  const ports = compat
    ? [{ el: first, path: "/domain/devices/console[1]", index: 0 }]
    : (() => {
        const idx = serialIndexes(serials);
        return serials.map((el, i) => ({ el, path: `/domain/devices/serial[${i + 1}]`, index: idx[i]! }));
      })();
  if (compat && firstChild(first, "address"))
    throw unsupported(
      "/domain/devices/console[1]/address",
      undefined,
      "write the address on a <serial> (the first console is its alias), or remove it",
    );
  ports.forEach(({ el, path, index }, i) => {
    const id = `charserial${i}`;
    spiceOnly(el, path);
    add("-chardev", chardevBackend(getAttr(el, "type"), id, getAttr(firstChild(el, "source"), "path"), path, el));
    add("-device", JSON.stringify(serialDevice(el, path, id, i, index, devs)));
  });
  const layout = virtioSerialLayout(devs);
  for (const n of layout.implicit)
    add(
      "-device",
      JSON.stringify({
        driver: "virtio-serial-pci",
        id: `virtio-serial${n}`,
        ...pciAddressProps(undefined, "/domain/devices", devs, implicitVirtioSerialKey(n)),
      }),
    );
  consoles.forEach((el, i) => {
    const path = `/domain/devices/console[${i + 1}]`;
    const target = consoleTarget(el);
    // A console with a serial target is the first serial port itself (libvirt merges them).
    if (target === "serial" && i === 0 && ports.length > 0) return;
    if (target === "virtio") {
      if (firstChild(el, "address"))
        throw unsupported(
          `${path}/address`,
          undefined,
          "QEMU numbers virtio consoles itself (libvirt gives them no address): remove <address>",
        );
      // with a serial port, libvirt puts the serial's console first (virDomainDefAddConsoleCompat)
      const n = i + (ports.length > 0 && consoleTarget(first) !== "serial" ? 1 : 0);
      const id = `charconsole${n}`;
      spiceOnly(el, path);
      add("-chardev", chardevBackend(getAttr(el, "type"), id, getAttr(firstChild(el, "source"), "path"), path, el));
      add("-device", JSON.stringify({ driver: "virtconsole", chardev: id, id: `console${n}` }));
      return;
    }
    throw unsupported(
      `${path}/target/@type`,
      getAttr(firstChild(el, "target"), "type"),
      "use a virtio console, or a serial one as the first console",
    );
  });
  devs.of("channel").forEach((el, i) => {
    const path = `/domain/devices/channel[${i + 1}]`;
    const target = firstChild(el, "target");
    const targetType = getAttr(target, "type");
    const type = getAttr(el, "type");
    const id = `charchannel${i}`;
    spiceOnly(el, path);
    if (targetType === "guestfwd") {
      add("-chardev", channelBackend(el, type, id, path, undefined, spice, opts));
      add(
        "-netdev",
        JSON.stringify({ type: "user", guestfwd: [{ str: guestfwd(target!, path, id) }], id: `channel${i}` }),
      );
      return;
    }
    if (targetType !== "virtio")
      throw unsupported(`${path}/target/@type`, targetType, "use a virtio or guestfwd channel");
    const a = layout.channels[i]!;
    const agent = type === "spicevmc" || type === "qemu-vdagent";
    const name = getAttr(target, "name") ?? (agent ? "com.redhat.spice.0" : undefined);
    const made = type === "unix" && getAttr(firstChild(el, "source"), "path") === undefined;
    // the made path is DIR/NAME: a name must stay a file name in that directory
    if (made && name !== undefined && (name.includes("/") || name === "." || name === ".." || name === ""))
      throw new DomainXmlError("a channel name that is no file name cannot name its socket", {
        path: `${path}/target/@name`,
        value: name,
        allowed: "a name without '/', other than '.' and '..' (e.g. org.qemu.guest_agent.0)",
        fix: "write the socket's path, <source mode='bind' path='...'/>, or a name without '/'",
      });
    const generated = made
      ? `${opts.channelTargetDir}/${name ?? `vioser-${pad(a.controller)}-00-${pad(a.port)}.sock`}`
      : undefined;
    add("-chardev", channelBackend(el, type, id, path, generated, spice, opts));
    add(
      "-device",
      JSON.stringify({
        driver: "virtserialport",
        bus: `virtio-serial${a.controller}.0`,
        nr: a.port,
        chardev: id,
        id: `channel${i}`,
        name,
      }),
    );
  });
}

const pad = (n: number) => String(n).padStart(2, "0");

/** A channel's chardev: the agents' own backends, else {@link chardevBackend} (with a made unix path). */
function channelBackend(
  el: XmlElement,
  type: string | undefined,
  id: string,
  path: string,
  generated: string | undefined,
  spice: boolean,
  opts: ChardevOptions,
): string {
  if (type === "spicevmc") {
    if (!spice)
      throw unsupported(
        `${path}/@type`,
        type,
        "a spicevmc channel needs <graphics type='spice'>: add it, or use a qemu-vdagent or unix channel",
      );
    return `spicevmc,id=${id},name=vdagent${logOptions(el, path)}`;
  }
  if (type === "qemu-vdagent") {
    const source = firstChild(el, "source");
    const copypaste = getAttr(firstChild(source ?? el, "clipboard"), "copypaste");
    const mouse = getAttr(firstChild(source ?? el, "mouse"), "mode");
    if (source && copypaste !== undefined && copypaste !== "yes" && copypaste !== "no")
      throw unsupported(`${path}/source/clipboard/@copypaste`, copypaste, "write copypaste='yes' or 'no'");
    if (source && mouse !== undefined && mouse !== "client" && mouse !== "server")
      throw unsupported(`${path}/source/mouse/@mode`, mouse, "write mode='client' or 'server'");
    return (
      `qemu-vdagent,id=${id},name=vdagent` +
      (source && copypaste !== undefined ? `,clipboard=${copypaste === "yes" ? "on" : "off"}` : "") +
      (source && mouse !== undefined ? `,mouse=${mouse === "client" ? "on" : "off"}` : "") +
      logOptions(el, path)
    );
  }
  if (generated !== undefined && Buffer.byteLength(generated) > UNIX_PATH_MAX_BYTES)
    throw new DomainXmlError("the channel's unix socket path is too long", {
      path: `${path}/source/@path`,
      value: generated,
      allowed: `at most ${UNIX_PATH_MAX_BYTES} bytes (a unix socket's path)`,
      fix: `write a shorter <source mode='bind' path='...'/>, or use a shorter state directory than ${opts.channelTargetDir}`,
    });
  return chardevBackend(type, id, generated ?? getAttr(firstChild(el, "source"), "path"), path, el);
}

/** A guestfwd channel's forward, `tcp:ADDRESS:PORT-chardev:ID` (an IPv4 address of the user network). */
function guestfwd(target: XmlElement, path: string, id: string): string {
  const address = getAttr(target, "address");
  if (
    address === undefined ||
    !/^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}$/.test(address)
  )
    throw new DomainXmlError("not an IPv4 address of the guest's user network", {
      path: `${path}/target/@address`,
      value: address ?? "",
      allowed: "an IPv4 address, e.g. 10.0.2.1",
      fix: "write the guest-side address to forward, e.g. <target type='guestfwd' address='10.0.2.1' port='4600'/>",
    });
  const port = xmlWholeNumber(`${path}/target/@port`, getAttr(target, "port"), 1, 65535, "write e.g. port='4600'");
  return `tcp:${address}:${port}-chardev:${id}`;
}
