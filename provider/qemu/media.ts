/**
 * Audio backends (`<audio>`), sound cards (`<sound>`) and the graphics other than VNC (`<graphics
 * type='spice|sdl|egl-headless|dbus'>`) on the QEMU command line, as libvirt's QEMU driver writes
 * them (qemuBuildAudioCommandLine, qemuBuildSoundCommandLine, qemuBuildGraphicsCommandLine in
 * `src/qemu/qemu_command.c`; the corpus `.args` files are the oracle). Called from
 * {@link buildQemuArgv} (provider/qemu/argv.ts), one line per family; what cannot be expressed
 * without libvirt is a {@link DomainXmlError} naming the element.
 *
 * Pure: no I/O.
 */
import { DomainXmlError } from "../xml/errors";
import { XmlElement, childElements, element, firstChild, getAttr } from "../xml/tree";
import { unsupported } from "./argv";

/** What the media builders need from the command line builder. */
export interface MediaContext {
  /** Appends arguments. */
  readonly add: (...a: string[]) => void;
  /** The environment QEMU runs with (`SDL_AUDIODRIVER`, `DISPLAY`, ...). */
  readonly env: Record<string, string>;
  /** The `<devices>` children of a name, in document order. */
  of(name: string): XmlElement[];
  /** The `bus`/`addr` of a PCI device as libvirt lays it out (written address or assigned slot). */
  pci(el: XmlElement, path: string): Record<string, unknown>;
  /**
   * Where a graphics `<listen type='socket'>` without `socket` makes its socket (`vnc.sock`,
   * `spice.sock`): the domain's run directory (libvirt: its per-run domain directory).
   */
  socketDir?: string;
  /**
   * The next free TCP port for a SPICE graphics with `autoport='yes'` (QEMU cannot pick one
   * itself; libvirt takes one from 5900 up): the QEMU-direct backend's free ports, else 5900 up.
   */
  autoPort?: () => number;
}

function invalid(path: string, value: string | undefined, allowed: string, fix: string): DomainXmlError {
  return new DomainXmlError("invalid value", { path, value, allowed, fix });
}

/** A whole number from `min` to `max`. */
function whole(path: string, value: string, min: number, max: number, fix: string): number {
  const n = /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw invalid(path, value, `a whole number from ${min} to ${max}`, fix);
  return n;
}

/** `yes`/`no` as a boolean. */
function yesNo(path: string, value: string): boolean {
  if (value !== "yes" && value !== "no") throw invalid(path, value, "yes, no", "write 'yes' or 'no'");
  return value === "yes";
}

/** `on`/`off` as a boolean. */
function onOff(path: string, value: string): boolean {
  if (value !== "on" && value !== "off") throw invalid(path, value, "on, off", "write 'on' or 'off'");
  return value === "on";
}

/** Refuses any attribute of `el` not in `allowed`. */
function onlyAttrs(el: XmlElement, path: string, allowed: readonly string[], what: string): void {
  for (const a of el.attrs)
    if (!allowed.includes(a.name))
      throw unsupported(`${path}/@${a.name}`, a.value, `${what} takes ${allowed.join(", ")}: remove it`);
}

// ---------------------------------------------------------------------------------------------
// <audio>

/** libvirt's audio types and QEMU's audiodev driver for each. */
const AUDIO_DRIVERS: Readonly<Record<string, string>> = {
  none: "none",
  alsa: "alsa",
  coreaudio: "coreaudio",
  jack: "jack",
  oss: "oss",
  pulseaudio: "pa",
  sdl: "sdl",
  spice: "spice",
  file: "wav",
  dbus: "dbus",
  pipewire: "pipewire",
};

type Conv = (path: string, value: string) => unknown;
const num: Conv = (p, v) => whole(p, v, 0, 4294967295, "write a whole number");
/** libvirt's parser: "Zero is not permitted" for voices and bufferLength. */
const positive: Conv = (p, v) => whole(p, v, 1, 4294967295, "write a whole number from 1 (zero is not permitted)");
const str: Conv = (_, v) => v;
const bool: Conv = yesNo;

/** Attributes of `<audio>` per type: XML name -> [audiodev property, conversion]. */
const AUDIO_ATTRS: Readonly<Record<string, Readonly<Record<string, [string, Conv]>>>> = {
  oss: { tryMMap: ["try-mmap", bool], exclusive: ["exclusive", bool], dspPolicy: ["dsp-policy", num] },
  pulseaudio: { serverName: ["server", str] },
  file: { path: ["path", str] },
};

/** Attributes of `<input>`/`<output>` every type takes. */
const DIRECTION_COMMON: Readonly<Record<string, [string, Conv]>> = {
  mixingEngine: ["mixing-engine", bool],
  fixedSettings: ["fixed-settings", bool],
  voices: ["voices", positive],
  bufferLength: ["buffer-length", positive],
};

