/**
 * Error classes of the XML layer. Every error names where it happened (`path`), the value
 * received, what is allowed and how to fix it, so that the provider's `check` can turn it into
 * a per-property failure and the CLI can print libvirt's own wording.
 *
 * Errors carry a brand and an `isInstance` check because `instanceof` fails across copies of a
 * module (the dynamic provider runs from a serialized closure).
 */

/**
 * libvirt's error categories, as virsh prints them before the message. XML detail errors
 * (VIR_ERR_XML_DETAIL, e.g. the sysinfo UUID mismatches) have no category: virsh prints the
 * bare text.
 */
export type LibvirtErrorCategory = "internal error" | "unsupported configuration" | "invalid argument";

/** Details of a {@link DomainXmlError}. */
export interface DomainXmlErrorDetails {
  /** Where in the document (an XPath-like path, e.g. `/domain/hwuuid`) or which input. */
  readonly path: string;
  /** The value received, when there is one (shown quoted). */
  readonly value?: string;
  /** What is allowed there. */
  readonly allowed?: string;
  /** How to fix it. */
  readonly fix?: string;
  /** libvirt's category, when the message mirrors a libvirt error. */
  readonly category?: LibvirtErrorCategory;
  /** The reason is libvirt's own text for the same input (identity rules). @default false */
  readonly mirrorsLibvirt?: boolean;
}

/**
 * True when `e` is an object carrying `brand` set to true: the `isInstance` check of this
 * project's error classes, which works across copies of a module (where `instanceof` fails).
 */
export function hasBrand(e: unknown, brand: string): boolean {
  return typeof e === "object" && e !== null && (e as Record<string, unknown>)[brand] === true;
}

const BRAND = "__pulumiLibvirtDomainXmlError";

/**
 * {@link DomainXmlError} is any error about a domain XML document: not well formed, refused
 * by a libvirt rule, or something our QEMU command line builder cannot express.
 *
 * `reason` is the bare text (for libvirt rules, libvirt's exact text, e.g.
 * `malformed hwuuid element`); `message` adds the value, what is allowed and the fix.
 */
export class DomainXmlError extends Error {
  /** Brand for {@link DomainXmlError.isInstance}. */
  public readonly [BRAND] = true;
  /** The bare reason, libvirt's exact text where libvirt has one. */
  public readonly reason: string;
  /** Where in the document, or which input. */
  public readonly path: string;
  /** The value received, if any. */
  public readonly value?: string;
  /** What is allowed. */
  public readonly allowed?: string;
  /** How to fix it. */
  public readonly fix?: string;
  /** libvirt's category, when mirroring a libvirt error. */
  public readonly category?: LibvirtErrorCategory;
  /** The reason is libvirt's own text for the same input. */
  public readonly mirrorsLibvirt: boolean;

  /** Builds the error from its bare reason and details. */
  constructor(reason: string, details: DomainXmlErrorDetails) {
    super(DomainXmlError.compose(reason, details));
    this.name = "DomainXmlError";
    this.reason = reason;
    this.path = details.path;
    this.value = details.value;
    this.allowed = details.allowed;
    this.fix = details.fix;
    this.category = details.category;
    this.mirrorsLibvirt = details.mirrorsLibvirt ?? false;
  }

  /** The one line virsh would print for this error, e.g. `internal error: malformed hwuuid element`. */
  public get libvirtMessage(): string {
    return this.category ? `${this.category}: ${this.reason}` : this.reason;
  }

  /** True for any {@link DomainXmlError}, whichever copy of this module made it. */
  public static isInstance(e: unknown): e is DomainXmlError {
    return hasBrand(e, BRAND);
  }

  private static compose(reason: string, d: DomainXmlErrorDetails): string {
    const parts = [`${d.path}: ${reason}`];
    if (d.value !== undefined) parts.push(`got ${JSON.stringify(truncate(d.value))}`);
    if (d.allowed) parts.push(`allowed: ${d.allowed}`);
    if (d.fix) parts.push(`fix: ${d.fix}`);
    return parts.join("; ");
  }
}

function truncate(s: string): string {
  return s.length > 120 ? s.slice(0, 117) + "..." : s;
}
