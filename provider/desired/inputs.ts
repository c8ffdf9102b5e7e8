/**
 * The Domain resource's inputs as the provider sees them (plain values, all resolved), and
 * their validation. Every failure names the property, the value received, what is allowed and
 * the fix, so `check` can report it per property and `pulumi preview` shows it before anything
 * is touched.
 *
 * Pure: no I/O, no Pulumi.
 */
import { isValidUuid, parseUuid } from "../xml/uuid";
import { SCALED_UNITS } from "../xml/units";

/** A disk given by the typed `disks` input. */
export interface DiskSpec {
  /** Image path (a file on the hypervisor host). */
  readonly file: string;
  /** Image format. @default from the extension: `.qcow2` -> qcow2, else raw */
  readonly format?: "qcow2" | "raw";
  /** Guest device name. @default `vda`, `vdb`, ... in order */
  readonly target?: string;
  /** Bus. @default `virtio` */
  readonly bus?: "virtio" | "sata" | "ide" | "scsi";
  /** `disk` or `cdrom`. @default `disk` */
  readonly device?: "disk" | "cdrom";
  /** Read-only. @default false */
  readonly readonly?: boolean;
  /** Serial shown to the guest. @default none */
  readonly serial?: string;
  /** Boot order (1 first). @default none */
  readonly bootOrder?: number;
}

/** A network interface given by the typed `interfaces` input. */
export interface InterfaceSpec {
  /** `user` (QEMU user networking), `network` (a libvirt network), `bridge`, `direct` (macvtap). */
  readonly type: "user" | "network" | "bridge" | "direct";
  /** The network, bridge or host device name (not for `user`). */
  readonly source?: string;
  /** The MAC address. @default assigned by libvirt */
  readonly mac?: string;
  /** The device model. @default `virtio` */
  readonly model?: string;
}

/** How the hwuuid reaches the guest. */
export type HwuuidModeInput = "auto" | "native" | "passthrough";

/** The resolved inputs of a Domain. */
export interface DomainInputs {
  readonly name: string;
  readonly hwuuid?: string;
  readonly xml?: string;
  /** Memory with a unit, e.g. `"512 MiB"`, `"1GiB"`. */
  readonly memory?: string;
  readonly vcpus?: number;
  readonly machine?: string;
  readonly firmware?: "bios" | "efi";
  readonly disks?: readonly DiskSpec[];
  readonly interfaces?: readonly InterfaceSpec[];
  /** The libvirt URI, and a name for the host shown with it in errors. */
  readonly connection?: { readonly uri?: string; readonly host?: string };
  readonly running?: boolean;
  readonly shutdownTimeoutSeconds?: number;
  readonly restartOnChange?: boolean;
  readonly adopt?: boolean;
  readonly hwuuidMode?: HwuuidModeInput;
  /** Any change to this value re-creates the domain. */
  readonly replaceTrigger?: string;
  /** Which resource owns the domain (`project/stack/name`), written into the ownership mark. Set by the SDK. */
  readonly ownerId?: string;
}

/** One per-property failure, as `check` reports it. */
export interface InputFailure {
  readonly property: string;
  readonly reason: string;
}

/** The default connection when neither the input nor the stack config gives one. */
export const DEFAULT_URI = "qemu:///system";
/** @default for `shutdownTimeoutSeconds`. */
export const DEFAULT_SHUTDOWN_TIMEOUT_SECONDS = 60;

/** URI schemes (driver[+transport]) we accept. */
const URI_RE = /^((qemu|test)(\+(unix|ssh|tcp|tls|libssh|libssh2|ext))?:\/\/[^\s]*|qemu-direct:\/\/\/[^\s?]+[^\s]*)$/;

/** Builds a failure message: what is wrong, the value, what is allowed, the fix. */
export function failure(property: string, what: string, value: unknown, allowed: string, fix: string): InputFailure {
  let v = typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value ?? null);
  if (v.length > 120) v = `${v.slice(0, 117)}...`;
  return { property, reason: `${property}: ${what}; got ${v}; allowed: ${allowed}; fix: ${fix}` };
}