/** Attributes of `<input>`/`<output>` per type. */
const DIRECTION_ATTRS: Readonly<Record<string, Readonly<Record<string, [string, Conv]>>>> = {
  alsa: { dev: ["dev", str] },
  coreaudio: { bufferCount: ["buffer-count", num] },
  jack: {
    serverName: ["server-name", str],
    clientName: ["client-name", str],
    connectPorts: ["connect-ports", str],
    exactName: ["exact-name", bool],
  },
  oss: { dev: ["dev", str], bufferCount: ["buffer-count", num], tryPoll: ["try-poll", bool] },
  pulseaudio: { name: ["name", str], streamName: ["stream-name", str], latency: ["latency", num] },
  pipewire: { name: ["name", str], streamName: ["stream-name", str], latency: ["latency", num] },
  sdl: { bufferCount: ["buffer-count", num] },
};

const AUDIO_FORMATS = ["s8", "u8", "s16", "u16", "s32", "u32", "f32"];

/** One audio backend of the domain: its id (`audioN`) and libvirt type. */
export interface AudioBackend {
  readonly id: number;
  readonly type: string;
}

/**
 * The audio backends: the written `<audio>` elements, or the one libvirt adds when none is written
 * (qemuDomainDefAddDefaultAudioBackend, post-parse): id 1 when there is a sound card, VNC, SPICE
 * or no graphics at all; of type `spice` with SPICE graphics, else `none`. With SDL graphics
 * (last) libvirt passes the host's backend through from its environment (QEMU_AUDIO_DRV), host
 * configuration the QEMU-direct backend does not read: no backend is added.
 */
export function audioBackends(of: (name: string) => XmlElement[]): AudioBackend[] {
  const written = of("audio");
  if (written.length > 0)
    return written.map((a, i) => ({
      id: whole(`/domain/devices/audio[${i + 1}]/@id`, getAttr(a, "id") ?? "", 1, 65535, "write e.g. id='1'"),
      type: getAttr(a, "type") ?? "",
    }));
  const graphics = of("graphics");
  let add = of("sound").length > 0 || graphics.length === 0;
  let type = "none";
  let passthrough = false;
  for (const g of graphics) {
    const t = getAttr(g, "type");
    if (t === "vnc" || t === "spice") {
      add = true;
      passthrough = false;
      type = t === "spice" ? "spice" : "none";
    } else if (t === "sdl") {
      add = true;
      passthrough = true;
    }
  }
  // SDL passes the host's audio through (QEMU_AUDIO_DRV in libvirt's environment): none here
  return add && !passthrough ? [{ id: 1, type }] : [];
}

/** An error libvirt raises in the same words (`mirrorsLibvirt`). */
function asLibvirt(message: string, path: string, value: string | undefined, fix: string): DomainXmlError {
  return new DomainXmlError(message, { path, value, category: "unsupported configuration", mirrorsLibvirt: true, fix });
}

function directionProps(el: XmlElement, path: string, type: string): Record<string, unknown> {
  const table = { ...DIRECTION_COMMON, ...(DIRECTION_ATTRS[type] ?? {}) };
  onlyAttrs(el, path, Object.keys(table), `<${el.name}> of a ${type} audio backend`);
  // libvirt's rules (virDomainAudioIOCommonValidate's words)
  const fixed = getAttr(el, "fixedSettings");
  if (fixed === "yes" && getAttr(el, "mixingEngine") === "no")
    throw asLibvirt(
      "fixed audio settings requires mixing engine",
      `${path}/@mixingEngine`,
      "no",
      "write mixingEngine='yes' or drop fixedSettings='yes'",
    );
  const st = firstChild(el, "settings");
  if (fixed !== "yes" && st && st.attrs.length > 0)
    throw asLibvirt(
      "audio settings specified without fixed settings flag",
      `${path}/settings`,
      undefined,
      "write fixedSettings='yes' on <" + el.name + "> or remove <settings>",
    );
  const props: Record<string, unknown> = {};
  for (const [attr, [prop, conv]] of Object.entries(DIRECTION_COMMON)) {
    const v = getAttr(el, attr);
    if (v !== undefined) props[prop] = conv(`${path}/@${attr}`, v);
  }
  const settings = firstChild(el, "settings");
  if (settings) {
    const sp = `${path}/settings`;
    onlyAttrs(settings, sp, ["frequency", "channels", "format"], "<settings>");
    const f = getAttr(settings, "frequency");
    if (f !== undefined) props.frequency = whole(`${sp}/@frequency`, f, 1, 4294967295, "write e.g. frequency='44100'");
    const c = getAttr(settings, "channels");
    if (c !== undefined) props.channels = whole(`${sp}/@channels`, c, 1, 4294967295, "write e.g. channels='2'");
    const fmt = getAttr(settings, "format");
    if (fmt !== undefined) {
      if (!AUDIO_FORMATS.includes(fmt))
        throw invalid(`${sp}/@format`, fmt, AUDIO_FORMATS.join(", "), "write e.g. format='s16'");
      props.format = fmt;
    }
  }
  for (const [attr, [prop, conv]] of Object.entries(DIRECTION_ATTRS[type] ?? {})) {
    const v = getAttr(el, attr);
    if (v !== undefined) props[prop] = conv(`${path}/@${attr}`, v);
  }
  return props;
}

/**
 * `-audiodev` for every audio backend ({@link audioBackends}), as libvirt writes it: the driver,
 * `timer-period`, the type's own options, `in`/`out` from `<input>`/`<output>`; an SDL backend's
 * `driver` and a PipeWire backend's `runtimeDir` go to QEMU's environment (`SDL_AUDIODRIVER`,
 * `PIPEWIRE_RUNTIME_DIR`). Returns the backends.
 */
