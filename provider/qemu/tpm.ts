/**
 * `<devices><tpm>` as libvirt writes it (qemuBuildTPMCommandLine, qemu_tpm.c):
 *
 * - `<backend type='emulator'>`: libvirt starts swtpm and QEMU connects to its control socket:
 *   `-chardev socket,id=chrtpm,path=SOCK -tpmdev emulator,id=tpm-tpm0,chardev=chrtpm
 *   -device {"driver":"tpm-tis","tpmdev":"tpm-tpm0","id":"tpm0"}`. The socket and the state
 *   directory are the caller's (options: the QEMU-direct backend passes its per-domain ones); the
 *   builder returns what swtpm must be started with ({@link SwtpmSpec}), the backend runs it.
 * - `<backend type='external'>`: a swtpm the user runs, on `<source type='unix' mode='connect'
 *   path=...>`: the same three arguments on that socket, and nothing to start.
 * - `<backend type='passthrough'>` (a host TPM, which libvirt opens and passes as file
 *   descriptors) is refused, and so is what needs libvirt's secrets or a newer swtpm.
 *
 * libvirt's rules are checked as it does: a backend is required, one TPM (not a proxy) at most,
 * TPM 1.2 only on tpm-tis, and the default model and version are libvirt's (tpm-tis; 1.2 for
 * tpm-tis on x86, else 2.0: qemuDomainTPMDefPostParse).
 *
 * Pure: no I/O.
 */
import { DomainXmlError } from "../xml/errors";
import { XmlElement, childElements, firstChild, getAttr } from "../xml/tree";
import { libvirtRule as invalid, qemuOptEscape, unsupportedAllowed as refuse } from "./argv";

/** libvirt's directory of swtpm state, per domain uuid (`qemu.conf` `swtpm_storage_dir`... `/var/lib/libvirt/swtpm`). */
export const LIBVIRT_SWTPM_STORAGE_DIR = "/var/lib/libvirt/swtpm";

/** Where a TPM emulator's files go: options of the builder (paths only, nothing is made). */
export interface TpmOptions {
  /**
   * The control socket of the domain's swtpm, which QEMU's `-chardev` connects to.
   * @default `/run/libvirt-domain/<name>/swtpm.sock`
   */
  readonly swtpmSocketPath?: string;
  /**
   * The domain's TPM state directory; swtpm keeps the TPM in `DIR/tpm2` (TPM 2.0) or
   * `DIR/tpm1.2`, as libvirt does under `/var/lib/libvirt/swtpm/UUID`. `<source type='dir'
   * path=...>` replaces it. @default `/var/lib/libvirt/swtpm/<uuid>`
   */
  readonly tpmStateDir?: string;
}

/** What swtpm is started with for one `<backend type='emulator'>` TPM (the QEMU-direct backend runs it). */
export interface SwtpmSpec {
  /** The TPM element, e.g. `/domain/devices/tpm[1]`. */
  readonly path: string;
  /** The TPM version (`--tpm2` for 2.0). */
  readonly version: "1.2" | "2.0";
  /** The control socket (`--ctrl type=unixio,path=`), the one QEMU's `-chardev` names. */
  readonly socketPath: string;
  /**
   * Where swtpm keeps the TPM's state: a directory (`--tpmstate dir=`; `written` when
   * `<source type='dir'>` names it) or a file (`<source type='file'>`, `--tpmstate backend-uri=file://`).
   */
  readonly state:
    | { readonly type: "dir"; readonly path: string; readonly written: boolean }
    | { readonly type: "file"; readonly path: string };
  /** `persistent_state='yes'`: the state outlives the domain's undefine. */
  readonly persistentState: boolean;
  /** `debug='N'`: swtpm's log level (`--log level=N`); absent or 0, no level. */
  readonly logLevel?: number;
  /**
   * `<active_pcr_banks>` of a TPM 2.0 (`sha256`, ...): the PCR banks swtpm_setup sets before each
   * start (`--pcr-banks ... --reconfigure`), as libvirt does.
   */
  readonly pcrBanks?: string[];
}