/** The JSON type of a value, as a message names it: `null`, `an array`, `a number`... */
export function jsonTypeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  if (typeof v === "number") return "a number";
  if (typeof v === "string") return "a string";
  if (typeof v === "boolean") return "a boolean";
  return typeof v;
}

/** True for a plain JSON object (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A failure for a value of the wrong JSON type: "must be a string, not a number". */
export function wrongType(
  property: string,
  expected: string,
  value: unknown,
  allowed: string,
  fix: string,
): InputFailure {
  return failure(property, `must be ${expected}, not ${jsonTypeOf(value)}`, value, allowed, fix);
}

/** The JSON type each Domain input takes; `validateInputs` checks every one before using it. */
export const DOMAIN_INPUT_TYPES: {
  readonly [K in keyof Required<DomainInputs>]: "string" | "number" | "boolean" | "array" | "object";
} = {
  name: "string",
  hwuuid: "string",
  xml: "string",
  memory: "string",
  vcpus: "number",
  machine: "string",
  firmware: "string",
  disks: "array",
  interfaces: "array",
  connection: "object",
  running: "boolean",
  shutdownTimeoutSeconds: "number",
  restartOnChange: "boolean",
  adopt: "boolean",
  hwuuidMode: "string",
  replaceTrigger: "string",
  ownerId: "string",
};

/** Most typed `disks` a Domain takes. */
export const MAX_DISKS = 256;
/** Most typed `interfaces` a Domain takes. */
export const MAX_INTERFACES = 256;
/** Default disk targets (vda...vdz) run out after this many disks; later ones need `target`. */
const DEFAULT_TARGETS = 26;

