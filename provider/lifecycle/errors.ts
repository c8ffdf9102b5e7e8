/**
 * The errors of the Domain and DomainDisk lifecycles (create, update, delete), in the project's
 * one error family ({@link LibvirtDomainError}): each names the domain or image (`path`), the
 * value where there is one, and always a `fix`.
 */
import { ErrorDetails, hasBrand, LibvirtDomainError } from "../xml/errors";
import { DirectError } from "../backends/qemu/direct-error";
import { VirshError } from "../backends/virsh/exec";

const LIFECYCLE_BRAND = "__pulumiLibvirtDomainLifecycleError";
const INIT_BRAND = "__pulumiLibvirtDomainInitError";

/** Details of a lifecycle error: the fix is required. */
export interface LifecycleErrorDetails extends ErrorDetails {
  readonly fix: string;
}

/**
 * {@link LifecycleError} is a lifecycle step that failed or was refused (a domain that is not
 * ours, one that vanished, a define or start libvirt refused). `message` keeps the wording the
 * step has always used (tests and users match on it); the fields carry path, value and fix.
 */
export class LifecycleError extends LibvirtDomainError {
  /**
   * @param reason the bare reason
   * @param details path (the domain or the input), value, allowed, fix
   * @param message the full message, when it is not `PATH: REASON; ...; fix: FIX`
   * @param cause the error this one wraps
   */
  constructor(reason: string, details: LifecycleErrorDetails, message?: string, cause?: unknown) {
    super(reason, details, LIFECYCLE_BRAND, message);
    if (cause !== undefined) this.cause = cause;
  }

  /** True for any {@link LifecycleError}, whichever copy of this module made it. */
  public static override isInstance(e: unknown): e is LifecycleError {
    return hasBrand(e, LIFECYCLE_BRAND);
  }
}

/**
 * {@link DomainInitError} records a half-made domain in the state: the engine reads `id`,
 * `properties` and `reasons` as its ErrorResourceInitFailed, so the domain is neither leaked nor
 * forgotten, and the next `up` or `destroy` finishes the job.
 */
export class DomainInitError extends LibvirtDomainError {
  /** The domain name: the resource id. */
  public readonly id: string;
  /** What is known of it (the checked inputs). */
  public readonly properties: Record<string, unknown>;
  /** Why it failed: the message. */
  public readonly reasons: string[];

  /**
   * @param reason the bare reason, also the message (it names the domain and what failed)
   * @param details path (the domain), fix
   * @param id the resource id to record
   * @param properties what is known of the domain
   */
  constructor(reason: string, details: LifecycleErrorDetails, id: string, properties: Record<string, unknown>) {
    super(reason, details, INIT_BRAND, reason);
    this.id = id;
    this.properties = properties;
    this.reasons = [reason];
  }

  /** True for any {@link DomainInitError}, whichever copy of this module made it. */
  public static override isInstance(e: unknown): e is DomainInitError {
    return hasBrand(e, INIT_BRAND);
  }
}

/**
 * The text of an error for a message of ours that embeds it: libvirt's own words for a backend
 * error (virsh, QEMU-direct), the bare reason for a lifecycle error, else the message.
 */
export function errorText(e: unknown): string {
  if (VirshError.isInstance(e) || DirectError.isInstance(e)) return e.libvirtMessage;
  if (LifecycleError.isInstance(e)) return e.reason;
  return e instanceof Error ? e.message : String(e);
}