const X86 = /^(x86_64|i686)$/;

/**
 * The TPM arguments (chardev, tpmdev, device) of `<devices><tpm>`, and the swtpm each emulator
 * needs; every element and attribute is built or refused here with a message naming it.
 * @param tpms the `<tpm>` elements of `<devices>`
 * @param arch the guest architecture (`<os><type arch>`)
 * @param name the domain name, for the default socket path
 * @param uuid the domain uuid, for the default state directory
 * @param opts where the socket and the state go
 * @param add appends arguments to the command line
 */
export function buildTpms(
  tpms: readonly XmlElement[],
  arch: string,
  name: string,
  uuid: string,
  opts: TpmOptions,
  add: (...a: string[]) => void,
): SwtpmSpec[] {
  const out: SwtpmSpec[] = [];
  tpms.forEach((tpm, i) => {
    const at = `/domain/devices/tpm[${i + 1}]`;
    const backend = firstChild(tpm, "backend");
    // libvirt's parser: a TPM without <backend> is an XML error
    if (!backend)
      throw new DomainXmlError("missing TPM device backend", {
        path: `${at}/backend`,
        allowed: "<backend type='emulator'>, <backend type='external'>",
        fix: "add <backend type='emulator' version='2.0'/> (swtpm, started for the domain)",
      });
    // libvirt's qemuValidateDomainDefTPMs: one TPM, and a proxy only beside it on ppc64
    if (i > 0)
      throw invalid(
        "only a single TPM non-proxy device is supported",
        at,
        getAttr(tpm, "model"),
        "one <tpm>",
        "keep one <tpm> device",
      );
    const model = getAttr(tpm, "model") ?? "tpm-tis";
    if (!X86.test(arch) || (model !== "tpm-tis" && model !== "tpm-crb"))
      throw refuse(
        `${at}/@model`,
        getAttr(tpm, "model") ?? `${model} (on ${arch})`,
        "tpm-tis, tpm-crb on x86",
        model === "tpm-spapr" || model === "spapr-tpm-proxy"
          ? "the pSeries TPMs need a ppc64 guest, which the QEMU-direct backend does not build: apply through libvirt"
          : "write model='tpm-tis' or model='tpm-crb' on an x86 guest",
      );
    const type = getAttr(backend, "type");
    let socket: string;
    if (type === "passthrough")
      throw refuse(
        `${at}/backend/@type`,
        type,
        "emulator, external",
        "a host TPM is opened by libvirt and passed to QEMU as file descriptors: use <backend type='emulator' version='2.0'/> (swtpm), or apply through libvirt",
      );
    else if (type === "external") socket = externalSocket(backend, `${at}/backend`);
    else if (type === "emulator") {
      const spec = { ...emulatorSpec(backend, `${at}/backend`, model, arch, name, uuid, opts), path: at };
      out.push(spec);
      socket = spec.socketPath;
    } else
      throw refuse(
        `${at}/backend/@type`,
        type,
        "emulator, external",
        "write <backend type='emulator' version='2.0'/> (swtpm), or type='external' with the socket of a swtpm you run",
      );
    for (const a of tpm.attrs)
      if (a.name !== "model")
        throw refuse(`${at}/@${a.name}`, a.value, "model", `remove ${a.name} from <tpm>, or apply through libvirt`);
    for (const c of childElements(tpm))
      if (c.name !== "backend")
        throw refuse(`${at}/${c.name}`, c.name, "backend", `remove <${c.name}> from <tpm>, or apply through libvirt`);
    add("-chardev", `socket,id=chrtpm,path=${qemuOptEscape(socket)}`);
    add("-tpmdev", `emulator,id=tpm-tpm${i},chardev=chrtpm`);
    add("-device", JSON.stringify({ driver: model, tpmdev: `tpm-tpm${i}`, id: `tpm${i}` }));
  });
  return out;
}