export function buildAudiodevs(ctx: MediaContext): AudioBackend[] {
  const backends = audioBackends((n) => ctx.of(n));
  const els = ctx.of("audio");
  const seen = new Set<number>();
  backends.forEach((b, i) => {
    const path = `/domain/devices/audio[${i + 1}]`;
    const driver = AUDIO_DRIVERS[b.type];
    if (driver === undefined)
      throw invalid(
        `${path}/@type`,
        b.type === "" ? undefined : b.type,
        Object.keys(AUDIO_DRIVERS).join(", "),
        "write e.g. type='none'",
      );
    if (seen.has(b.id))
      throw new DomainXmlError(`audio ID ${b.id} is used multiple times`, {
        path: `${path}/@id`,
        value: String(b.id),
        mirrorsLibvirt: true,
        fix: "give every <audio> its own id",
      });
    if (b.type === "spice" && !ctx.of("graphics").some((g) => getAttr(g, "type") === "spice"))
      throw asLibvirt(
        "Spice audio is not supported without spice graphics",
        `${path}/@type`,
        "spice",
        "add <graphics type='spice'> or use another audio type",
      );
    seen.add(b.id);
    const props: Record<string, unknown> = { id: `audio${b.id}`, driver };
    const el = els[i];
    if (el) {
      const own = AUDIO_ATTRS[b.type] ?? {};
      const extra = b.type === "sdl" ? ["driver"] : b.type === "pipewire" ? ["runtimeDir"] : [];
      onlyAttrs(el, path, ["id", "type", "timerPeriod", ...Object.keys(own), ...extra], `a ${b.type} audio backend`);
      const tp = getAttr(el, "timerPeriod");
      if (tp !== undefined)
        props["timer-period"] = whole(`${path}/@timerPeriod`, tp, 1, 4294967295, "write e.g. timerPeriod='50'");
      for (const [attr, [prop, conv]] of Object.entries(own)) {
        const v = getAttr(el, attr);
        if (v !== undefined) props[prop] = conv(`${path}/@${attr}`, v);
      }
      const sdlDriver = getAttr(el, "driver");
      if (b.type === "sdl" && sdlDriver !== undefined) {
        const allowed = ["esd", "alsa", "arts", "pulseaudio"];
        if (!allowed.includes(sdlDriver))
          throw invalid(`${path}/@driver`, sdlDriver, allowed.join(", "), "write e.g. driver='pulseaudio'");
        ctx.env.SDL_AUDIODRIVER = sdlDriver;
      }
      const runtimeDir = getAttr(el, "runtimeDir");
      if (b.type === "pipewire" && runtimeDir !== undefined) ctx.env.PIPEWIRE_RUNTIME_DIR = runtimeDir;
      for (const [child, key] of [
        ["input", "in"],
        ["output", "out"],
      ] as const) {
        const d = firstChild(el, child);
        if (d) props[key] = directionProps(d, `${path}/${child}`, b.type);
      }
    }
    ctx.add("-audiodev", JSON.stringify(props));
  });
  return backends;
}

/** The audio backend a device uses: its `<audio id=>` child (which must exist), else the first backend. */
export function audioIdOf(el: XmlElement, path: string, backends: readonly AudioBackend[]): number | undefined {
  const link = firstChild(el, "audio");
  if (!link) return backends[0]?.id;
  onlyAttrs(link, `${path}/audio`, ["id"], "<audio> of a device");
  const id = whole(`${path}/audio/@id`, getAttr(link, "id") ?? "", 1, 65535, "write e.g. <audio id='1'/>");
  if (!backends.some((b) => b.id === id))
    throw new DomainXmlError(`no audio device with ID ${id}`, {
      path: `${path}/audio/@id`,
      value: String(id),
      allowed: `the id of an <audio> backend (${backends.map((b) => b.id).join(", ") || "none written"})`,
      mirrorsLibvirt: true,
      fix: "write the id of one of the domain's <audio> elements",
    });
  return id;
}

// ---------------------------------------------------------------------------------------------
// <sound>

/** PCI sound models and their QEMU device. */
const PCI_SOUND: Readonly<Record<string, string>> = {
  es1370: "ES1370",
  ac97: "AC97",
  ich6: "intel-hda",
  ich9: "ich9-intel-hda",
  virtio: "virtio-sound-pci",
};

/** Whether a `<sound>` is a PCI device (libvirt gives it a PCI slot). */
export function isPciSound(el: XmlElement): boolean {
  return (getAttr(el, "model") ?? "") in PCI_SOUND;
}

const HDA_CODECS: Readonly<Record<string, string>> = { duplex: "hda-duplex", micro: "hda-micro", output: "hda-output" };

/** `-machine` properties for the sound cards: the PC speaker's `pcspk-audiodev`. */
export function soundMachineProps(of: (name: string) => XmlElement[]): string[] {
  const backends = audioBackends(of);
  const out: string[] = [];
  of("sound").forEach((el, i) => {
    if (getAttr(el, "model") !== "pcspk") return;
    const id = audioIdOf(el, `/domain/devices/sound[${i + 1}]`, backends);
    if (out.length === 0 && id !== undefined) out.push(`pcspk-audiodev=audio${id}`);
  });
  return out;
}

