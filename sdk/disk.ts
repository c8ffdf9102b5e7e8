/** {@link DomainDisk}: an image a fleet member owns, made from the template's image. */
import * as pulumi from "@pulumi/pulumi";
import { diskProvider } from "./provider";

/** The inputs of a {@link DomainDisk}. */
export interface DomainDiskResourceArgs {
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
 * {@link DomainDisk} is a disk image created for a domain: made atomically (never half-written,
 * never over an existing file) with the template image's mode, deleted only while it is still
 * the file it made (same device, inode and birth time; see {@link DomainDisk.pin}).
 */
export class DomainDisk extends pulumi.dynamic.Resource {
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

  /** Declares a disk image. */
  constructor(name: string, args: DomainDiskResourceArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      diskProvider,
      name,
      { ...args, sizeBytes: undefined, device: undefined, inode: undefined, birthtimeNs: undefined, pin: undefined },
      opts,
      "libvirt-domain-disk",
    );
  }
}
