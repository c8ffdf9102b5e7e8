/**
 * libvirt's identity rules for `<uuid>`, `<hwuuid>`, `<genid>` and the SMBIOS sysinfo uuid,
 * exactly as libvirt >= 11.7 parses them (virDomainDefParseIDs, virSysinfoSystemParseXML).
 * See `docs/hwuuid.md` for the rules and our one deliberate difference.
 *
 * Pure: no I/O, no Pulumi.
 */
import { DomainDef, qemuCommandlines, readSysinfo } from "./domain";
import { DomainXmlError } from "./errors";
import { childElements, firstChild, getAttr, setTextContent, removeChild, textContent, XmlElement } from "./tree";
import { formatUuid, isValidUuid, normalizeUuid, parseUuid, UuidBytes } from "./uuid";

/** What libvirt would decide about a domain's identity. */
export interface DomainIdentity {
  /** The domain name. */
  name: string;
  /** The domain uuid, formatted; null when libvirt would generate one. */
  uuid: string | null;
  /** The hardware uuid, formatted; null when absent, empty or not valid (all bytes equal). */
  hwuuid: string | null;
  /** The UUID the guest sees (QEMU's `-uuid`): hwuuid when valid, else uuid; null when not yet determined. */
  guestUuid: string | null;
  /** The SMBIOS system uuid from `<sysinfo type='smbios'>`, formatted, when given. */
  sysinfoUuid: string | null;
  /** The genid, formatted, when given with a value. */
  genid: string | null;
}

function internal(reason: string, path: string, value: string, fix: string): DomainXmlError {
  return new DomainXmlError(reason, {
    path,
    value,
    category: "internal error",
    mirrorsLibvirt: true,
    allowed: "32 hex digits, optionally dashed as 8-4-4-4-12 (e.g. 5d5b0f1d-128b-4517-8e65-b258a8734c1d)",
    fix,
  });
}

function parseOrThrow(text: string, reason: string, path: string, xmlDetail = false): UuidBytes {
  const b = parseUuid(text);
  if (b) return b;
  const fix = `correct or remove the value of ${path}`;
  if (xmlDetail) {
    throw new DomainXmlError(reason, {
      path,
      value: text,
      mirrorsLibvirt: true,
      allowed: "32 hex digits, optionally dashed as 8-4-4-4-12",
      fix,
    });
  }
  throw internal(reason, path, text, fix);
}

/**
 * Applies libvirt's identity rules and returns the identity; throws a {@link DomainXmlError}
 * with libvirt's exact text (`malformed hwuuid element`, `UUID mismatch between <hwuuid> and
 * <sysinfo>`, ...) when libvirt would refuse the document.
 */
export function resolveIdentity(def: DomainDef): DomainIdentity {
  const name = def.childText("name");
  if (name === undefined) {
    throw new DomainXmlError("missing name information", {
      path: "/domain/name",
      mirrorsLibvirt: true,
      allowed: "a non-empty <name>",
      fix: "add <name>...</name> to the domain",
    });
  }
  const uuidText = def.childText("uuid");
  let uuid: UuidBytes | undefined =
    uuidText !== undefined ? parseOrThrow(uuidText, "malformed uuid element", "/domain/uuid") : undefined;
  const uuidGenerated = uuid === undefined;

  const hwText = def.childText("hwuuid");
  const hw = hwText !== undefined ? parseOrThrow(hwText, "malformed hwuuid element", "/domain/hwuuid") : undefined;
  const hwValid = hw !== undefined && isValidUuid(hw);

  const genidText = def.childText("genid");
  const genid =
    genidText !== undefined ? parseOrThrow(genidText, "malformed genid element", "/domain/genid") : undefined;

  let sysinfoUuid: UuidBytes | undefined;
  for (const si of childElements(def.root, "sysinfo")) {
    const view = readSysinfo(si);
    if (view.type !== "smbios" || !view.hasSystem || !("uuid" in view.system) || view.system.uuid === "") continue;
    const path = "/domain/sysinfo/system/entry[@name='uuid']";
    const s = parseOrThrow(view.system.uuid, "malformed <sysinfo> uuid element", path, true);
    if (uuidGenerated) {
      uuid = s;
    } else if (!hwValid && !sameBytes(uuid!, s)) {
      throw new DomainXmlError("UUID mismatch between <uuid> and <sysinfo>", {
        path,
        value: view.system.uuid,
        mirrorsLibvirt: true,
        allowed: `the domain <uuid> (${formatUuid(uuid!)})`,
        fix: "make the sysinfo uuid entry equal to <uuid>, or remove it",
      });
    }
    if (hwValid && !sameBytes(hw, s)) {
      throw new DomainXmlError("UUID mismatch between <hwuuid> and <sysinfo>", {
        path,
        value: view.system.uuid,
        mirrorsLibvirt: true,
        allowed: `the <hwuuid> (${formatUuid(hw)})`,
        fix: "make the sysinfo uuid entry equal to <hwuuid>, or remove it",
      });
    }
    sysinfoUuid = s;
  }

  const uuidStr = uuid ? formatUuid(uuid) : null;
  const hwStr = hwValid ? formatUuid(hw) : null;
  return {
    name,
    uuid: uuidStr,
    hwuuid: hwStr,
    guestUuid: hwStr ?? uuidStr,
    sysinfoUuid: sysinfoUuid ? formatUuid(sysinfoUuid) : null,
    genid: genid ? formatUuid(genid) : null,
  };
}

