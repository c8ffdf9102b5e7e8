/**
 * The error of the QEMU-direct backend and its lock: {@link DirectError}, in libvirt's words
 * where libvirt has the same failure. A module of its own so that the backend and its lock both
 * import it without importing each other.
 */
import { ErrorDetails, hasBrand, LibvirtDomainError } from "../../xml/errors";

const BRAND = "__pulumiLibvirtDomainDirectError";

/**
 * What a {@link DirectError} says besides its reason: `fix` defaults to {@link directFix} of the
 * reason; `cause` is the error it reports, if any.
 */
export type DirectErrorDetails = Partial<ErrorDetails> & { readonly cause?: unknown };

/**
 * {@link DirectError}: a QEMU-direct operation failed. `reason` (also `libvirtMessage`) is in
 * libvirt's words where libvirt has the same failure (`failed to get domain 'web'`), so callers
 * treat both backends alike; the message is `REASON; fix: FIX` (with `PATH: ` first when there is one).
 */
export class DirectError extends LibvirtDomainError {
  /** libvirt-style text (what virsh would print after `error: `): the bare reason. */
  public readonly libvirtMessage: string;
  /** For multi-step operations: the step that failed. */
  public step?: string;

  /**
   * @param reason libvirt-style text of the failure
   * @param details where, the value, what is allowed, how to fix it (@default {@link directFix} of the reason)
   */
  constructor(reason: string, details: DirectErrorDetails = {}) {
    const { cause, ...rest } = details;
    super(reason, { ...rest, path: rest.path ?? "", fix: rest.fix ?? directFix(reason) }, BRAND, undefined, cause);
    this.libvirtMessage = reason;
  }

  /** True for any {@link DirectError}, whichever copy of this module made it. */
  public static override isInstance(e: unknown): e is DirectError {
    return hasBrand(e, BRAND);
  }
}

/** How to fix a QEMU-direct failure that names no fix of its own, from its libvirt-style reason. */
export function directFix(reason: string): string {
  if (/^failed to get domain/.test(reason))
    return "the domain is not defined in this qemu-direct state directory: check its name; if it was removed outside Pulumi, run `pulumi refresh`";
  if (/domain is already running/.test(reason)) return "stop the domain first, or leave it running";
  if (/domain is not running|cannot undefine a running domain/.test(reason))
    return reason.includes("undefine") ? "stop the domain first (destroy or shutdown)" : "start the domain first";
  return "see the QEMU log in the domain's directory under the qemu-direct state directory";
}
