/**
 * Composing the desired domain XML from a Domain's inputs: the `xml` template (the full escape
 * hatch), then the typed fields (which win), then the hwuuid in the form the connection
 * understands (`<hwuuid>` or the `<qemu:commandline>` passthrough), then our ownership mark in
 * `<metadata>`. The result is canonical: identity normalized, formatted as libvirt does.
 *
 * Pure: no I/O, no Pulumi.
 */
import { DomainDef } from "../xml/domain";
import { DomainXmlError, hasBrand, LibvirtDomainError } from "../xml/errors";
import {
  DomainIdentity,
  normalizeIdentity,
  removeUuidPassthrough,
  resolveIdentity,
  uuidPassthrough,
} from "../xml/identity";
import {
  childElements,
  element,
  firstChild,
  getAttr,
  insertOrdered,
  removeChild,
  setAttr,
  setTextContent,
  XmlElement,
} from "../xml/tree";
import { toKiB } from "../xml/units";
import { normalizeUuid } from "../xml/uuid";
import { DEFAULT_URI, DiskSpec, DomainInputs, InputFailure, InterfaceSpec } from "./inputs";

/** Our metadata namespace: marks domains this provider created or adopted. */
export const OWNER_NAMESPACE = "urn:pulumi-libvirt-domain:owner:1";
/** The element name (with its prefix) of our ownership mark. */
export const OWNER_ELEMENT = "lvd:owner";

/** The template used when no `xml` input is given: a small, disk-less guest. */
export const DEFAULT_TEMPLATE = `<domain type='qemu'>
  <name>unnamed</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
  <devices>
    <serial type='pty'/>
    <console type='pty'/>
  </devices>
</domain>
`;

/** The composed desired state. */
export interface ComposedDomain {
  readonly def: DomainDef;
  /** The canonical desired XML (what `check` returns as `xml`). */
  readonly xml: string;
  readonly identity: DomainIdentity;
  /** The hwuuid in effect (input, else the template's), normalized; undefined when none. */
  readonly hwuuid: string | undefined;
}

const COMPOSE_BRAND = "__pulumiLibvirtDomainComposeError";

/**
 * {@link ComposeError}: the inputs cannot be composed; carries per-property `failures` (what
 * `check` returns). `path` lists the properties; the message is the failures' reasons, one a
 * line, each in the one format (`property: reason; ...; fix: ...`).
 */
export class ComposeError extends LibvirtDomainError {
  /** The failures, per property; each reason carries its own fix. */
  public readonly failures: InputFailure[];

  /** @param failures the failures, per property (at least one) */
  constructor(failures: InputFailure[]) {
    const properties = [...new Set(failures.map((f) => f.property))].join(", ");
    super(
      "the inputs cannot be composed into a domain XML",
      { path: properties, fix: `change ${properties || "the inputs"} as each failure's own fix says` },
      COMPOSE_BRAND,
      failures.map((f) => f.reason).join("\n"),
    );
    this.failures = failures;
  }

  /** True for any {@link ComposeError}, whichever copy of this module made it. */
  public static override isInstance(e: unknown): e is ComposeError {
    return hasBrand(e, COMPOSE_BRAND);
  }
}

function xmlFailure(property: string, e: DomainXmlError): InputFailure {
  return { property, reason: `${property}: ${e.message}` };
}

/** An ownership mark, as read from `<metadata>`. */
export interface OwnerMark {
  /** The domain existed before and was adopted. */
  readonly adopted: boolean;
  /** The resource that made or adopted it: `project/stack/name` (absent when none was given). */
  readonly ownerId?: string;
  /** The connection URI as the provider was given it; absent in marks of earlier versions. */
  readonly connection?: string;
}

/** Who owns a domain: the resource (`project/stack/name`) and the connection URI it was given. */
export interface OwnerIdentity {
  readonly ownerId?: string;
  readonly connection: string;
}

/** Reads the ownership mark, if any. */
export function ownerMark(def: DomainDef): OwnerMark | undefined {
  const md = firstChild(def.root, "metadata");
  const mark =
    md &&
    childElements(md).find(
      (e) =>
        e.name.endsWith(":owner") && e.attrs.some((a) => a.name.startsWith("xmlns") && a.value === OWNER_NAMESPACE),
    );
  return mark
    ? {
        adopted: getAttr(mark, "adopted") === "yes",
        ownerId: getAttr(mark, "resource"),
        connection: getAttr(mark, "connection"),
      }
    : undefined;
}

