/**
 * {@link Domain}: a libvirt domain whose `hwuuid` (what the guest sees) is a stable input while
 * the libvirt `uuid` is an output, new on every re-create.
 */
import * as pulumi from "@pulumi/pulumi";
import { domainProvider, DOMAIN_TYPE_V0_1, DYNAMIC_MODULE } from "./provider";
import { xmlHasSecurityInfo } from "../provider/xml/security";

/** A disk attached to a {@link Domain}. */
export interface DomainDiskArgs {
  /** Absolute image path on the hypervisor host. The Domain never creates or deletes it. */
  readonly file: pulumi.Input<string>;
  /** @default from the extension: `.qcow2` -> qcow2, else raw */
  readonly format?: pulumi.Input<"qcow2" | "raw">;
  /** @default `vda`, `vdb`, ... in order */
  readonly target?: pulumi.Input<string>;
  /** @default `virtio` */
  readonly bus?: pulumi.Input<"virtio" | "sata" | "ide" | "scsi">;
  /** @default `disk` */
  readonly device?: pulumi.Input<"disk" | "cdrom">;
  /** @default false */
  readonly readonly?: pulumi.Input<boolean>;
  /** @default none */
  readonly serial?: pulumi.Input<string>;
  /** @default none */
  readonly bootOrder?: pulumi.Input<number>;
}

/** A network interface of a {@link Domain}. */
export interface DomainInterfaceArgs {
  /** `user`, `network`, `bridge` or `direct`. */
  readonly type: pulumi.Input<"user" | "network" | "bridge" | "direct">;
  /** The network, bridge or host device (not for `user`). */
  readonly source?: pulumi.Input<string>;
  /** @default assigned by libvirt */
  readonly mac?: pulumi.Input<string>;
  /** @default `virtio` */
  readonly model?: pulumi.Input<string>;
}

/** Where the domain lives. */
export interface DomainConnectionArgs {
  /** A libvirt URI. @default stack config `libvirt:uri`, then `qemu:///system` */
  readonly uri?: pulumi.Input<string>;
  /** A name for the host, shown with the URI in errors (a DomainFleet on several hosts sets it). */
  readonly host?: pulumi.Input<string>;
}

/** The inputs of a {@link Domain}. */
export interface DomainArgs {
  /** The libvirt domain name; changing it re-creates the domain (new uuid, same guest UUID). */
  readonly name: pulumi.Input<string>;
  /** The guest-visible hardware UUID; stable across re-creates. @default none: the guest sees the libvirt uuid */
  readonly hwuuid?: pulumi.Input<string>;
  /**
   * A domain XML template: everything the typed fields do not cover. It must not set `<uuid>`.
   * When it holds security info (a `<graphics passwd=...>`), it is made a secret, and so are the
   * `xml` and `desiredXml` outputs. @default a small disk-less guest
   */
  readonly xml?: pulumi.Input<string>;
  /** Memory with a unit, e.g. `"512 MiB"`. @default the template's */
  readonly memory?: pulumi.Input<string>;
  /** @default the template's */
  readonly vcpus?: pulumi.Input<number>;
  /** QEMU machine type, e.g. `q35`. @default the template's */
  readonly machine?: pulumi.Input<string>;
  /** @default the template's */
  readonly firmware?: pulumi.Input<"bios" | "efi">;
  /** Disks; they win over the template's disks with the same target. @default none */
  readonly disks?: pulumi.Input<pulumi.Input<DomainDiskArgs>[]>;
  /** Interfaces; they win over the template's with the same MAC. @default none */
  readonly interfaces?: pulumi.Input<pulumi.Input<DomainInterfaceArgs>[]>;
  /** @default `{ uri: config libvirt:uri ?? "qemu:///system" }` */
  readonly connection?: pulumi.Input<DomainConnectionArgs>;
  /** @default true */
  readonly running?: pulumi.Input<boolean>;
  /** ACPI shutdown wait before a hard stop. @default 60 */
  readonly shutdownTimeoutSeconds?: pulumi.Input<number>;
  /** Restart a running domain when a change needs it; otherwise `pendingRestart` is set. @default false */
  readonly restartOnChange?: pulumi.Input<boolean>;
  /** Take over an existing domain of this name instead of failing. @default false */
  readonly adopt?: pulumi.Input<boolean>;
  /** `auto` picks `native` (libvirt >= 11.7) or `passthrough` (older libvirt + QEMU). @default "auto" */
  readonly hwuuidMode?: pulumi.Input<"auto" | "native" | "passthrough">;
  /** Any change re-creates the domain. @default none */
  readonly replaceTrigger?: pulumi.Input<string>;
}

