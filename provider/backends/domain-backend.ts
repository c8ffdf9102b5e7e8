/**
 * {@link DomainBackend}: what the Domain provider needs from a hypervisor, implemented by virsh
 * (any libvirt URI) and by QEMU directly (`qemu-direct:///STATE_DIR`). {@link backendFor}
 * picks one from the connection URI.
 */
import { parseUuidNameList, splitStateAndXml, VirshBackend, virshQuote } from "./virsh/virsh-backend";
import { QemuDirectBackend, isDirectUri, DirectError } from "./qemu/direct";
import { runVirshSync, VirshError } from "./virsh/exec";

/** The first libvirt release with `<hwuuid>`, and the numeric version comparison (defined in `./capabilities`, pure). */
export { HWUUID_MIN_LIBVIRT, compareVersions } from "./capabilities";

/** How the guest-visible hwuuid is carried: libvirt's `<hwuuid>` or the `<qemu:commandline>` `-uuid` passthrough. */
export type HwuuidMode = "native" | "passthrough";

/** What a connection offers (both backends' `probe`). */
export interface LibvirtCapabilities {
  /** The daemon's libvirt version, e.g. `12.9.0`. */
  readonly libvirtVersion: string;
  /** The hypervisor driver name as virsh reports it (`QEMU`, `Test`, ...). */
  readonly hypervisor: string;
  /** The hypervisor version (QEMU's), e.g. `11.1.3`. */
  readonly hypervisorVersion: string;
  /** The best hwuuid mode this connection supports, or undefined when none. */
  readonly hwuuidMode: HwuuidMode | undefined;
  /** Why no hwuuid mode is available, when none is. */
  readonly hwuuidUnsupportedReason?: string;
}

/** A domain's power state as `virsh domstate` names it. */
export type DomainState =
  "running" | "shut off" | "paused" | "blocked" | "in shutdown" | "crashed" | "pmsuspended" | "idle";

/**
 * How the provider addresses a domain: by the uuid it recorded wherever it has one, else by name.
 * virsh takes a bare argument for a domain id first, then a uuid, then a name, so a name that is
 * all digits or shaped like a uuid can address another domain; a uuid cannot.
 */
export interface DomainRef {
  readonly name: string;
  /** The recorded uuid; when given, only the domain with this uuid is addressed. */
  readonly uuid?: string;
}

/**
 * A {@link DomainRef}, or a bare string: virsh takes it as it takes any argument (id, then uuid,
 * then name), except `read`, which looks it up as a name.
 */
export type DomainAddress = DomainRef | string;

/**
 * Changes to a running guest that libvirt applies live and to the persistent definition at once
 * (`--live --config`), so the two agree afterwards. Each rejects with libvirt's reason when
 * libvirt refuses; nothing is changed then.
 */
export interface LiveDomainOps {
  /** Hot-plugs a device (`attach-device --live --config`); `xml` is the device element. */
  attachDeviceLive(ref: DomainRef, xml: string): Promise<void>;
  /**
   * Unplugs a device (`detach-device --live --config`); `xml` is the device element as defined.
   * The guest releases it asynchronously: see {@link LiveDomainOps.dumpxmlLive}.
   */
  detachDeviceLive(ref: DomainRef, xml: string): Promise<void>;
  /** Changes the media of a CD-ROM or floppy (`change-media --update --live --config`). */
  changeMediaLive(ref: DomainRef, target: string, source: string): Promise<void>;
  /** Sets the balloon target, `<currentMemory>` (`setmem --live --config`), within `<memory>`. */
  setMemoryLive(ref: DomainRef, currentMemoryKiB: bigint): Promise<void>;
  /** Sets the vCPUs online, `<vcpu current>` (`setvcpus --live --config`), within the maximum. */
  setVcpusLive(ref: DomainRef, count: number): Promise<void>;
  /** The running guest's XML (libvirt's live definition, security info included). */
  dumpxmlLive(ref: DomainRef): Promise<string>;
}

/** The operations on domains the provider uses. */
export interface DomainBackend {
  readonly uri: string;
  probe(): Promise<LibvirtCapabilities>;
  /** Whether a domain of this name exists (looked up by name only). */
  exists(name: string): Promise<boolean>;
  /** Defines or redefines; validates so nothing is silently dropped. */
  define(xml: string, validate?: boolean): Promise<void>;
  dumpxmlInactive(ref: DomainAddress): Promise<string>;
  /** The uuid of the domain of this name (looked up by name only). */
  domuuid(name: string): Promise<string>;
  domstate(ref: DomainAddress): Promise<DomainState>;
  /** XML and state, or undefined when the domain does not exist (with a uuid: when no domain has it). */
  read(ref: DomainAddress, opts?: { fresh?: boolean }): Promise<{ xml: string; state: DomainState } | undefined>;
  start(ref: DomainAddress): Promise<void>;
  /** Stops at once (if running) and undefines (one process where the backend can). */
  destroyAndUndefine(ref: DomainAddress): Promise<void>;
  /**
   * Reads the domain with this uuid, lets `judge` decide (it throws to refuse), then stops it at
   * once and undefines it (one process where the backend can). `gone` when no domain has the
   * uuid or `judge` says so; nothing is touched then.
   */
  destroyAndUndefineIf(
    ref: DomainRef & { readonly uuid: string },
    judge: (r: { xml: string; state: DomainState }) => "remove" | "gone",
  ): Promise<"removed" | "gone">;
  /** Defines a new domain (its XML carries `uuid`), starts it if asked, reads it back (one process where the backend can). */
  defineStartRead(xml: string, uuid: string, start: boolean): Promise<{ xml: string; state: DomainState }>;
  /** Stops and undefines the domain with this uuid; a domain already gone is fine. */
  destroyAndUndefineByUuid(uuid: string, name: string): Promise<void>;
  destroy(ref: DomainAddress): Promise<void>;
  shutdown(ref: DomainAddress, timeoutSeconds: number): Promise<"shutdown" | "destroyed" | "not-running">;
  undefine(ref: DomainAddress): Promise<void>;
  /** The guest-visible UUID over QMP `query-uuid`. */
  queryGuestUuid(ref: DomainAddress): Promise<string>;
  listNames(): Promise<string[]>;
  /**
   * Live changes to a running guest, where the backend can make them (virsh); absent where it
   * cannot (QEMU-direct: those changes wait for a restart).
   */
  readonly live?: LiveDomainOps;
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
  // Security info included: a fleet member keeps the template's graphics password.
  // By name in the name list, then by that uuid: a name that is another domain's id or uuid
  // cannot make us read (and clone) that other domain.
  const uuid = parseUuidNameList(runVirshSync(uri, ["list", "--all", "--uuid", "--name"])).get(name);
  if (!uuid) throw new VirshError(uri, ["dumpxml", name], 1, `error: failed to get domain '${name}'\n`, "");
  return splitStateAndXml(
    runVirshSync(uri, [
      [
        ["domstate", uuid],
        ["dumpxml", "--inactive", "--security-info", uuid],
      ]
        .map((c) => c.map(virshQuote).join(" "))
        .join(" ; "),
    ]),
  );
}