/** The virtio options of a `<driver>` (iommu, ats, packed) as QEMU properties. */
export function virtioDriverProps(el: XmlElement, path: string): Record<string, unknown> {
  const d = firstChild(el, "driver");
  if (!d) return {};
  const dp = `${path}/driver`;
  onlyAttrs(d, dp, ["iommu", "ats", "packed"], "<driver> here");
  const props: Record<string, unknown> = {};
  const map: [string, string][] = [
    ["iommu", "iommu_platform"],
    ["ats", "ats"],
    ["packed", "packed"],
  ];
  for (const [attr, prop] of map) {
    const v = getAttr(d, attr);
    if (v !== undefined) props[prop] = onOff(`${dp}/@${attr}`, v);
  }
  return props;
}

/**
 * `<sound>` cards as libvirt writes them (qemuBuildSoundCommandLine): ES1370, AC97, SB16 and USB
 * audio with their backend, Intel HDA (ich6, ich9) with one codec device per `<codec>` (a duplex
 * codec when none is written), virtio-sound with its streams, the PC speaker as a `-machine`
 * property ({@link soundMachineProps}). ids are `soundN` by position. `usbPort` gives the next free
 * port of the USB root hub (libvirt assigns sound cards theirs before USB inputs), or takes note
 * of a written one.
 */
