/**
 * The typed boundary of each resource: one inputs/outputs pair for Domain, DiskImage and
 * DomainFleet, shared by the SDK (its Args are checked against these, see `test/unit/types.test.ts`)
 * and the provider. The engine hands the provider untyped objects; the adapters
 * (`domain-provider.ts`, `disk.ts`) view them through these types once, where they come in.
 *
 * Types only, and key lists: no I/O, no Pulumi.
 */
import type { HwuuidMode } from "../backends/domain-backend";
import type { DomainInputs } from "../desired/inputs";
import type { DiskMode } from "../fleet/plan";
import type { VolumeStamp } from "../xml/volume";

export type { DomainInputs } from "../desired/inputs";

/** Every Domain input, in one list: the key type, `diff`'s input keys and the SDK's Args derive from it. */
export const DOMAIN_INPUT_KEYS = [
  "name",
  "hwuuid",
  "xml",
  "memory",
  "vcpus",
  "machine",
  "firmware",
  "disks",
  "interfaces",
  "connection",
  "running",
  "shutdownTimeoutSeconds",
  "restartOnChange",
  "adopt",
  "hwuuidMode",
  "replaceTrigger",
  "ownerId",
] as const satisfies readonly (keyof DomainInputs)[];

/** A Domain input's name. */
export type DomainInputKey = (typeof DOMAIN_INPUT_KEYS)[number];

/** True when the two key sets are equal; a compile-time check through {@link Expect}. */
export type SameKeys<A, B> = [Exclude<keyof A, keyof B>, Exclude<keyof B, keyof A>] extends [never, never]
  ? true
  : false;

/** Compiles only for `true`: `type _ = Expect<SameKeys<A, B>>` fails the build when the keys differ. */
export type Expect<T extends true> = T;

/** Compile-time: {@link DOMAIN_INPUT_KEYS} names every key of {@link DomainInputs}, and only those. */
export type DomainInputKeysComplete = Expect<SameKeys<Record<DomainInputKey, unknown>, Required<DomainInputs>>>;

/**
 * One object type from an intersection: a type alias of it takes an index signature, so the
 * provider's typed objects pass where the engine takes `Record<string, unknown>`.
 */
export type Flat<T> = { [K in keyof T]: T[K] };

/** A Domain's inputs after `check`: `xml` is the canonical desired XML, and the mode is resolved. */
export type DomainCheckedInputs = Flat<
  DomainInputs & {
    /** The canonical desired XML (template, typed fields, hwuuid, ownership mark). */
    readonly xml: string;
    /** The hwuuid mode `check` resolved `hwuuidMode` to. */
    readonly resolvedHwuuidMode?: HwuuidMode;
  }
>;

/** The provider's view of a Domain's state (outputs include the checked inputs). */
export type DomainOutputs = Flat<
  Omit<DomainCheckedInputs, "xml" | "hwuuidMode"> & {
    readonly name: string;
    /** The actual inactive XML, as libvirt reports it. */
    readonly xml: string;
    /** The libvirt uuid. */
    readonly uuid: string;
    /** The UUID the guest sees. */
    readonly guestUuid: string;
    /** The power state, as `virsh domstate` names it. */
    readonly state: string;
    readonly macAddresses: string[];
    readonly libvirtVersion: string;
    /** The resolved mode (`native` or `passthrough`); the input of the same name is the requested one. */
    readonly hwuuidMode: string;
    readonly pendingRestart: boolean;
    /** What the running guest takes only at its next restart, `PATH: why` (see `lifecycle/live.ts`). */
    readonly pendingChanges: string[];
    /** Paths where the actual XML no longer matches the desired one (found by `read`). */
    readonly drift: string[];
    /** The desired XML applied (the checked `xml` input). */
    readonly desiredXml: string;
  }
>;

/**
 * A Domain's recorded state as the engine hands it back (`olds` of diff/update, `props` of
 * read/delete): outputs of this or an earlier version, or the inputs of a create that failed
 * before the domain existed. Any key may be missing.
 */
