/**
 * The error family of the whole project: {@link LibvirtDomainError} (the base every error class
 * extends, or is branded into with {@link brandErrorFamily}) and the XML layer's own
 * {@link DomainXmlError}. Every error names where it happened (`path`), the value received, what
 * is allowed and how to fix it, in one message format ({@link formatErrorMessage}), so that the
 * provider's `check` can turn it into a per-property failure and the CLI can print libvirt's own
 * wording. The classes of the other layers extend the base in their own modules (the XML layer
 * imports nothing from them).
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

/**
 * True when `e` is an object carrying `brand` set to true: the `isInstance` check of this
 * project's error classes, which works across copies of a module (where `instanceof` fails).
 */
export function hasBrand(e: unknown, brand: string): boolean {
  return typeof e === "object" && e !== null && (e as Record<string, unknown>)[brand] === true;
}

/** What every {@link LibvirtDomainError} says besides its reason. */
export interface ErrorDetails {
  /** Where: an XPath-like path in a document (`/domain/hwuuid`), an input property, a file, a domain. */
  readonly path: string;
  /** The value received, when there is one (shown quoted, truncated to 120 characters). */
  readonly value?: string;
  /** What is allowed there. */
  readonly allowed?: string;
  /** How to fix it: always present on errors the provider raises (a unit test holds this). */
  readonly fix?: string;
}

const FAMILY_BRAND = "__pulumiLibvirtDomainError";

/**
 * Brands `e` as a member of the {@link LibvirtDomainError} family (and, with `brand`, of its own
 * class), for an error class that cannot extend {@link LibvirtDomainError} because it must extend
 * another base (`FleetPlanError` extends `pulumi.ResourceError`, which Pulumi prints without a
 * stack trace). The class declares the {@link ErrorDetails} fields itself and sets them.
 */
export function brandErrorFamily(e: Error, brand?: string): void {
  Object.defineProperty(e, FAMILY_BRAND, { value: true, enumerable: false });
  if (brand) Object.defineProperty(e, brand, { value: true, enumerable: false });
}

/**
 * The one message format of every error this project raises:
 * `PATH: REASON; got "VALUE"; allowed: ALLOWED; fix: FIX` (absent parts left out).
 */
export function formatErrorMessage(reason: string, d: ErrorDetails): string {
  const parts = [d.path ? `${d.path}: ${reason}` : reason];
  if (d.value !== undefined) parts.push(`got ${JSON.stringify(truncate(d.value))}`);
  if (d.allowed) parts.push(`allowed: ${d.allowed}`);
  if (d.fix) parts.push(`fix: ${d.fix}`);
  return parts.join("; ");
}

/**
 * The base of every error class in this project: the bare `reason`, where it happened (`path`),
 * the value received, what is allowed and how to fix it, in one message format
 * ({@link formatErrorMessage}). Each subclass passes its own brand so that its `isInstance`
 * works across copies of a module (the dynamic provider runs from a serialized closure, where
 * `instanceof` fails); {@link LibvirtDomainError.isInstance} recognises the whole family.
 */
export class LibvirtDomainError extends Error {
  /** Brand of the whole family, for {@link LibvirtDomainError.isInstance}. */
  public readonly [FAMILY_BRAND] = true;
  /** The bare reason, without path, value or fix. */
  public readonly reason: string;
  /** Where it happened, or which input. */
  public readonly path: string;
  /** The value received, if any. */
  public readonly value?: string;
  /** What is allowed. */
  public readonly allowed?: string;
  /** How to fix it. */
  public readonly fix?: string;

  /**
   * @param reason the bare reason
   * @param details path, value, allowed, fix
   * @param brand the subclass's own brand property, set to true on the instance
   * @param message the full message, when the subclass composes its own (e.g. a list of failures)
   * @param cause the error this one reports, if any
   */
  constructor(reason: string, details: ErrorDetails, brand?: string, message?: string, cause?: unknown) {
    super(message ?? formatErrorMessage(reason, details), cause !== undefined ? { cause } : undefined);
    this.name = new.target.name;
    this.reason = reason;
    this.path = details.path;
    this.value = details.value;
    this.allowed = details.allowed;
    this.fix = details.fix;
    if (brand) Object.defineProperty(this, brand, { value: true, enumerable: false });
  }

  /** True for any error of this project's family, whichever copy of the module made it. */
  public static isInstance(e: unknown): e is LibvirtDomainError {
    return hasBrand(e, FAMILY_BRAND);
  }
}

/** Details of a {@link DomainXmlError}. */
export interface DomainXmlErrorDetails extends ErrorDetails {
  /** libvirt's category, when the message mirrors a libvirt error. */
  readonly category?: LibvirtErrorCategory;
  /** The reason is libvirt's own text for the same input (identity rules). @default false */
  readonly mirrorsLibvirt?: boolean;
}

const BRAND = "__pulumiLibvirtDomainXmlError";

/**
 * {@link DomainXmlError} is any error about a domain XML document: not well formed, refused
 * by a libvirt rule, or something our QEMU command line builder cannot express.
 *
 * `reason` is the bare text (for libvirt rules, libvirt's exact text, e.g.
 * `malformed hwuuid element`); `message` adds the value, what is allowed and the fix.
 */
export class DomainXmlError extends LibvirtDomainError {
  /** libvirt's category, when mirroring a libvirt error. */
  public readonly category?: LibvirtErrorCategory;
  /** The reason is libvirt's own text for the same input. */
  public readonly mirrorsLibvirt: boolean;

  /**
   * @param reason the bare reason (libvirt's text when `details.mirrorsLibvirt`)
   * @param details path, value, allowed, fix, and libvirt's category
   */
  constructor(reason: string, details: DomainXmlErrorDetails) {
    super(reason, details, BRAND);
    this.category = details.category;
    this.mirrorsLibvirt = details.mirrorsLibvirt ?? false;
  }

  /** The one line virsh would print for this error, e.g. `internal error: malformed hwuuid element`. */
  public get libvirtMessage(): string {
    return this.category ? `${this.category}: ${this.reason}` : this.reason;
  }

  /** True for any {@link DomainXmlError}, whichever copy of this module made it. */
  public static override isInstance(e: unknown): e is DomainXmlError {
    return hasBrand(e, BRAND);
  }
}

function truncate(s: string): string {
  return s.length > 120 ? s.slice(0, 117) + "..." : s;
}