/** The XML as a secret when it holds security info (a graphics password), else as it is. */
function secretWhenSecure(xml: pulumi.Input<string>): pulumi.Output<string> {
  return pulumi
    .output(xml)
    .apply((x) => (typeof x === "string" && xmlHasSecurityInfo(x) ? pulumi.secret(x) : pulumi.output(x)));
}

/**
 * {@link Domain} is a libvirt domain, applied through virsh over any libvirt URI, or with QEMU
 * alone (`qemu-direct:///STATE_DIR`). The desired XML (template + typed fields + hwuuid) is
 * compared semantically with the actual one; a change is applied live where the running guest can
 * take it, else by redefining (restarting only when allowed), and re-creates the domain (a new
 * libvirt uuid, the same guest UUID) only for a new name, domain type or connection.
 *
 * @example
 * ```ts
 * import { Domain } from "pulumi-libvirt-domain";
 *
 * const web = new Domain("web", {
 *   name: "web-1",
 *   hwuuid: "5d5b0f1d-128b-4517-8e65-b258a8734c1d", // what the guest reads, kept across re-creates
 *   memory: "512 MiB",
 *   vcpus: 2,
 *   interfaces: [{ type: "network", source: "default" }],
 *   connection: { uri: "qemu+ssh://admin@hv1/system" },
 * });
 * export const guestUuid = web.guestUuid; // the hwuuid; web.uuid is libvirt's, new on every re-create
 * ```
 */
export class Domain extends pulumi.dynamic.Resource {
  /** The libvirt domain name. */
  declare public readonly name: pulumi.Output<string>;
  /** The libvirt domain uuid: new on every re-create. */
  declare public readonly uuid: pulumi.Output<string>;
  /** The UUID the guest sees (the hwuuid when set, else the uuid). */
  declare public readonly guestUuid: pulumi.Output<string>;
  /** The actual inactive XML, as libvirt reports it (security info included); a secret when it holds a password. */
  declare public readonly xml: pulumi.Output<string>;
  /** The desired XML the provider applied; a secret when it holds a password. */
  declare public readonly desiredXml: pulumi.Output<string>;
  /** `running`, `shut off`, ... */
  declare public readonly state: pulumi.Output<string>;
  /** The interfaces' MAC addresses (lowercase). */
  declare public readonly macAddresses: pulumi.Output<string[]>;
  /** The daemon's libvirt version. */
  declare public readonly libvirtVersion: pulumi.Output<string>;
  /** `native` or `passthrough`. */
  declare public readonly hwuuidMode: pulumi.Output<string>;
  /** A change waits for a restart (restartOnChange is false). */
  declare public readonly pendingRestart: pulumi.Output<boolean>;
  /**
   * What the running guest does not have yet and takes at its next restart, one `PATH: why` a
   * line: changes that need a restart, and live changes libvirt refused (with libvirt's reason).
   * Empty when the running guest and the definition agree.
   */
  declare public readonly pendingChanges: pulumi.Output<string[]>;
  /** Paths where the actual XML differs from the desired one (seen by refresh). */
  declare public readonly drift: pulumi.Output<string[]>;

  /**
   * @param name the Pulumi resource name (the libvirt name is `args.name`)
   * @param args the desired domain; checked at preview, every problem reported per property
   * @param opts Pulumi options; the 0.1.0 type token is always added as an alias
   */
  constructor(name: string, args: DomainArgs, opts?: pulumi.CustomResourceOptions) {
    const cfg = new pulumi.Config("libvirt");
    const connection = pulumi.output(args.connection).apply((c) => ({
      uri: c?.uri ?? cfg.get("uri") ?? "qemu:///system",
      ...(c?.host !== undefined ? { host: c.host } : {}),
    }));
    super(
      domainProvider,
      name,
      {
        ...args,
        xml: args.xml === undefined ? undefined : secretWhenSecure(args.xml),
        connection,
        // Lets a re-run recognize a domain an interrupted run defined but never recorded.
        ownerId: `${pulumi.getProject()}/${pulumi.getStack()}/${name}`,
        uuid: undefined,
        guestUuid: undefined,
        desiredXml: undefined,
        state: undefined,
        macAddresses: undefined,
        libvirtVersion: undefined,
        // An input and an output: the requested mode goes in, the resolved one comes out.
        hwuuidMode: args.hwuuidMode,
        pendingRestart: undefined,
        pendingChanges: undefined,
        drift: undefined,
      },
      pulumi.mergeOptions(opts, { aliases: [{ type: DOMAIN_TYPE_V0_1 }] }),
      DYNAMIC_MODULE,
      "Domain",
    );
  }
}