export type DomainRecorded = Partial<DomainOutputs> & {
  /** The resolved mode (outputs), or the requested one (`auto`, ...: inputs of a failed create). */
  readonly hwuuidMode?: string;
};

/** Every DiskImage input, in one list; every change to one re-creates the image. */
export const DISK_INPUT_KEYS = [
  "path",
  "source",
  "sourceFormat",
  "mode",
  "replaceTrigger",
  "connection",
  "pool",
  "volume",
  "from",
] as const;

/** A DiskImage input's name. */
export type DiskInputKey = (typeof DISK_INPUT_KEYS)[number];

/**
 * The inputs of a DiskImage. Two kinds of image:
 * - a file (no `connection`): made on this machine with `qemu-img`/`cp` (the hypervisor's files
 *   must be local: a local libvirt, or QEMU-direct); `path` is required;
 * - a libvirt storage volume (`connection` given): made through libvirt's storage API over that
 *   connection (any URI, `qemu+ssh://` included), nothing touches the hypervisor's files
 *   directly; `source` must be a volume of a pool, the new volume goes into `pool` (default: the
 *   source's pool) as `volume` (default: the base name of `path`).
 */
export interface DiskInputs {
  /**
   * The image to make (absolute path on the hypervisor host). Required for a file; for a volume,
   * optional, and when given it must be where libvirt puts the volume (the pool's directory and
   * the volume name).
   */
  readonly path?: string;
  /** The template's image (its path on the hypervisor host, as the domain XML has it); only ever read. */
  readonly source: string;
  /** The template image's format: `qcow2` or `raw` (for a volume: the format libvirt reports for it). */
  readonly sourceFormat: string;
  /**
   * `overlay`: a qcow2 backed by the source; `copy`: a full copy; `seed`: a copy of `source` as it
   * is on another host (`from`), streamed out of that host (`vol-download`) into a private
   * temporary file here and uploaded into `pool` as `volume` (`vol-upload`); `connection`, `pool`
   * and `volume` are required.
   */
  readonly mode: "overlay" | "copy" | "seed";
  /** Any change re-creates the image. */
  readonly replaceTrigger?: string;
  /** Make the image as a libvirt storage volume over this connection (any libvirt URI but `qemu-direct://`). */
  readonly connection?: { readonly uri: string };
  /** The storage pool of the new volume (with `connection`). @default the source volume's pool */
  readonly pool?: string;
  /** The new volume's name (with `connection`). @default the base name of `path` */
  readonly volume?: string;
  /** `seed` only: the host that has `source` (a volume of one of its pools); only ever read. */
  readonly from?: { readonly uri: string };
}

/** Compile-time: {@link DISK_INPUT_KEYS} names every key of {@link DiskInputs}, and only those. */
export type DiskInputKeysComplete = Expect<SameKeys<Record<DiskInputKey, unknown>, Required<DiskInputs>>>;

/** A DiskImage's outputs: its inputs and what identifies the image it made. */
export type DiskOutputs = Flat<
  DiskInputs & {
    /** The image's path on the hypervisor host (for a volume: as libvirt reports it). */
    readonly path: string;
    /** Size on disk in bytes (for a volume: libvirt's allocation). */
    readonly sizeBytes: number;
    /** `st_dev`, decimal (files only). */
    readonly device?: string;
    /** The inode number, decimal (files only). */
    readonly inode?: string;
    /** Birth time in ns since the epoch, decimal; `"0"` where the file system keeps none (files only). */
    readonly birthtimeNs?: string;
    /** The hidden hard link pinning the inode, where there is no birth time (files only). */
    readonly pin?: string;
    /** What identifies the volume made (volumes only): pool uuid, key, path, format, capacity, backing store, times. */
    readonly volumeStamp?: VolumeStamp;
  }
>;

