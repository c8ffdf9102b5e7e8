/**
 * The tiny guest (scripts/guest.sh) under plain QEMU with TCG, 1 vCPU, 256 MiB, machine pc, a
 * virtio NIC and disk and a vmgenid: from spawning QEMU to the guest's `LVD-GUEST ready` line
 * in its console file (the console is polled every 100 ms), the guest's own uptime at that
 * line, and from QMP `system_powerdown` to QEMU's exit. Baseline: QEMU 7.2's boot to ready.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { guestImage, startGuestQemu } from "../test/support/guest";
import { Sample, table } from "./harness";

/** Runs the guest benchmark with the host's QEMU 7.2 and the lab's QEMU 11.x; returns Markdown. */
export async function benchGuest(hostQemu: string, newQemu: string, reps: number): Promise<string> {
  const image = guestImage();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-bench-guest-"));
  const disk = path.join(work, "disk.raw");
  fs.writeFileSync(disk, "");
  fs.truncateSync(disk, 64 * 1024 * 1024);
  const samples: Sample[] = [];
  try {
    for (const [label, qemu] of [
      ["QEMU 7.2", hostQemu],
      ["QEMU 11.x", newQemu],
    ] as const) {
      const ready: number[] = [];
      const uptime: number[] = [];
      const off: number[] = [];
      for (let r = 0; r < reps; r++) {
        process.stderr.write(`[bench guest] ${label} boot #${r + 1}\n`);
        const g = startGuestQemu({
          qemu,
          image,
          dir: path.join(work, `${label.replace(/\W/g, "")}-${r}`),
          args: [
            "-uuid",
            "5d5b0f1d-128b-4517-8e65-b258a8734c1d",
            "-device",
            "vmgenid,guid=8f2d1c3e-4b5a-4697-a8b9-c0d1e2f3a4b5",
            "-netdev",
            "user,id=n0,restrict=on",
            "-device",
            "virtio-net-pci,netdev=n0",
            "-drive",
            `file=${disk},format=raw,if=none,id=d0,readonly=on`,
            "-device",
            "virtio-blk-pci,drive=d0",
          ],
        });
        try {
          const report = await g.console.report({ timeoutMs: 120000 });
          ready.push(performance.now() - g.startedAtMs);
          uptime.push(report.uptimeSeconds * 1000);
          const q = await g.qmp();
          const t0 = performance.now();
          await q.execute("system_powerdown");
          q.close();
          const code = await Promise.race([
            g.exited,
            new Promise<string>((res) => setTimeout(() => res("timeout"), 60000)),
          ]);
          if (code !== 0)
            throw new Error(
              `${label}: QEMU did not exit cleanly within 60 s of system_powerdown (${code}); ${g.stderr()}`,
            );
          off.push(performance.now() - t0);
        } finally {
          await g.kill();
        }
      }
      samples.push(
        { label: `${label}: spawn to "ready"`, ms: ready },
        { label: `${label}: guest uptime at "ready"`, ms: uptime },
        { label: `${label}: system_powerdown to exit`, ms: off },
      );
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const initrdKiB = Math.round(fs.statSync(image.initrd).size / 1024);
  const kernelKiB = Math.round(fs.statSync(image.kernel).size / 1024);
  const [baseline, ...rest] = samples;
  if (!baseline) throw new Error("bench guest: no sample was measured");
  return table(
    `Tiny guest (${image.id}: vmlinuz ${kernelKiB} KiB, initramfs ${initrdKiB} KiB), TCG, ${reps} boots each`,
    baseline,
    rest,
  );
}
