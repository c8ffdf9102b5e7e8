/**
 * The QEMU process of a libvirt domain, found by its `-name guest=NAME,...` argument in
 * /proc (both labs run QEMU on this machine: the 12.x lab's in its chroot, same pid space).
 * Used to tell a live change or a no-op (same process) from a restart (a new one).
 */
import * as fs from "node:fs";

/** A QEMU process: its pid and its start time in clock ticks (`/proc/PID/stat` field 22), which a reused pid does not share. */
export interface QemuProcess {
  readonly pid: number;
  readonly startTicks: string;
}

/** {@link qemuProcess}: the QEMU running domain `name`; undefined when none; throws when several. */
export function qemuProcess(name: string): QemuProcess | undefined {
  const found: QemuProcess[] = [];
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    let argv: string[];
    let stat: string;
    try {
      argv = fs.readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0");
      const i = argv.indexOf("-name");
      if (i < 0 || !(argv[i + 1] ?? "").split(",").includes(`guest=${name}`)) continue;
      stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    const startTicks = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    if (startTicks === undefined) throw new Error(`/proc/${d}/stat has no field 22 (start time): ${stat}`);
    found.push({ pid: Number(d), startTicks });
  }
  if (found.length > 1)
    throw new Error(`several QEMU processes run domain ${name}: ${found.map((p) => p.pid).join(", ")}`);
  return found[0];
}

/** {@link qemuPid}: the pid of the QEMU running domain `name`; undefined when none; throws when several. */
export function qemuPid(name: string): number | undefined {
  return qemuProcess(name)?.pid;
}