/** `<backend type='external'><source type='unix' mode='connect' path=.../>`: the socket of a swtpm the user runs. */
function externalSocket(backend: XmlElement, at: string): string {
  for (const a of backend.attrs)
    if (a.name !== "type")
      throw refuse(`${at}/@${a.name}`, a.value, "type", `remove ${a.name}: the external swtpm is yours to configure`);
  const sources = childElements(backend);
  const source = sources[0];
  if (sources.length !== 1 || source?.name !== "source")
    throw invalid(
      "an external TPM needs one <source type='unix' mode='connect' path=...>",
      `${at}/source`,
      sources.map((s) => s.name).join(", ") || undefined,
      "<source type='unix' mode='connect' path='/run/swtpm/NAME.sock'/>",
      "name the control socket of the swtpm you run (swtpm socket --ctrl type=unixio,path=SOCK)",
    );
  const path = getAttr(source, "path");
  for (const a of source.attrs) {
    const ok =
      (a.name === "type" && a.value === "unix") ||
      (a.name === "mode" && a.value === "connect") ||
      (a.name === "path" && a.value.startsWith("/"));
    if (!ok)
      throw invalid(
        "is not a unix socket to connect to",
        `${at}/source/@${a.name}`,
        a.value,
        "type='unix' mode='connect' path='/ABSOLUTE/SOCKET'",
        "name the control socket of the swtpm you run with an absolute path",
      );
  }
  if (path === undefined || getAttr(source, "type") !== "unix")
    throw invalid(
      "an external TPM needs a unix socket path",
      `${at}/source/@path`,
      path,
      "type='unix' mode='connect' path='/ABSOLUTE/SOCKET'",
      "write <source type='unix' mode='connect' path='/run/swtpm/NAME.sock'/>",
    );
  if (childElements(source).length > 0)
    throw refuse(`${at}/source/${childElements(source)[0]!.name}`, undefined, undefined, "remove it");
  return path;
}

