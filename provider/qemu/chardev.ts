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

/** The attributes of the `<source>` elements of a character device, for comparing two of them. */
function sourceKey(el: XmlElement): string {
  const sources = childElements(el, "source").map((s) =>
    s.attrs
      .map((a) => `${a.name}=${a.value}`)
      .sort()
      .join(","),
  );
  return [getAttr(firstChild(el, "protocol"), "type") ?? "", ...sources].join(";");
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
        "use a pty, null, vc, stdio, dev, file, pipe, unix, tcp or udp character device",
      );
  }
}

/** `<parallel>` ports as libvirt writes them: a chardev and an `isa-parallel` each. */
export function buildParallels(add: Add, devs: Pick<DeviceElements, "of">): void {
  devs.of("parallel").forEach((el, i) => {
    const path = `/domain/devices/parallel[${i + 1}]`;
    const id = `charparallel${i}`;
    const src = firstChild(el, "source");
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

/** A `<serial>` on the ISA bus (`isa-serial`, the PC machine's): its target type and model are checked. */
function checkIsaSerial(el: XmlElement, path: string): void {
  const target = firstChild(el, "target");
  const type = getAttr(target, "type");
  if (type !== undefined && type !== "isa-serial")
    throw unsupported(
      `${path}/target/@type`,
      type,
      "the builder makes ISA serial ports: write type='isa-serial' or leave it out",
    );
  const model = firstChild(target ?? el, "model");
  const name = model && getAttr(model, "name");
  if (model && name !== "isa-serial")
    throw unsupported(
      `${path}/target/model/@name`,
      name,
      "an ISA serial port is model isa-serial: write name='isa-serial' or leave <model> out",
    );
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
  const consoleTarget = (el: XmlElement | undefined) =>
    getAttr(firstChild(el ?? consoles[0]!, "target"), "type") ?? "serial";
  const [first] = consoles;
  const compat = serials.length === 0 && first !== undefined && consoleTarget(first) === "serial";
  if (first && serials[0] && consoleTarget(first) === "serial") {
    // libvirt replaces that console's source with the first serial's: a different one would be dropped
    const differs =
      (getAttr(first, "type") ?? "pty") !== (getAttr(serials[0], "type") ?? "pty") ||
      (childElements(first, "source").length > 0 &&
        getAttr(first, "type") !== "pty" &&
        sourceKey(first) !== sourceKey(serials[0]));
    if (differs)
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
  ports.forEach(({ el, path, index }, i) => {
    if (!compat) checkIsaSerial(el, path);
    const id = `charserial${i}`;
    add("-chardev", chardevBackend(getAttr(el, "type"), id, getAttr(firstChild(el, "source"), "path"), path, el));
    add("-device", JSON.stringify({ driver: "isa-serial", chardev: id, id: `serial${i}`, index }));
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
      // with a serial port, libvirt puts the serial's console first (virDomainDefAddConsoleCompat)
      const n = i + (ports.length > 0 && consoleTarget(first) !== "serial" ? 1 : 0);
      const id = `charconsole${n}`;
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
  const spice = devs.of("graphics").some((g) => getAttr(g, "type") === "spice");
  devs.of("channel").forEach((el, i) => {
    const path = `/domain/devices/channel[${i + 1}]`;
    const target = firstChild(el, "target");
    const targetType = getAttr(target, "type");
    const type = getAttr(el, "type");
    const id = `charchannel${i}`;
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
    const generated =
      type === "unix" && getAttr(firstChild(el, "source"), "path") === undefined
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
    return `spicevmc,id=${id},name=vdagent`;
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
      (source && mouse !== undefined ? `,mouse=${mouse === "client" ? "on" : "off"}` : "")
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
