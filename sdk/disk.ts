/** {@link DiskImage}: an image a fleet member owns, made from the template's image. */
import * as pulumi from "@pulumi/pulumi";
import { diskProvider, DYNAMIC_MODULE } from "./provider";

/** The inputs of a {@link DiskImage}. */
export interface DiskImageArgs {
  /** The image to make (absolute path on the hypervisor host). It must not exist yet. */
  readonly path: pulumi.Input<string>;
  /** The template's image; only ever read. */
  readonly source: pulumi.Input<string>;
  /** The template image's format: `qcow2` or `raw`. */
  readonly sourceFormat: pulumi.Input<string>;
  /** `overlay`: a qcow2 backed by the source (copy-on-write); `copy`: a full copy. */
  readonly mode: pulumi.Input<"overlay" | "copy">;
  /** Any change re-creates the image. @default none */
  readonly replaceTrigger?: pulumi.Input<string>;
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
 * ```
 */
export class DiskImage extends pulumi.dynamic.Resource {
  /** The image path. */
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

  /** Declares a disk image named `name` (the Pulumi resource name) made as `args` say. */
  constructor(name: string, args: DiskImageArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      diskProvider,
      name,
      { ...args, sizeBytes: undefined, device: undefined, inode: undefined, birthtimeNs: undefined, pin: undefined },
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
