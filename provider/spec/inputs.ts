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
  readonly connection?: { readonly uri?: string };
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
  const v = typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value ?? null);
  return { property, reason: `${property}: ${what}; got ${v}; allowed: ${allowed}; fix: ${fix}` };
}

/** Domain names we accept: safe as a file name, in XML and on any shell line. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$/;

/** Validates a domain name; returns a failure or undefined. */
export function validateName(property: string, name: unknown): InputFailure | undefined {
  const allowed = "1-100 characters: letters, digits, '.', '_', '+', '-', starting with a letter or digit, no '..'";
  if (typeof name !== "string" || name === "") return failure(property, "a domain name is required", name, allowed, 'set name, e.g. "web-1"');
  const bad = /[/\\'"<>&\s]/.exec(name);
  if (bad) return failure(property, `contains ${JSON.stringify(bad[0])}`, name, allowed, `remove ${JSON.stringify(bad[0])}, e.g. "${name.replace(/[^A-Za-z0-9._+-]/g, "-").replace(/^[^A-Za-z0-9]+/, "") || "web-1"}"`);
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
    return failure(property, "has all 16 bytes equal, which libvirt treats as unset (the guest would see the domain uuid instead)", v, allowed, "use a real UUID, e.g. from `uuidgen`");
  }
  return undefined;
}

/** Validates all inputs; returns every failure found. */
export function validateInputs(i: DomainInputs): InputFailure[] {
  const f: (InputFailure | undefined)[] = [];
  f.push(validateName("name", i.name));
  if (i.hwuuid !== undefined) f.push(validateHwuuid("hwuuid", i.hwuuid));
  if (i.memory !== undefined) {
    const m = /^\s*([0-9]+)\s*([A-Za-z]+)\s*$/.exec(String(i.memory));
    const units = "KiB, MiB, GiB, TiB (or KB, MB, GB, TB)";
    if (!m) f.push(failure("memory", "must be a positive whole number with a unit", i.memory, units, 'write e.g. "512 MiB" or "2 GiB"'));
    else if (!SCALED_UNITS.includes(m[2].toLowerCase())) f.push(failure("memory", `unknown unit ${JSON.stringify(m[2])}`, i.memory, units, 'write e.g. "512 MiB"'));
    else if (BigInt(m[1]) === 0n) f.push(failure("memory", "must be more than zero", i.memory, "at least 1 MiB", 'write e.g. "512 MiB"'));
  }
  if (i.vcpus !== undefined && !(Number.isInteger(i.vcpus) && i.vcpus >= 1 && i.vcpus <= 4096)) {
    f.push(failure("vcpus", "must be a whole number from 1 to 4096", i.vcpus, "1..4096", "write e.g. vcpus: 2"));
  }
  if (i.machine !== undefined && !/^[A-Za-z0-9._-]+$/.test(i.machine)) {
    f.push(failure("machine", "is not a machine type", i.machine, "a QEMU machine name such as pc, q35, pc-q35-9.2", 'write e.g. "q35"'));
  }
  if (i.firmware !== undefined && i.firmware !== "bios" && i.firmware !== "efi") {
    f.push(failure("firmware", "is not a firmware kind", i.firmware, '"bios" or "efi"', 'write "efi" for UEFI'));
  }
  (i.disks ?? []).forEach((d, n) => {
    const p = `disks[${n}]`;
    if (typeof d.file !== "string" || !d.file.startsWith("/")) f.push(failure(`${p}.file`, "must be an absolute path", d.file, "an absolute path on the hypervisor host", "write the full path of the image"));
    else if (/[\0\n]/.test(d.file) || d.file.split("/").includes("..")) f.push(failure(`${p}.file`, "must not contain '..', newlines or NUL", d.file, "a normalized absolute path", "write the path without '..'"));
    if (d.format !== undefined && d.format !== "qcow2" && d.format !== "raw") f.push(failure(`${p}.format`, "is not a format", d.format, '"qcow2" or "raw"', 'write "qcow2"'));
    if (d.target !== undefined && !/^(vd|sd|hd|xvd)[a-z]{1,2}$/.test(d.target)) f.push(failure(`${p}.target`, "is not a disk target", d.target, "vda, vdb, sda, hdc, ...", 'write e.g. "vdb"'));
    if (d.bus !== undefined && !["virtio", "sata", "ide", "scsi"].includes(d.bus)) f.push(failure(`${p}.bus`, "is not a bus", d.bus, "virtio, sata, ide, scsi", 'write "virtio"'));
    if (d.bootOrder !== undefined && !(Number.isInteger(d.bootOrder) && d.bootOrder >= 1)) f.push(failure(`${p}.bootOrder`, "must be a whole number from 1", d.bootOrder, "1, 2, ...", "write bootOrder: 1"));
  });
  (i.interfaces ?? []).forEach((n, k) => {
    const p = `interfaces[${k}]`;
    if (!["user", "network", "bridge", "direct"].includes(n.type)) f.push(failure(`${p}.type`, "is not an interface type", n.type, "user, network, bridge, direct", 'write "user" for QEMU user networking'));
    if (n.type !== "user" && (typeof n.source !== "string" || !/^[A-Za-z0-9._-]+$/.test(n.source))) {
      f.push(failure(`${p}.source`, `is required for type ${JSON.stringify(n.type)}`, n.source, "a network, bridge or device name", 'write e.g. source: "default"'));
    }
    if (n.mac !== undefined && !/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(n.mac)) f.push(failure(`${p}.mac`, "is not a MAC address", n.mac, "six hex pairs, e.g. 52:54:00:12:34:56", "write e.g. 52:54:00:12:34:56"));
    else if (n.mac !== undefined && parseInt(n.mac.slice(0, 2), 16) & 1) f.push(failure(`${p}.mac`, "is a multicast address", n.mac, "a unicast MAC (first byte even)", "use the 52:54:00 prefix"));
    if (n.model !== undefined && !/^[A-Za-z0-9_-]+$/.test(n.model)) f.push(failure(`${p}.model`, "is not a model name", n.model, "virtio, e1000, e1000e, rtl8139", 'write "virtio"'));
  });
  const uri = i.connection?.uri;
  if (uri !== undefined && !URI_RE.test(uri)) {
    f.push(failure("connection.uri", "is not a libvirt URI this provider drives", uri, "qemu:///system, qemu+unix:///system?socket=..., qemu+ssh://host/system, test:///default, qemu-direct:///STATE_DIR (no libvirt)", 'write e.g. "qemu:///system"'));
  }
  if (i.running !== undefined && typeof i.running !== "boolean") f.push(failure("running", "must be true or false", i.running, "true, false", "write running: true"));
  if (i.shutdownTimeoutSeconds !== undefined && !(Number.isFinite(i.shutdownTimeoutSeconds) && i.shutdownTimeoutSeconds >= 0 && i.shutdownTimeoutSeconds <= 3600)) {
    f.push(failure("shutdownTimeoutSeconds", "must be 0 to 3600 seconds", i.shutdownTimeoutSeconds, "0..3600 (0 = destroy at once)", "write e.g. shutdownTimeoutSeconds: 60"));
  }
  if (i.hwuuidMode !== undefined && !["auto", "native", "passthrough"].includes(i.hwuuidMode)) {
    f.push(failure("hwuuidMode", "is not a mode", i.hwuuidMode, '"auto", "native", "passthrough"', 'write "auto"'));
  }
  return f.filter((x): x is InputFailure => x !== undefined);
}
