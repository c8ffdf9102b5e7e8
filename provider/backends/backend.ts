/**
 * {@link DomainBackend}: what the Domain provider needs from a hypervisor, implemented by virsh
 * (any libvirt URI) and by QEMU directly (`qemu-direct:///STATE_DIR`). {@link backendFor}
 * picks one from the connection URI.
 */
import type { DomainState, LibvirtCapabilities } from "./virsh/backend";
import { VirshBackend } from "./virsh/backend";
import { QemuDirectBackend, isDirectUri, DirectError } from "./qemu/direct";
import { runVirshSync } from "./virsh/exec";

/** The operations on domains the provider uses. */
export interface DomainBackend {
  readonly uri: string;
  probe(): Promise<LibvirtCapabilities>;
  exists(name: string): Promise<boolean>;
  /** Defines or redefines; validates so nothing is silently dropped. */
  define(xml: string, validate?: boolean): Promise<void>;
  dumpxmlInactive(name: string): Promise<string>;
  domuuid(name: string): Promise<string>;
  domstate(name: string): Promise<DomainState>;
  /** XML and state, or undefined when the domain does not exist. */
  read(name: string, opts?: { fresh?: boolean }): Promise<{ xml: string; state: DomainState } | undefined>;
  start(name: string): Promise<void>;
  /** Stops at once (if running) and undefines (one process where the backend can). */
  destroyAndUndefine(name: string): Promise<void>;
  /** Defines a new domain (its XML carries `uuid`), starts it if asked, reads it back (one process where the backend can). */
  defineStartRead(xml: string, uuid: string, start: boolean): Promise<{ xml: string; state: DomainState }>;
  /** Stops and undefines the domain with this uuid; a domain already gone is fine. */
  destroyAndUndefineByUuid(uuid: string, name: string): Promise<void>;
  destroy(name: string): Promise<void>;
  shutdown(name: string, timeoutSeconds: number): Promise<"shutdown" | "destroyed" | "not-running">;
  undefine(name: string): Promise<void>;
  /** The guest-visible UUID over QMP `query-uuid`. */
  queryGuestUuid(name: string): Promise<string>;
  listNames(): Promise<string[]>;
  /** Runs `fn` holding this domain's lock where the backend needs one (QEMU-direct). */
  withLock<T>(name: string, fn: () => Promise<T>): Promise<T>;
}

/** The backend for a connection URI. */
export function backendFor(uri: string): DomainBackend {
  return isDirectUri(uri) ? new QemuDirectBackend(uri) : new VirshBackend(uri);
}

/**
 * A domain's inactive XML (security info included) and state, synchronously (a program must know a fleet's template
 * before it declares resources). Throws with libvirt's wording when it does not exist.
 */
export function readDomainSync(uri: string, name: string): { xml: string; state: string } {
  if (isDirectUri(uri)) {
    const r = new QemuDirectBackend(uri).readSync(name);
    if (!r) throw new DirectError(`failed to get domain '${name}'`);
    return r;
  }
  const state = runVirshSync(uri, ["domstate", name]).trim();
  // Security info included: a fleet member keeps the template's graphics password.
  return { xml: runVirshSync(uri, ["dumpxml", "--inactive", "--security-info", name]), state };
}