export function buildSounds(
  ctx: MediaContext,
  backends: readonly AudioBackend[],
  usbPort: (written?: string) => string,
): void {
  ctx.of("sound").forEach((el, i) => {
    const path = `/domain/devices/sound[${i + 1}]`;
    const model = getAttr(el, "model") ?? "";
    const id = `sound${i}`;
    const audioId = audioIdOf(el, path, backends);
    const audiodev = audioId !== undefined ? { audiodev: `audio${audioId}` } : {};
    onlyAttrs(
      el,
      path,
      ["model", ...(model === "usb" ? ["multichannel"] : []), ...(model === "virtio" ? ["streams"] : [])],
      `a ${model} sound card`,
    );
    if (model !== "virtio" && firstChild(el, "driver"))
      throw unsupported(`${path}/driver`, undefined, "only a virtio sound card takes <driver>: remove it");
    if (!model.startsWith("ich") && firstChild(el, "codec"))
      throw unsupported(`${path}/codec`, undefined, "only an Intel HDA (ich6, ich9) sound card has codecs: remove it");
    const addr = firstChild(el, "address");
    if (model === "pcspk" || model === "sb16") {
      if (addr) throw unsupported(`${path}/address`, undefined, `a ${model} is not on PCI: remove <address>`);
      if (model === "sb16") ctx.add("-device", JSON.stringify({ driver: "sb16", id, ...audiodev }));
      return;
    }
    if (model === "usb") {
      let port: string;
      if (addr) {
        if (getAttr(addr, "type") !== "usb" || (getAttr(addr, "bus") ?? "0") !== "0")
          throw unsupported(`${path}/address`, undefined, "write <address type='usb' bus='0' port='N'/> or none");
        port = getAttr(addr, "port") ?? "";
        if (!/^[1-9][0-9]*$/.test(port))
          throw unsupported(`${path}/address/@port`, port, "write a port on the root hub, e.g. port='1'");
        usbPort(port);
      } else port = usbPort();
      const mc = getAttr(el, "multichannel");
      const multi = mc !== undefined ? { multi: yesNo(`${path}/@multichannel`, mc) } : {};
      ctx.add("-device", JSON.stringify({ driver: "usb-audio", id, ...audiodev, ...multi, bus: "usb.0", port }));
      return;
    }
    const driver = PCI_SOUND[model];
    if (driver === undefined)
      throw unsupported(
        `${path}/@model`,
        model,
        "use a sound model es1370, ac97, ich6, ich9, sb16, usb, virtio or pcspk (others need libvirt)",
      );
    const pci = ctx.pci(el, path);
    if (model === "virtio") {
      const streams = getAttr(el, "streams");
      ctx.add(
        "-device",
        JSON.stringify({
          driver,
          ...virtioDriverProps(el, path),
          id,
          ...audiodev,
          streams: streams === undefined ? 2 : whole(`${path}/@streams`, streams, 1, 256, "write e.g. streams='2'"),
          ...pci,
        }),
      );
      return;
    }
    if (!model.startsWith("ich")) {
      ctx.add("-device", JSON.stringify({ driver, id, ...audiodev, ...pci }));
      return;
    }
    ctx.add("-device", JSON.stringify({ driver, id, ...pci }));
    const codecs = childElements(el, "codec");
    const types = codecs.length ? codecs.map((c) => getAttr(c, "type") ?? "") : ["duplex"];
    types.forEach((t, j) => {
      const codec = HDA_CODECS[t];
      if (!codec)
        throw invalid(
          `${path}/codec[${j + 1}]/@type`,
          t,
          Object.keys(HDA_CODECS).join(", "),
          "write e.g. type='duplex'",
        );
      ctx.add("-device", JSON.stringify({ driver: codec, id: `${id}-codec${j}`, bus: `${id}.0`, cad: j, ...audiodev }));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// <graphics> other than VNC

/** The graphics types this module builds (VNC is in provider/qemu/argv.ts). */
export const MEDIA_GRAPHICS = new Set(["spice", "sdl", "egl-headless", "dbus"]);

/** The `<gl>` of a graphics: `gl=on` and its render node, as libvirt writes them. */
function glProps(el: XmlElement, path: string): string[] {
  const gl = firstChild(el, "gl");
  if (!gl) return [];
  const gp = `${path}/gl`;
  onlyAttrs(gl, gp, ["enable", "rendernode"], "<gl>");
  const enable = getAttr(gl, "enable");
  if (enable === undefined || !yesNo(`${gp}/@enable`, enable)) {
    if (getAttr(gl, "rendernode") !== undefined)
      throw unsupported(`${gp}/@rendernode`, getAttr(gl, "rendernode"), "a render node needs enable='yes'");
    return [];
  }
  const node = getAttr(gl, "rendernode");
  return ["gl=on", ...(node !== undefined ? [`rendernode=${node.replace(/,/g, ",,")}`] : [])];
}

/**
 * libvirt's rules for several graphics (qemu_validate.c): `egl-headless` only beside VNC or SPICE,
 * at most one OpenGL display.
 */
export function checkGraphicsCombination(of: (name: string) => XmlElement[]): void {
  const graphics = of("graphics");
  const types = graphics.map((g) => getAttr(g, "type") ?? "");
  const egl = types.indexOf("egl-headless");
  if (egl >= 0 && types.some((t) => t !== "egl-headless" && t !== "vnc" && t !== "spice"))
    throw new DomainXmlError(
      "graphics type 'egl-headless' is only supported with one of: 'vnc', 'spice' graphics types",
      {
        path: `/domain/devices/graphics[${egl + 1}]/@type`,
        value: "egl-headless",
        category: "unsupported configuration",
        mirrorsLibvirt: true,
        fix: "use egl-headless beside VNC or SPICE only",
      },
    );
  const gl = graphics.filter(
    (g) => getAttr(g, "type") === "egl-headless" || getAttr(firstChild(g, "gl"), "enable") === "yes",
  );
  if (gl.length > 1)
    throw new DomainXmlError("multiple OpenGL displays are not supported by QEMU", {
      path: `/domain/devices/graphics[${graphics.indexOf(gl[1]!) + 1}]`,
      category: "unsupported configuration",
      mirrorsLibvirt: true,
      fix: "keep one OpenGL display (egl-headless or <gl enable='yes'/>)",
    });
}

/** SPICE compression and stream options: element, attribute, QEMU option, allowed values. */
const SPICE_OPTIONS: readonly [string, string, string, readonly string[]][] = [
  ["image", "compression", "image-compression", ["auto_glz", "auto_lz", "quic", "glz", "lz", "off"]],
  ["jpeg", "compression", "jpeg-wan-compression", ["auto", "never", "always"]],
  ["zlib", "compression", "zlib-glz-wan-compression", ["auto", "never", "always"]],
  ["playback", "compression", "playback-compression", ["on", "off"]],
  ["streaming", "mode", "streaming-video", ["filter", "all", "off"]],
];

const SPICE_CHANNELS = ["main", "display", "inputs", "cursor", "playback", "record", "smartcard", "usbredir"];

/** libvirt's default directory of SPICE TLS certificates (qemu.conf `spice_tls_x509_cert_dir`). */
export const SPICE_X509_DIR = "/etc/pki/libvirt-spice";

/** The one listen of a SPICE/VNC graphics: `<listen>` or `@listen`. */
function singleListen(el: XmlElement, path: string): XmlElement | undefined {
  const listens = childElements(el, "listen");
  if (listens.length > 1) throw unsupported(`${path}/listen[2]`, undefined, "keep one <listen>");
  return listens[0];
}

function spiceArg(el: XmlElement, path: string, ctx: MediaContext): string {
  const opt: string[] = [];
  for (const a of ["passwd", "passwdValidTo", "connected", "keymap"])
    if (getAttr(el, a) !== undefined)
      throw unsupported(
        `${path}/@${a}`,
        a === "passwd" ? "(secret)" : getAttr(el, a),
        "a SPICE password is set by libvirt over QMP: remove it or apply through libvirt",
      );
  const listen = singleListen(el, path);
  const ltype = listen ? (getAttr(listen, "type") ?? "address") : "address";
  const port = getAttr(el, "port");
  const tlsPort = getAttr(el, "tlsPort");
  const autoport = getAttr(el, "autoport");
  let insecure = false;
  let secure = false;
  if (ltype === "socket" && listen) {
    onlyAttrs(listen, `${path}/listen`, ["type", "socket"], "<listen type='socket'>");
    const socket = getAttr(listen, "socket") ?? autoSocket(ctx.socketDir, "spice", `${path}/listen/@socket`);
    opt.push("unix=on", `addr=${socket.replace(/,/g, ",,")}`);
    insecure = true;
  } else if (ltype === "address") {
    // autoport: a free port for the plain channels (the QEMU-direct backend finds one, as libvirt
    // does from 5900 up); a TLS port libvirt allocates only with spice_tls in qemu.conf: refused
    const auto = autoport === "yes" || port === "-1";
    if (tlsPort !== undefined && (tlsPort === "-1" || autoport === "yes"))
      throw unsupported(
        `${path}/@tlsPort`,
        tlsPort,
        "libvirt picks a free SPICE TLS port from its qemu.conf TLS set-up: write tlsPort='5902' with autoport='no'",
      );
    if (listen) onlyAttrs(listen, `${path}/listen`, ["type", "address"], "<listen type='address'>");
    const p = auto
      ? (ctx.autoPort?.() ?? 5900)
      : port !== undefined
        ? whole(`${path}/@port`, port, 0, 65535, "write e.g. port='5901'")
        : 0;
    const t = tlsPort !== undefined ? whole(`${path}/@tlsPort`, tlsPort, 0, 65535, "write e.g. tlsPort='5902'") : 0;
    if (p > 0) {
      opt.push(`port=${p}`);
      insecure = true;
    }
    if (t > 0) {
      opt.push(`tls-port=${t}`);
      secure = true;
    }
    const at = getAttr(listen, "address");
    const attr = getAttr(el, "listen");
    if (attr !== undefined && at !== undefined && attr !== at)
      throw new DomainXmlError(
        "graphics 'listen' attribute does not match 'address' attribute of first listen element",
        {
          path: `${path}/listen/@address`,
          value: at,
          allowed: attr,
          fix: "write the same address in @listen and <listen address=>, or only one of them",
          mirrorsLibvirt: true,
        },
      );
    const address = at ?? attr;
    if ((p > 0 || t > 0) && address !== undefined) opt.push(`addr=${address.replace(/,/g, ",,")}`);
  } else if (ltype === "none") {
    if (port !== undefined && port !== "0") throw unsupported(`${path}/@port`, port, "listen type none has no port");
  } else
    throw unsupported(
      `${path}/listen/@type`,
      ltype,
      "use <listen type='address' address=...>, 'socket' or 'none' (a network's address is looked up by libvirt)",
    );
  // -spice alone is not accepted by QEMU: without a listener libvirt writes a dummy port=0 (none)
  if (opt.length === 0) opt.push("port=0");
  const mouse = firstChild(el, "mouse");
  if (mouse) {
    const mode = getAttr(mouse, "mode");
    if (mode !== "server" && mode !== "client")
      throw invalid(`${path}/mouse/@mode`, mode, "server, client", "write mode='client' or 'server'");
    opt.push(`agent-mouse=${mode === "client" ? "on" : "off"}`);
  }
  // no password (refused above): libvirt opens SPICE without one when qemu.conf sets no
  // spice_password (its test suite sets one, so the corpus .args lack this)
  opt.push("disable-ticketing=on");
  if (secure) opt.push(`x509-dir=${SPICE_X509_DIR}`);
  const defaultMode = getAttr(el, "defaultMode") ?? "any";
  const needs = (isSecure: boolean, where: string) => {
    if (isSecure ? !secure : !insecure)
      throw unsupported(
        where,
        isSecure ? "secure" : "insecure",
        isSecure ? "a secure channel needs a tlsPort" : "an insecure channel needs a port or a socket",
      );
  };
  if (defaultMode === "secure") {
    needs(true, `${path}/@defaultMode`);
    opt.push("tls-channel=default");
  } else if (defaultMode === "insecure") {
    needs(false, `${path}/@defaultMode`);
    opt.push("plaintext-channel=default");
  } else if (defaultMode !== "any")
    throw invalid(`${path}/@defaultMode`, defaultMode, "any, secure, insecure", "write e.g. defaultMode='any'");
  childElements(el, "channel").forEach((c, j) => {
    const cp = `${path}/channel[${j + 1}]`;
    onlyAttrs(c, cp, ["name", "mode"], "<channel>");
    const name = getAttr(c, "name") ?? "";
    if (!SPICE_CHANNELS.includes(name))
      throw invalid(`${cp}/@name`, name, SPICE_CHANNELS.join(", "), "write e.g. name='main'");
    const mode = getAttr(c, "mode") ?? "any";
    if (mode === "secure") {
      needs(true, `${cp}/@mode`);
      opt.push(`tls-channel=${name}`);
    } else if (mode === "insecure") {
      needs(false, `${cp}/@mode`);
      opt.push(`plaintext-channel=${name}`);
    } else if (mode !== "any") throw invalid(`${cp}/@mode`, mode, "any, secure, insecure", "write e.g. mode='secure'");
  });
  for (const [name, attr, qemu, allowed] of SPICE_OPTIONS) {
    const c = firstChild(el, name);
    if (!c) continue;
    const cp = `${path}/${name}`;
    onlyAttrs(c, cp, [attr], `<${name}>`);
    const v = getAttr(c, attr) ?? "";
    if (!allowed.includes(v))
      throw invalid(`${cp}/@${attr}`, v, allowed.join(", "), `write e.g. ${attr}='${allowed[0]}'`);
    opt.push(`${qemu}=${v}`);
  }
  const clip = firstChild(el, "clipboard");
  if (clip) {
    onlyAttrs(clip, `${path}/clipboard`, ["copypaste"], "<clipboard>");
    if (!yesNo(`${path}/clipboard/@copypaste`, getAttr(clip, "copypaste") ?? "")) opt.push("disable-copy-paste=on");
  }
  const ft = firstChild(el, "filetransfer");
  if (ft) {
    onlyAttrs(ft, `${path}/filetransfer`, ["enable"], "<filetransfer>");
    if (!yesNo(`${path}/filetransfer/@enable`, getAttr(ft, "enable") ?? "")) opt.push("disable-agent-file-xfer=on");
  }
  opt.push(...glProps(el, path));
  opt.push("seamless-migration=on");
  return opt.join(",");
}

/**
 * A `<graphics>` of type spice, sdl, egl-headless or dbus as libvirt writes it
 * (qemuBuildGraphicsCommandLine): `-spice ...` (its listen, TLS port with libvirt's default
 * certificate directory, channels, compression, clipboard, file transfer, mouse, OpenGL),
 * `-display sdl` (`DISPLAY`/`XAUTHORITY` in the environment, `-full-screen`), `-display
 * egl-headless`, `-display dbus` (its own bus address or peer-to-peer, OpenGL, audio).
 */
export function buildMediaGraphics(
  ctx: MediaContext,
  el: XmlElement,
  path: string,
  backends: readonly AudioBackend[],
): void {
  const type = getAttr(el, "type") ?? "";
  const check = (allowed: string[], children: string[]) => {
    onlyAttrs(el, path, ["type", ...allowed], `a ${type} graphics`);
    for (const c of childElements(el))
      if (!children.includes(c.name))
        throw unsupported(
          `${path}/${c.name}`,
          c.name,
          `a ${type} graphics takes ${children.join(", ") || "no children"}: remove it`,
        );
  };
  switch (type) {
    case "spice":
      check(
        ["port", "tlsPort", "autoport", "listen", "defaultMode", "passwd", "passwdValidTo", "connected", "keymap"],
        [
          "listen",
          "channel",
          "image",
          "jpeg",
          "zlib",
          "playback",
          "streaming",
          "clipboard",
          "filetransfer",
          "mouse",
          "gl",
        ],
      );
      ctx.add("-spice", spiceArg(el, path, ctx));
      return;
    case "sdl": {
      check(["display", "xauth", "fullscreen"], ["gl"]);
      const display = getAttr(el, "display");
      const xauth = getAttr(el, "xauth");
      if (xauth !== undefined) ctx.env.XAUTHORITY = xauth;
      if (display !== undefined) ctx.env.DISPLAY = display;
      const fs = getAttr(el, "fullscreen");
      if (fs !== undefined && yesNo(`${path}/@fullscreen`, fs)) ctx.add("-full-screen");
      ctx.add("-display", ["sdl", ...glProps(el, path)].join(","));
      return;
    }
    case "egl-headless": {
      check([], ["gl"]);
      const gl = firstChild(el, "gl");
      if (gl) onlyAttrs(gl, `${path}/gl`, ["rendernode"], "<gl> of egl-headless");
      const node = getAttr(gl, "rendernode");
      ctx.add(
        "-display",
        ["egl-headless", ...(node !== undefined ? [`rendernode=${node.replace(/,/g, ",,")}`] : [])].join(","),
      );
      return;
    }
    case "dbus": {
      check(["address", "p2p"], ["gl", "audio"]);
      const address = getAttr(el, "address");
      const p2p = getAttr(el, "p2p");
      const isP2p = p2p !== undefined && yesNo(`${path}/@p2p`, p2p);
      if (address !== undefined && isP2p)
        throw new DomainXmlError("D-Bus p2p with an address is not supported", {
          path: `${path}/@address`,
          value: address,
          mirrorsLibvirt: true,
          fix: "write an address or p2p='yes', not both",
        });
      if (address === undefined && !isP2p)
        throw unsupported(
          path,
          "dbus",
          "without an address libvirt runs a D-Bus daemon for the domain: write address='unix:path=...' or p2p='yes'",
        );
      const opt = ["dbus"];
      if (address !== undefined) opt.push(`addr=${address.replace(/,/g, ",,")}`);
      if (isP2p) opt.push("p2p=on");
      opt.push(...glProps(el, path));
      if (firstChild(el, "audio")) {
        const id = audioIdOf(el, path, backends);
        if (id !== undefined) opt.push(`audiodev=audio${id}`);
      }
      ctx.add("-display", opt.join(","));
      return;
    }
    default:
      throw unsupported(`${path}/@type`, type, "use graphics of type vnc, spice, sdl, egl-headless or dbus");
  }
}

/**
 * What libvirt adds to `-vnc` beyond the listen address and authentication
 * (qemuBuildGraphicsVNCCommandLine): `websocket`, `share`, `power-control`; and the audio backend
 * (`audiodev`, the graphics' `<audio id=>` or the first backend). Options to append, each with
 * its leading comma, in libvirt's order around the authentication options (`before`, `after`).
 */
export function vncExtras(
  el: XmlElement | undefined,
  path: string,
  backends: readonly AudioBackend[],
): { before: string; after: string } {
  if (!el) return { before: "", after: "" };
  let before = "";
  const ws = getAttr(el, "websocket");
  if (ws !== undefined) {
    if (ws === "-1")
      throw unsupported(`${path}/@websocket`, ws, "libvirt picks a free WebSocket port itself: write the port");
    before += `,websocket=${whole(`${path}/@websocket`, ws, 1, 65535, "write e.g. websocket='5700'")}`;
  }
  const share = getAttr(el, "sharePolicy");
  if (share !== undefined) {
    const allowed = ["allow-exclusive", "force-shared", "ignore"];
    if (!allowed.includes(share))
      throw invalid(`${path}/@sharePolicy`, share, allowed.join(", "), "write e.g. sharePolicy='allow-exclusive'");
    before += `,share=${share}`;
  }
  let after = "";
  const power = getAttr(el, "powerControl");
  if (power !== undefined && yesNo(`${path}/@powerControl`, power)) after += ",power-control=on";
  const id = audioIdOf(el, path, backends);
  if (id !== undefined) after += `,audiodev=audio${id}`;
  return { before, after };
}

/**
 * The VNC display for `<listen type='socket'>` (`vnc=unix:PATH`) and `<listen type='none'>`
 * (`none`); `undefined` for an address listen (provider/qemu/argv.ts builds it).
 */
export function vncSpecialDisplay(el: XmlElement | undefined, path: string, socketDir?: string): string | undefined {
  if (!el) return undefined;
  const [listen] = childElements(el, "listen");
  const type = getAttr(listen, "type");
  if (!listen || (type !== "socket" && type !== "none")) return undefined;
  const lp = `${path}/listen[1]`;
  if (type === "none") {
    onlyAttrs(listen, lp, ["type"], "<listen type='none'>");
    return "none";
  }
  onlyAttrs(listen, lp, ["type", "socket"], "<listen type='socket'>");
  const socket = getAttr(listen, "socket") ?? autoSocket(socketDir, "vnc", `${lp}/@socket`);
  return `vnc=unix:${socket.replace(/,/g, ",,")}`;
}

/**
 * The socket of a `<listen type='socket'>` written without `socket`: `vnc.sock` / `spice.sock` in
 * the domain's run directory, as libvirt makes them in its domain directory (input-video family).
 */
function autoSocket(dir: string | undefined, kind: "vnc" | "spice", path: string): string {
  if (dir === undefined)
    throw unsupported(
      path,
      undefined,
      `libvirt makes the socket in its domain directory: write socket='/path/${kind}.sock'`,
    );
  return `${dir}/${kind}.sock`;
}

/**
 * The `-device` of a video model's 3D acceleration (`<acceleration accel3d='yes'>`: the virtio GPU
 * with virgl, `virtio-vga-gl` / `virtio-gpu-gl-pci`), its `<driver>` virtio options and `blob`;
 * returns the driver to use and the extra properties. `rendernode` and `accel2d` are refused.
 */
export function videoAcceleration(
  el: XmlElement | undefined,
  path: string,
  model: string,
  primary: boolean,
): { driver?: string; props: Record<string, unknown> } {
  const m = el && firstChild(el, "model");
  const props: Record<string, unknown> = el ? virtioDriverProps(el, path) : {};
  if (el && model !== "virtio" && firstChild(el, "driver"))
    throw unsupported(`${path}/driver`, undefined, "only a virtio video takes <driver>: remove it");
  const blob = getAttr(m, "blob");
  if (blob !== undefined) {
    if (model !== "virtio") throw unsupported(`${path}/model/@blob`, blob, "only a virtio video takes blob");
    props.blob = onOff(`${path}/model/@blob`, blob);
  }
  const res = m && firstChild(m, "resolution");
  if (res) {
    if (model !== "qxl" && model !== "vga" && model !== "bochs" && model !== "virtio")
      throw unsupported(`${path}/model/resolution`, undefined, "this video model takes no resolution");
    onlyAttrs(res, `${path}/model/resolution`, ["x", "y"], "<resolution>");
    props.xres = whole(`${path}/model/resolution/@x`, getAttr(res, "x") ?? "", 1, 65535, "write e.g. x='1280'");
    props.yres = whole(`${path}/model/resolution/@y`, getAttr(res, "y") ?? "", 1, 65535, "write e.g. y='720'");
  }
  const acc = m && firstChild(m, "acceleration");
  if (!acc) return { props };
  const ap = `${path}/model/acceleration`;
  onlyAttrs(acc, ap, ["accel3d"], "<acceleration>");
  const a3 = getAttr(acc, "accel3d");
  if (a3 === undefined || !yesNo(`${ap}/@accel3d`, a3)) return { props };
  if (model !== "virtio") throw unsupported(`${ap}/@accel3d`, a3, "3D acceleration is built for a virtio video only");
  return { driver: primary ? "virtio-vga-gl" : "virtio-gpu-gl-pci", props };
}

/**
 * The video libvirt adds when a domain has graphics and no `<video>` (virDomainDefAddImplicitVideo):
 * a Cirrus VGA on the PC (i440FX) machine (the corpus: every `pc` case). On other machines (q35)
 * the builder does not know libvirt's pick: refused, naming the missing `<video>`. `undefined` when none is added.
 */
export function implicitVideo(devices: XmlElement | undefined, machine: string): XmlElement | undefined {
  if (!devices || childElements(devices, "graphics").length === 0 || childElements(devices, "video").length > 0)
    return undefined;
  if (/q35/.test(machine) || !/^pc\b/.test(machine))
    throw unsupported(
      "/domain/devices/video",
      undefined,
      `libvirt adds a video for the graphics on machine ${machine}: write a <video> (e.g. <model type='vga'/>)`,
    );
  return element("video", {}, [element("model", { type: "cirrus" })]);
}