/** Domain names we accept: safe as a file name, in XML and on any shell line. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$/;

/** Validates a domain name; returns a failure or undefined. */
export function validateName(property: string, name: unknown): InputFailure | undefined {
  const allowed = "1-100 characters: letters, digits, '.', '_', '+', '-', starting with a letter or digit, no '..'";
  if (typeof name !== "string" || name === "")
    return failure(property, "a domain name is required", name, allowed, 'set name, e.g. "web-1"');
  const bad = /[/\\'"<>&\s]/.exec(name);
  if (bad)
    return failure(
      property,
      `contains ${JSON.stringify(bad[0])}`,
      name,
      allowed,
      `remove ${JSON.stringify(bad[0])}, e.g. "${name.replace(/[^A-Za-z0-9._+-]/g, "-").replace(/^[^A-Za-z0-9]+/, "") || "web-1"}"`,
    );
  if (name.includes("..")) return failure(property, 'contains ".."', name, allowed, 'use a single "." or "-"');
  if (!NAME_RE.test(name)) return failure(property, "is not a valid domain name", name, allowed, 'use e.g. "web-1"');
  return undefined;
}

/** Validates a hwuuid input; all-equal bytes are refused, since libvirt would silently ignore them. */
export function validateHwuuid(property: string, v: unknown): InputFailure | undefined {
  const allowed = "a UUID, 32 hex digits, e.g. 5d5b0f1d-128b-4517-8e65-b258a8734c1d";
  if (typeof v !== "string") return failure(property, "must be a string", v, allowed, "quote the UUID");
  const b = parseUuid(v);
  if (!b) return failure(property, "is not a UUID", v, allowed, "generate one with `uuidgen` and keep it fixed");
  if (!isValidUuid(b)) {
    return failure(
      property,
      "has all 16 bytes equal, which libvirt treats as unset (the guest would see the domain uuid instead)",
      v,
      allowed,
      "use a real UUID, e.g. from `uuidgen`",
    );
  }
  return undefined;
}

/** Validates all inputs, their JSON types first; returns every failure found, never throws. */
export function validateInputs(inputs: DomainInputs): InputFailure[] {
  const i = inputs as unknown as Record<string, unknown>;
  const f: (InputFailure | undefined)[] = [];
  const str = (k: string, allowed: string, fix: string): boolean => {
    if (i[k] === undefined) return false;
    if (typeof i[k] === "string") return true;
    f.push(wrongType(k, "a string", i[k], allowed, fix));
    return false;
  };
  const bool = (k: string, fix: string): void => {
    if (i[k] !== undefined && typeof i[k] !== "boolean")
      f.push(wrongType(k, "true or false", i[k], "true, false", fix));
  };
  f.push(validateName("name", i.name));
  if (i.hwuuid !== undefined) f.push(validateHwuuid("hwuuid", i.hwuuid));
  str(
    "xml",
    "a domain XML document (text)",
    'pass the XML text, e.g. fs.readFileSync("domain.xml", "utf8"), or leave xml out',
  );
  if (str("memory", 'a whole number with a unit, e.g. "512 MiB"', 'write e.g. memory: "512 MiB"')) {
    const mem = i.memory as string;
    const m = /^\s*([0-9]+)\s*([A-Za-z]+)\s*$/.exec(mem);
    const units = "KiB, MiB, GiB, TiB (or KB, MB, GB, TB)";
    if (!m?.[1] || !m[2])
      f.push(
        failure("memory", "must be a positive whole number with a unit", mem, units, 'write e.g. "512 MiB" or "2 GiB"'),
      );
    else if (!SCALED_UNITS.includes(m[2].toLowerCase()))
      f.push(failure("memory", `unknown unit ${JSON.stringify(m[2])}`, mem, units, 'write e.g. "512 MiB"'));
    else if (BigInt(m[1]) === 0n)
      f.push(failure("memory", "must be more than zero", mem, "at least 1 MiB", 'write e.g. "512 MiB"'));
  }
  if (
    i.vcpus !== undefined &&
    !(typeof i.vcpus === "number" && Number.isInteger(i.vcpus) && i.vcpus >= 1 && i.vcpus <= 4096)
  ) {
    f.push(
      failure(
        "vcpus",
        `must be a whole number from 1 to 4096${typeof i.vcpus === "number" ? "" : `, not ${jsonTypeOf(i.vcpus)}`}`,
        i.vcpus,
        "1..4096",
        "write e.g. vcpus: 2",
      ),
    );
  }
  if (
    str("machine", "a QEMU machine name such as pc, q35, pc-q35-9.2", 'write e.g. "q35"') &&
    !/^[A-Za-z0-9._-]{1,100}$/.test(i.machine as string)
  ) {
    f.push(
      failure(
        "machine",
        "is not a machine type",
        i.machine,
        "a QEMU machine name such as pc, q35, pc-q35-9.2",
        'write e.g. "q35"',
      ),
    );
  }
  if (i.firmware !== undefined && i.firmware !== "bios" && i.firmware !== "efi") {
    f.push(failure("firmware", "is not a firmware kind", i.firmware, '"bios" or "efi"', 'write "efi" for UEFI'));
  }
  validateDisks(i.disks, f);
  validateInterfaces(i.interfaces, f);
  if (i.connection !== undefined && !isObject(i.connection)) {
    f.push(
      wrongType(
        "connection",
        "an object",
        i.connection,
        '{ uri: "qemu:///system" }',
        'write connection: { uri: "qemu:///system" }, or leave it out',
      ),
    );
  } else if (i.connection !== undefined) {
    const uri = i.connection.uri;
    const uris =
      "qemu:///system, qemu+unix:///system?socket=..., qemu+ssh://host/system, test:///default, qemu-direct:///STATE_DIR (no libvirt)";
    const host: unknown = i.connection.host;
    if (host !== undefined && typeof host !== "string")
      f.push(wrongType("connection.host", "a string", host, "a host name", 'write e.g. host: "hv1", or leave it out'));
    if (uri !== undefined && typeof uri !== "string")
      f.push(wrongType("connection.uri", "a string", uri, uris, 'write e.g. "qemu:///system"'));
    else if (uri !== undefined && !URI_RE.test(uri))
      f.push(
        failure(
          "connection.uri",
          "is not a libvirt URI this provider drives",
          uri,
          uris,
          'write e.g. "qemu:///system"',
        ),
      );
  }
  bool("running", "write running: true");
  bool("restartOnChange", "write restartOnChange: true, or leave it out");
  bool("adopt", "write adopt: true, or leave it out");
  if (i.shutdownTimeoutSeconds !== undefined) {
    const t = i.shutdownTimeoutSeconds;
    if (!(typeof t === "number" && Number.isFinite(t) && t >= 0 && t <= 3600)) {
      f.push(
        failure(
          "shutdownTimeoutSeconds",
          `must be 0 to 3600 seconds${typeof t === "number" ? "" : `, not ${jsonTypeOf(t)}`}`,
          t,
          "0..3600 (0 = destroy at once)",
          "write e.g. shutdownTimeoutSeconds: 60",
        ),
      );
    }
  }
  if (i.hwuuidMode !== undefined && !["auto", "native", "passthrough"].includes(i.hwuuidMode as string)) {
    f.push(failure("hwuuidMode", "is not a mode", i.hwuuidMode, '"auto", "native", "passthrough"', 'write "auto"'));
  }
  str(
    "replaceTrigger",
    "a string; any change re-creates the domain",
    "convert the value to a string, e.g. String(x) or JSON.stringify(x)",
  );
  str("ownerId", "project/stack/name (set by the SDK)", "leave ownerId to the Domain resource");
  return f.filter((x): x is InputFailure => x !== undefined);
}

const DISK_FORMATS = ["qcow2", "raw"];
const DISK_BUSES = ["virtio", "sata", "ide", "scsi"];
const DISK_DEVICES = ["disk", "cdrom"];
const INTERFACE_TYPES = ["user", "network", "bridge", "direct"];

/**
 * A typed list input (`disks`, `interfaces`): absent, or an array of at most `max` items. Returns
 * the items to check one by one, or undefined after pushing the failure.
 */
function listInput(
  property: string,
  noun: string,
  value: unknown,
  max: number,
  example: string,
  fix: string,
  f: (InputFailure | undefined)[],
): unknown[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) {
    f.push(wrongType(property, `an array of ${noun}`, value, example, fix));
    return undefined;
  }
  if (value.length > max) {
    f.push(
      failure(
        property,
        `has ${value.length} ${noun}, more than ${max}`,
        `${value.length} ${noun}`,
        `at most ${max}`,
        `put fewer ${noun} on one domain`,
      ),
    );
    return undefined;
  }
  return value as unknown[];
}

