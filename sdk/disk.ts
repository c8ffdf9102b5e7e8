/** {@link DiskImage}: an image a fleet member owns, made from the template's image. */
import * as pulumi from "@pulumi/pulumi";
import type { VolumeStamp } from "../provider/xml/volume";
import { diskProvider, DYNAMIC_MODULE } from "./provider";

/**
 * The inputs of a {@link DiskImage}. Without `connection` the image is a file made on this
 * machine (`qemu-img`, `cp`: the hypervisor's files must be local); with `connection` it is a
 * libvirt storage volume made over that connection, wherever the hypervisor is.
 */
export interface DiskImageArgs {
  /**
   * The image to make (absolute path on the hypervisor host). It must not exist yet. Required for
   * a file; for a volume optional, and when given it must be where libvirt puts the volume (the
   * pool's directory and the volume's name).
   */
  readonly path?: pulumi.Input<string>;
  /** The template's image (its path on the hypervisor host; for a volume, a volume of a pool); only ever read. */
  readonly source: pulumi.Input<string>;
  /** The template image's format: `qcow2` or `raw`. */
  readonly sourceFormat: pulumi.Input<string>;
  /**
   * `overlay`: a qcow2 backed by the source (copy-on-write); `copy`: a full copy; `seed`: a copy
   * of `source` as it is on the host `from` (a volume there), streamed out of that host
   * (`vol-download`, through a private temporary file on this machine, always removed) and
   * uploaded over `connection` into `pool` as `volume` (`vol-upload`; all three required), with
   * progress in bytes and percent in `pulumi up`'s output. Never over an existing volume; deleted
   * only while it is still the volume made.
   */
  readonly mode: pulumi.Input<"overlay" | "copy" | "seed">;
  /** Any change re-creates the image. @default none */
  readonly replaceTrigger?: pulumi.Input<string>;
  /**
   * Make the image as a libvirt storage volume over this connection (any libvirt URI but
   * `qemu-direct://`, `qemu+ssh://` included): an overlay is a qcow2 volume whose backing store
   * is the source's volume, a copy a cloned volume. @default none: a file made on this machine
   */
  readonly connection?: pulumi.Input<{ readonly uri: pulumi.Input<string> }>;
  /** The new volume's pool (with `connection`). @default the source volume's pool */
  readonly pool?: pulumi.Input<string>;
  /** The new volume's name (with `connection`). @default the base name of `path` */
  readonly volume?: pulumi.Input<string>;
  /** `seed` only: the host that has `source` as a volume of one of its pools; only ever read. */
  readonly from?: pulumi.Input<{ readonly uri: pulumi.Input<string> }>;
}

/**
 * The type token version 0.1.0 gave a disk image (`pulumi-nodejs:dynamic/libvirt-domain-disk:Resource`);
 * an alias to it keeps the URNs of images made by that version, so they upgrade in place.
 */
export const DISK_IMAGE_TYPE_V0_1 = "pulumi-nodejs:dynamic/libvirt-domain-disk:Resource";

/**
 * {@link DiskImage} is a disk image created for a domain: made atomically (never half-written,
 * never over an existing file) with the template image's mode, deleted only while it is still
 * the file it made (same device, inode and birth time; see {@link DiskImage.pin}). Its type token
 * is `pulumi-nodejs:dynamic/libvirt-domain:DiskImage`.
 *
 * @example
 * ```ts
 * const disk = new DiskImage("web-1-disk", {
 *   path: "/var/lib/libvirt/images/web-1.qcow2",
 *   source: "/var/lib/libvirt/images/template.qcow2",
 *   sourceFormat: "qcow2",
 *   mode: "overlay",
 * });
 * // The same as a storage volume on a remote host (template.qcow2 a volume of pool "default"):
 * const remote = new DiskImage("web-2-disk", {
 *   connection: { uri: "qemu+ssh://admin@hv1/system" },
 *   volume: "web-2.qcow2", // in the source's pool; `pool` names another
 *   source: "/var/lib/libvirt/images/template.qcow2",
 *   sourceFormat: "qcow2",
 *   mode: "overlay",
 * });
 * ```
 */
export class DiskImage extends pulumi.dynamic.Resource {
  /** The image path (for a volume: where libvirt put it). */
  declare public readonly path: pulumi.Output<string>;
  /** Its size on disk when made, in bytes. */
  declare public readonly sizeBytes: pulumi.Output<number>;
  /** The file system's device number (`st_dev`), decimal. */
  declare public readonly device: pulumi.Output<string>;
  /** The image's inode number, decimal. */
  declare public readonly inode: pulumi.Output<string>;
  /** The image's birth time in nanoseconds since the epoch, decimal; `"0"` where the file system keeps none. */
  declare public readonly birthtimeNs: pulumi.Output<string>;
  /**
   * Only where the file system keeps no birth time: a hidden hard link beside the image
   * (`.NAME.lvd-pin-RANDOM`) that holds its inode, so the inode cannot be reused by another file.
   * Removed with the image.
   */
  declare public readonly pin: pulumi.Output<string | undefined>;
  /**
   * Only for a volume: what identifies the volume made (pool uuid, key, path, format, capacity,
   * backing store, and the ctime and mtime libvirt reported right after creating it). It is
   * deleted only while these still hold (later times are taken as its guest's writes).
   */
  declare public readonly volumeStamp: pulumi.Output<VolumeStamp | undefined>;

  /** Declares a disk image named `name` (the Pulumi resource name) made as `args` say. */
  constructor(name: string, args: DiskImageArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      diskProvider,
      name,
      {
        // `path` is an output too (a volume's, where libvirt put it): registered even when not given.
        path: undefined,
        ...args,
        sizeBytes: undefined,
        device: undefined,
        inode: undefined,
        birthtimeNs: undefined,
        pin: undefined,
        volumeStamp: undefined,
      },
      pulumi.mergeOptions(opts, { aliases: [{ type: DISK_IMAGE_TYPE_V0_1 }] }),
      DYNAMIC_MODULE,
      "DiskImage",
    );
  }
}

/**
 * The inputs of a {@link DiskImage}, by their 0.1.0 name.
 * @deprecated Use {@link DiskImageArgs}.
 */
export type DomainDiskResourceArgs = DiskImageArgs;

/**
 * {@link DiskImage} by its 0.1.0 name; the same class (same type token, same URNs), so programs
 * written for 0.1.0 keep compiling and their stacks upgrade in place.
 * @deprecated Use {@link DiskImage}.
 */
export const DomainDisk = DiskImage;
/** @deprecated Use {@link DiskImage}. */
export type DomainDisk = DiskImage;