/**
 * A DiskImage's recorded state as the engine hands it back: outputs of this version, of the
 * previous one (`inode` a number, nothing else identifying), or the inputs of a failed create.
 */
export type DiskRecorded = Partial<Omit<DiskOutputs, "inode">> & { readonly inode?: string | number };

/** How fleet members get their hardware UUID. */
export type FleetHwuuidPolicy =
  /** The template's guest-visible UUID; one member only (replacing a single machine). */
  | "keep"
  /** Stable per member key, distinct across projects, stacks and fleets (UUIDv5). */
  | "derive"
  /** Given per member key. */
  | { readonly explicit: Readonly<Record<string, string>> };

/** One host of a DomainFleet spread over several: a name (in errors and `placement`) and its libvirt URI. */
export interface FleetHost {
  /** The host's name in this fleet: 1-32 letters, digits, '_' or '-'. */
  readonly name: string;
  /** Its libvirt URI, e.g. `qemu+ssh://root@hv2/system`. */
  readonly uri: string;
}

/** The inputs of a DomainFleet. Plain values: the plan is made while the program runs. */
export interface FleetInputs {
  /**
   * The template domain; it must be shut off, and it is never modified. With `hosts`, a domain of
   * this name on every host (each host's members clone its own), and no `uri`.
   */
  readonly template: { readonly name: string; readonly uri?: string };
  /**
   * The hosts the members are spread over, in order (ties go to the earlier one). Without it, the
   * one host `template.uri` (then stack config `libvirt:uri`, then `qemu:///system`).
   */
  readonly hosts?: readonly FleetHost[];
  /** Explicit placement: member key -> host name (one of `hosts`). Other members are placed by the rule. */
  readonly placement?: Readonly<Record<string, string>>;
  /** How many members (keys "1".."N"), or their keys. Keys are stable: scaling keeps the others. */
  readonly members: number | readonly string[];
  /** Member names; `{stack}`, `{fleet}`, `{key}`, `{index}` are replaced. @default `{stack}-{fleet}-{key}` */
  readonly namePattern?: string;
  /** @default "derive" */
  readonly hwuuidPolicy?: FleetHwuuidPolicy;
  /** Writable disks: `overlay` (qcow2 backed by the template image), `copy`, or `share` (read-only/shareable only). @default "overlay" */
  readonly diskMode?: DiskMode;
  /** Where member images go. @default beside the template's image */
  readonly imageDir?: string;
  /**
   * When a template disk (or `imageDir`) is in a directory that is no storage pool's and the fleet
   * uses volumes: define, start and autostart a `dir` pool for that directory (named
   * `lvd-` and a digest of the directory; left in place by destroy). @default false: refuse at
   * preview, naming the disk, the directory and the `virsh pool-define-as` fix
   */
  readonly definePools?: boolean;
  /**
   * With `hosts`: when a reachable host's template (each host has its own) names a disk image
   * that is missing there (its directory is a running pool's, but the pool has no such volume),
   * seed it once from the first host, in `hosts` order, whose template has an image of the same
   * file name: one DiskImage (`mode: "seed"`) per missing image, a volume named
   * `lvd-seed-DIGEST-FILE` in that pool, streamed out of the other host (`vol-download`) and into
   * this one (`vol-upload`) through a temporary file on the machine running Pulumi, with progress
   * in `pulumi up`'s output. That host's member images are made from the seed and depend on it
   * (preview needs no image yet); destroy removes it after them; the template's own image stays
   * missing (never made, never taken). @default false: such a host fails at preview, naming the
   * host, the image and the fix (`seedImages: true`, or copy it there)
   */
  readonly seedImages?: boolean;
  /** @default true */
  readonly running?: boolean;
  /** @default 60 */
  readonly shutdownTimeoutSeconds?: number;
}

/** What a DomainFleet gives back: its registered outputs. */
export interface FleetOutputs {
  /** Member name -> guest-visible UUID. */
  readonly hwuuids: Record<string, string | undefined>;
}