function sameBytes(a: UuidBytes, b: UuidBytes): boolean {
  return a.every((x, i) => x === b[i]);
}

/**
 * Rewrites the identity elements as libvirt would write them back: `<uuid>` formatted (and
 * filled from the sysinfo uuid when it was absent), only the first `<hwuuid>` kept, formatted,
 * dropped when empty or not valid; the sysinfo uuid entry formatted. Everything else is left
 * as it is. Returns the identity.
 */
export function normalizeIdentity(def: DomainDef): DomainIdentity {
  const id = resolveIdentity(def);
  if (id.uuid !== null) def.setChildText("uuid", id.uuid);
  const hws = childElements(def.root, "hwuuid");
  hws.forEach((el, i) => {
    if (i > 0 || id.hwuuid === null) removeChild(def.root, el);
  });
  if (id.hwuuid !== null) def.setChildText("hwuuid", id.hwuuid);
  if (id.genid !== null) def.setChildText("genid", id.genid);
  for (const si of childElements(def.root, "sysinfo")) {
    if (getAttr(si, "type") !== "smbios") continue;
    const sys = firstChild(si, "system");
    const entry = sys && childElements(sys, "entry").find((e: XmlElement) => getAttr(e, "name") === "uuid");
    if (entry && (textContent(entry) ?? "") !== "") {
      setTextContent(entry, formatUuid(parseUuid(textContent(entry)!)!));
    }
  }
  return id;
}

/**
 * The hwuuid carried by the `-uuid` passthrough (`<qemu:commandline><qemu:arg value='-uuid'/>
 * <qemu:arg value=UUID/>`), if any: the last `-uuid` wins, as on QEMU's command line. The QEMU
 * elements are found by namespace URI, whatever their prefix.
 */
export function uuidPassthrough(def: DomainDef): string | undefined {
  const args = qemuCommandlines(def.root).flatMap((c) => c.args.map((a) => getAttr(a, "value") ?? ""));
  const i = args.lastIndexOf("-uuid");
  const value = i >= 0 ? args[i + 1] : undefined;
  return value !== undefined ? (normalizeUuid(value) ?? value) : undefined;
}

/**
 * Removes every `-uuid VALUE` pair from the domain's QEMU `<commandline>` elements (found by
 * namespace URI, whatever their prefix), and each such element left without children.
 */
export function removeUuidPassthrough(def: DomainDef): void {
  for (const { commandline, args } of qemuCommandlines(def.root)) {
    for (let i = 0; i < args.length; i++) {
      const arg = args[i]!;
      if (getAttr(arg, "value") === "-uuid") {
        removeChild(commandline, arg);
        const value = args[i + 1];
        if (value) removeChild(commandline, value);
        i++;
      }
    }
    if (childElements(commandline).length === 0) removeChild(def.root, commandline);
  }
}