/** Writes the ownership mark into `<metadata>`: the resource and the connection that own the domain. */
export function setOwnerMark(def: DomainDef, adopted: boolean, ownerId?: string, connection?: string): void {
  const md = def.ensureChild("metadata");
  for (const e of childElements(md)) {
    if (e.attrs.some((a) => a.name.startsWith("xmlns") && a.value === OWNER_NAMESPACE)) removeChild(md, e);
  }
  const attrs: Record<string, string> = { "xmlns:lvd": OWNER_NAMESPACE, adopted: adopted ? "yes" : "no" };
  if (ownerId !== undefined) attrs.resource = ownerId;
  if (connection !== undefined) attrs.connection = connection;
  md.children.push(element(OWNER_ELEMENT, attrs));
}

/**
 * Why the domain `def` is not owned by `owner`, or undefined when it is. The mark must name the
 * same resource (`project/stack/name`; absent on both sides only when no owner id was given) and
 * the same connection URI, compared as written. A mark of an earlier version, which names no
 * connection, is compared on what it has: the resource.
 */
export function notOwnedReason(def: DomainDef, owner: OwnerIdentity): string | undefined {
  const m = ownerMark(def);
  if (!m) return "it has no pulumi-libvirt-domain ownership mark, so this stack did not create or adopt it";
  if (m.ownerId !== owner.ownerId) {
    return `its pulumi-libvirt-domain ownership mark names the resource ${JSON.stringify(m.ownerId ?? null)}, not ${JSON.stringify(owner.ownerId ?? null)}: another project, stack or resource created or adopted it`;
  }
  if (m.connection !== undefined && m.connection !== owner.connection) {
    return `its pulumi-libvirt-domain ownership mark names the connection ${JSON.stringify(m.connection)}, not ${JSON.stringify(owner.connection)}: it was created or adopted through another connection`;
  }
  return undefined;
}

/** Default disk target for the n-th typed disk: vda, vdb, ... (sda for sata/scsi, hda for ide). */
function defaultTarget(d: DiskSpec, n: number): string {
  const prefix = d.bus === "sata" || d.bus === "scsi" ? "sd" : d.bus === "ide" ? "hd" : "vd";
  return prefix + String.fromCharCode(97 + n);
}

function diskElement(d: DiskSpec, n: number): XmlElement {
  const format = d.format ?? (d.file.endsWith(".qcow2") ? "qcow2" : "raw");
  const disk = element("disk", { type: "file", device: d.device ?? "disk" }, [
    element("driver", { name: "qemu", type: format }),
    element("source", { file: d.file }),
    element("target", { dev: d.target ?? defaultTarget(d, n), bus: d.bus ?? "virtio" }),
  ]);
  if (d.serial !== undefined) {
    const s = element("serial");
    setTextContent(s, d.serial);
    disk.children.push(s);
  }
  if (d.bootOrder !== undefined) disk.children.push(element("boot", { order: String(d.bootOrder) }));
  if (d.readonly) disk.children.push(element("readonly"));
  return disk;
}

function interfaceElement(n: InterfaceSpec): XmlElement {
  const el = element("interface", { type: n.type });
  if (n.mac !== undefined) el.children.push(element("mac", { address: n.mac.toLowerCase() }));
  if (n.type === "network") el.children.push(element("source", { network: n.source! }));
  if (n.type === "bridge") el.children.push(element("source", { bridge: n.source! }));
  if (n.type === "direct") el.children.push(element("source", { dev: n.source!, mode: "bridge" }));
  el.children.push(element("model", { type: n.model ?? "virtio" }));
  return el;
}

/**
 * Composes the desired XML. `mode` is the resolved hwuuid mode; `adopted` marks an adopted
 * domain. Throws a {@link ComposeError} with per-property failures.
 */