/** `disks`: an array of at most {@link MAX_DISKS} objects, each field of its type. */
function validateDisks(disks: unknown, f: (InputFailure | undefined)[]): void {
  const list = listInput(
    "disks",
    "disks",
    disks,
    MAX_DISKS,
    '[{ file: "/var/lib/libvirt/images/vm.qcow2" }]',
    'write disks: [{ file: "/path/to/image.qcow2" }], or leave disks out',
    f,
  );
  list?.forEach((d: unknown, n) => {
    const p = `disks[${n}]`;
    if (!isObject(d)) {
      f.push(
        wrongType(
          p,
          "an object",
          d,
          '{ file: "/path/to/image.qcow2", ... }',
          `write ${p} as { file: "/path/to/image.qcow2" }, or remove it`,
        ),
      );
      return;
    }
    if (typeof d.file !== "string" || !d.file.startsWith("/"))
      f.push(
        failure(
          `${p}.file`,
          typeof d.file === "string"
            ? "must be an absolute path"
            : `must be an absolute path, not ${jsonTypeOf(d.file)}`,
          d.file,
          "an absolute path on the hypervisor host",
          "write the full path of the image",
        ),
      );
    else if (/[\0\n]/.test(d.file) || d.file.split("/").includes(".."))
      f.push(
        failure(
          `${p}.file`,
          "must not contain '..', newlines or NUL",
          d.file,
          "a normalized absolute path",
          "write the path without '..'",
        ),
      );
    if (d.format !== undefined && !DISK_FORMATS.includes(d.format as string))
      f.push(failure(`${p}.format`, "is not a format", d.format, '"qcow2" or "raw"', 'write "qcow2"'));
    if (d.target !== undefined && !(typeof d.target === "string" && /^(vd|sd|hd|xvd)[a-z]{1,2}$/.test(d.target)))
      f.push(failure(`${p}.target`, "is not a disk target", d.target, "vda, vdb, sda, hdc, ...", 'write e.g. "vdb"'));
    if (d.target === undefined && n >= DEFAULT_TARGETS)
      f.push(
        failure(
          `${p}.target`,
          `is needed from disk ${DEFAULT_TARGETS + 1} on (default targets run from vda to vdz)`,
          d.target,
          "vdaa, vdab, sdaa, ...",
          'write e.g. target: "vdaa"',
        ),
      );
    if (d.bus !== undefined && !DISK_BUSES.includes(d.bus as string))
      f.push(failure(`${p}.bus`, "is not a bus", d.bus, "virtio, sata, ide, scsi", 'write "virtio"'));
    if (d.device !== undefined && !DISK_DEVICES.includes(d.device as string))
      f.push(failure(`${p}.device`, "is not a device kind", d.device, '"disk" or "cdrom"', 'write "disk"'));
    if (d.readonly !== undefined && typeof d.readonly !== "boolean")
      f.push(wrongType(`${p}.readonly`, "true or false", d.readonly, "true, false", "write readonly: true"));
    if (d.serial !== undefined && !(typeof d.serial === "string" && /^[A-Za-z0-9_. +-]{1,100}$/.test(d.serial))) {
      f.push(
        failure(
          `${p}.serial`,
          "is not a disk serial",
          d.serial,
          "1-100 letters, digits, spaces, '_', '.', '+', '-'",
          'write e.g. serial: "disk-0001"',
        ),
      );
    }
    if (
      d.bootOrder !== undefined &&
      !(typeof d.bootOrder === "number" && Number.isInteger(d.bootOrder) && d.bootOrder >= 1 && d.bootOrder <= 9999)
    ) {
      f.push(
        failure(`${p}.bootOrder`, "must be a whole number from 1", d.bootOrder, "1, 2, ... 9999", "write bootOrder: 1"),
      );
    }
  });
}

