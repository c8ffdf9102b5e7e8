/**
 * Reads QEMU firmware descriptors (QEMU's docs/interop/firmware.json) from directories, for
 * firmware selection (provider/qemu/firmware.ts, which is pure): the I/O half. A directory that
 * does not exist holds none; a file that does not parse is skipped, as libvirt skips it.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import {
  FIRMWARE_DESCRIPTOR_DIRS,
  FirmwareDescriptor,
  FirmwareDescriptors,
  orderDescriptorFiles,
  parseFirmwareDescriptor,
} from "../../qemu/firmware";

/** The regular files (and links to them) of `dir` with their sizes; none when `dir` is missing. */
function listDir(dir: string): { name: string; size: number }[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const files: { name: string; size: number }[] = [];
  for (const name of names) {
    try {
      const st = statSync(`${dir}/${name}`);
      if (st.isFile()) files.push({ name, size: st.size });
    } catch {
      /* a dangling link: libvirt fails on it, we skip it */
    }
  }
  return files;
}

/**
 * The descriptors of `dirs` (highest priority first; default: a system libvirt's
 * {@link FIRMWARE_DESCRIPTOR_DIRS}) in the order libvirt tries them.
 */
export function readFirmwareDescriptors(dirs: readonly string[] = FIRMWARE_DESCRIPTOR_DIRS): FirmwareDescriptors {
  const paths = orderDescriptorFiles(dirs.map((dir) => ({ dir, files: listDir(dir) })));
  const descriptors: FirmwareDescriptor[] = [];
  for (const p of paths) {
    let text: string;
    try {
      text = readFileSync(p, "utf8");
    } catch {
      continue;
    }
    const d = parseFirmwareDescriptor(p, text);
    if (d) descriptors.push(d);
  }
  return { descriptors, searched: [...dirs] };
}