export function composeDomain(inputs: DomainInputs, mode: "native" | "passthrough", adopted = false): ComposedDomain {
  let def: DomainDef;
  try {
    def = DomainDef.parse(inputs.xml ?? DEFAULT_TEMPLATE, "xml");
  } catch (e) {
    if (DomainXmlError.isInstance(e)) throw new ComposeError([xmlFailure("xml", e)]);
    throw e;
  }
  const failures: InputFailure[] = [];
  if (inputs.xml !== undefined && def.childText("uuid") !== undefined) {
    failures.push({
      property: "xml",
      reason:
        "xml: the template sets <uuid>, but the libvirt uuid is an output (new on every re-create); fix: remove <uuid> from the template and set hwuuid for a stable guest-visible identity",
    });
  }
  def.name = inputs.name;
  try {
    if (inputs.memory !== undefined) {
      // validateInputs already refused any other shape; were one to come here, toKiB refuses "".
      const [, amount = "", unit] = /^\s*([0-9]+)\s*([A-Za-z]+)\s*$/.exec(inputs.memory) ?? [];
      const kib = toKiB(amount, unit, "memory");
      def.setMemoryKiB(kib, "memory");
      def.setMemoryKiB(kib, "currentMemory");
    }
  } catch (e) {
    if (DomainXmlError.isInstance(e)) failures.push(xmlFailure("memory", e));
    else throw e;
  }
  if (inputs.vcpus !== undefined) def.setChildText("vcpu", String(inputs.vcpus));
  if (inputs.machine !== undefined || inputs.firmware !== undefined) {
    const os = def.ensureChild("os");
    let type = firstChild(os, "type");
    if (!type) {
      type = element("type", { arch: "x86_64" }, [{ kind: "text", value: "hvm" }]);
      os.children.unshift(type);
    }
    if (inputs.machine !== undefined) setAttr(type, "machine", inputs.machine);
    if (inputs.firmware !== undefined) setAttr(os, "firmware", inputs.firmware === "efi" ? "efi" : undefined);
  }
  if (inputs.disks?.length || inputs.interfaces?.length) {
    const devices = def.devices();
    (inputs.disks ?? []).forEach((d, n) => {
      const el = diskElement(d, n);
      const dev = getAttr(firstChild(el, "target"), "dev");
      for (const old of childElements(devices, "disk"))
        if (getAttr(firstChild(old, "target"), "dev") === dev) removeChild(devices, old);
      insertOrdered(devices, el, ["emulator", "disk"]);
    });
    for (const n of inputs.interfaces ?? []) {
      const el = interfaceElement(n);
      if (n.mac) {
        for (const old of childElements(devices, "interface")) {
          if (getAttr(firstChild(old, "mac"), "address")?.toLowerCase() === n.mac.toLowerCase())
            removeChild(devices, old);
        }
      }
      insertOrdered(devices, el, ["emulator", "disk", "controller", "lease", "filesystem", "interface"]);
    }
  }
  // The hwuuid: the input wins over the template's (read by libvirt's rules, so a malformed one
  // is refused and an all-equal one is unset), in the form this connection understands.
  let templateHwuuid: string | undefined;
  if (inputs.hwuuid === undefined) {
    try {
      templateHwuuid = resolveIdentity(def).hwuuid ?? uuidPassthrough(def);
    } catch (e) {
      if (DomainXmlError.isInstance(e)) throw new ComposeError([...failures, xmlFailure("xml", e)]);
      throw e;
    }
  }
  const hwuuid = inputs.hwuuid !== undefined ? normalizeUuid(inputs.hwuuid) : templateHwuuid;
  def.setChildText("hwuuid", undefined);
  removeUuidPassthrough(def);
  if (hwuuid !== undefined) {
    if (mode === "native") {
      def.setChildText("hwuuid", hwuuid);
    } else {
      def.ensureQemuNamespace();
      const cmd = def.ensureChild("qemu:commandline");
      cmd.children.push(element("qemu:arg", { value: "-uuid" }), element("qemu:arg", { value: hwuuid }));
    }
  }
  setOwnerMark(def, adopted, inputs.ownerId, inputs.connection?.uri ?? DEFAULT_URI);
  let identity: DomainIdentity;
  try {
    identity = normalizeIdentity(def);
  } catch (e) {
    if (!DomainXmlError.isInstance(e)) throw e;
    const property = /hwuuid/.test(e.reason) && inputs.hwuuid !== undefined ? "hwuuid" : "xml";
    throw new ComposeError([...failures, xmlFailure(property, e)]);
  }
  if (
    mode === "passthrough" &&
    hwuuid !== undefined &&
    identity.sysinfoUuid !== null &&
    identity.sysinfoUuid !== hwuuid
  ) {
    failures.push({
      property: "xml",
      reason: `xml: the sysinfo uuid entry (${identity.sysinfoUuid}) cannot differ from the hwuuid (${hwuuid}) on libvirt < 11.7, where sysinfo must equal the domain uuid; fix: remove the <entry name='uuid'> from <sysinfo>`,
    });
  }
  if (failures.length) throw new ComposeError(failures);
  return {
    def,
    xml: def.format(),
    identity: { ...identity, hwuuid: hwuuid ?? null, guestUuid: hwuuid ?? identity.guestUuid },
    hwuuid,
  };
}