/** `interfaces`: an array of at most {@link MAX_INTERFACES} objects, each field of its type. */
function validateInterfaces(nics: unknown, f: (InputFailure | undefined)[]): void {
  const list = listInput(
    "interfaces",
    "interfaces",
    nics,
    MAX_INTERFACES,
    '[{ type: "network", source: "default" }]',
    'write interfaces: [{ type: "user" }], or leave interfaces out',
    f,
  );
  list?.forEach((n: unknown, k) => {
    const p = `interfaces[${k}]`;
    if (!isObject(n)) {
      f.push(
        wrongType(
          p,
          "an object",
          n,
          '{ type: "network", source: "default", ... }',
          `write ${p} as { type: "user" }, or remove it`,
        ),
      );
      return;
    }
    if (!INTERFACE_TYPES.includes(n.type as string))
      f.push(
        failure(
          `${p}.type`,
          "is not an interface type",
          n.type,
          "user, network, bridge, direct",
          'write "user" for QEMU user networking',
        ),
      );
    if (n.type === "user" && n.source !== undefined && typeof n.source !== "string") {
      f.push(
        wrongType(
          `${p}.source`,
          "a string",
          n.source,
          "a network, bridge or device name",
          "leave source out for type user",
        ),
      );
    } else if (n.type !== "user" && (typeof n.source !== "string" || !/^[A-Za-z0-9._-]{1,100}$/.test(n.source))) {
      f.push(
        failure(
          `${p}.source`,
          `is required for type ${JSON.stringify(n.type)}`,
          n.source,
          "a network, bridge or device name",
          'write e.g. source: "default"',
        ),
      );
    }
    if (n.mac !== undefined && !(typeof n.mac === "string" && /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(n.mac)))
      f.push(
        failure(
          `${p}.mac`,
          "is not a MAC address",
          n.mac,
          "six hex pairs, e.g. 52:54:00:12:34:56",
          "write e.g. 52:54:00:12:34:56",
        ),
      );
    else if (typeof n.mac === "string" && parseInt(n.mac.slice(0, 2), 16) & 1)
      f.push(
        failure(
          `${p}.mac`,
          "is a multicast address",
          n.mac,
          "a unicast MAC (first byte even)",
          "use the 52:54:00 prefix",
        ),
      );
    if (n.model !== undefined && !(typeof n.model === "string" && /^[A-Za-z0-9_-]{1,40}$/.test(n.model)))
      f.push(failure(`${p}.model`, "is not a model name", n.model, "virtio, e1000, e1000e, rtl8139", 'write "virtio"'));
  });
}