/** `<backend type='emulator'>`: what swtpm is started with. */
function emulatorSpec(
  backend: XmlElement,
  at: string,
  model: string,
  arch: string,
  name: string,
  uuid: string,
  opts: TpmOptions,
): Omit<SwtpmSpec, "path"> {
  const written = getAttr(backend, "version");
  if (written !== undefined && written !== "1.2" && written !== "2.0")
    throw invalid(
      "is not a TPM version",
      `${at}/@version`,
      written,
      "1.2, 2.0",
      "write version='2.0' (or '1.2' for tpm-tis)",
    );
  // libvirt's default (qemuDomainTPMDefPostParse): tpm-tis on x86 is TPM 1.2, anything else 2.0
  const version = written ?? (model === "tpm-tis" && X86.test(arch) ? "1.2" : "2.0");
  if (version === "1.2" && model !== "tpm-tis")
    throw invalid(
      `TPM version '1.2' is not supported with the model ${model}`,
      `${at}/@version`,
      version,
      "2.0",
      "write version='2.0' (tpm-crb is a TPM 2.0 interface)",
    );
  const persistent = getAttr(backend, "persistent_state");
  if (persistent !== undefined && persistent !== "yes" && persistent !== "no")
    throw invalid(
      "is not yes or no",
      `${at}/@persistent_state`,
      persistent,
      "yes, no",
      "write persistent_state='yes' or 'no'",
    );
  const debug = getAttr(backend, "debug");
  if (debug !== undefined && !/^[0-9]{1,9}$/.test(debug))
    throw invalid(
      "is not a log level",
      `${at}/@debug`,
      debug,
      "a whole number",
      "write debug='3' (swtpm's log level), or remove it",
    );
  for (const a of backend.attrs)
    if (!["type", "version", "persistent_state", "debug"].includes(a.name))
      throw refuse(
        `${at}/@${a.name}`,
        a.value,
        "type, version, persistent_state, debug",
        `remove ${a.name}, or apply through libvirt`,
      );
  let source: XmlElement | undefined;
  let pcrBanks: string[] | undefined;
  for (const c of childElements(backend)) {
    if (c.name === "source") {
      source = c;
      continue;
    }
    if (c.name === "active_pcr_banks" && version === "2.0") {
      pcrBanks = readPcrBanks(c, `${at}/active_pcr_banks`);
      continue;
    }
    const fix: Record<string, string> = {
      encryption:
        "the state's key is a libvirt secret, which the QEMU-direct backend does not have: remove <encryption>, or apply through libvirt",
      active_pcr_banks: "a TPM 1.2 has no PCR banks to choose: remove <active_pcr_banks>, or write version='2.0'",
      profile: "TPM profiles need swtpm 0.10 and libvirt's swtpm_setup: remove <profile>, or apply through libvirt",
    };
    throw refuse(
      `${at}/${c.name}`,
      c.name,
      "source, active_pcr_banks",
      fix[c.name] ?? `remove <${c.name}>, or apply through libvirt`,
    );
  }
  const dir = version === "2.0" ? "tpm2" : "tpm1.2";
  let state: SwtpmSpec["state"] = {
    type: "dir",
    path: `${opts.tpmStateDir ?? `${LIBVIRT_SWTPM_STORAGE_DIR}/${uuid}`}/${dir}`,
    written: false,
  };
  if (source) {
    const type = getAttr(source, "type");
    const p = getAttr(source, "path");
    if ((type !== "dir" && type !== "file") || p === undefined || !p.startsWith("/"))
      throw invalid(
        "is not a TPM state location",
        `${at}/source`,
        `type=${type ?? ""} path=${p ?? ""}`,
        "<source type='dir' path='/ABSOLUTE/DIR'/>, <source type='file' path='/ABSOLUTE/FILE'/>",
        "name an absolute directory (or file) for the TPM's state",
      );
    for (const a of source.attrs)
      if (a.name !== "type" && a.name !== "path")
        throw refuse(`${at}/source/@${a.name}`, a.value, "type, path", `remove ${a.name}`);
    if (childElements(source).length > 0)
      throw refuse(`${at}/source/${childElements(source)[0]!.name}`, undefined, undefined, "remove it");
    state = type === "dir" ? { type: "dir", path: p, written: true } : { type: "file", path: p };
  }
  const level = debug === undefined ? 0 : Number(debug);
  return {
    version,
    socketPath: opts.swtpmSocketPath ?? `/run/libvirt-domain/${name}/swtpm.sock`,
    state,
    persistentState: persistent === "yes",
    ...(level > 0 ? { logLevel: level } : {}),
    ...(pcrBanks ? { pcrBanks } : {}),
  };
}

/** The PCR banks libvirt knows (virDomainTPMPcrBank), in its order. */
const PCR_BANKS = ["sha1", "sha256", "sha384", "sha512"];

/** `<active_pcr_banks><sha256/>...</active_pcr_banks>`: the banks, in libvirt's order (as its bitmap gives them). */
function readPcrBanks(el: XmlElement, at: string): string[] {
  const banks = new Set<string>();
  for (const a of el.attrs) throw refuse(`${at}/@${a.name}`, a.value, undefined, `remove ${a.name}`);
  for (const b of childElements(el)) {
    if (!PCR_BANKS.includes(b.name) || b.attrs.length > 0 || childElements(b).length > 0)
      throw invalid(
        "is not a PCR bank",
        `${at}/${b.name}`,
        b.name,
        PCR_BANKS.join(", "),
        "name the banks as empty elements, e.g. <active_pcr_banks><sha256/></active_pcr_banks>",
      );
    banks.add(b.name);
  }
  if (banks.size === 0)
    throw invalid("names no PCR bank", at, undefined, PCR_BANKS.join(", "), "name a bank (<sha256/>), or remove it");
  return PCR_BANKS.filter((b) => banks.has(b));
}
