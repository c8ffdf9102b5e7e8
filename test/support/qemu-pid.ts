/**
 * The QEMU process of a libvirt domain, found by its `-name guest=NAME,...` argument in
 * /proc (both labs run QEMU on this machine: the 12.x lab's in its chroot, same pid space).
 * Used to tell a live change (same process) from a restart (a new one).
 */
import * as fs from "node:fs";

/** {@link qemuPid}: the pid of the QEMU running domain `name`; undefined when none; throws when several. */
export function qemuPid(name: string): number | undefined {
  const found: number[] = [];
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0");
    } catch {
      continue; // gone meanwhile
    }
    const i = argv.indexOf("-name");
    if (i >= 0 && (argv[i + 1] ?? "").split(",").includes(`guest=${name}`)) found.push(Number(d));
  }
  if (found.length > 1) throw new Error(`several QEMU processes run domain ${name}: ${found.join(", ")}`);
  return found[0];
}
