/**
 * Fleet of 1, 5, 10, 20 members through the planner and the providers, members in parallel as
 * the engine runs them (disks, then domains defined; not started, so QEMU's boot is not
 * measured): provider time per member, as a ratio to the 1-member fleet in the same run.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { VirshBackend } from "../provider/backends/virsh/virsh-backend";
import * as disk from "../provider/dynamic/disk";
import * as impl from "../provider/dynamic/impl";
import { planFleet } from "../provider/fleet/plan";
import { Sample, measure, table } from "./harness";

/** Runs the fleet benchmark; returns Markdown. */
export async function benchFleet(uri: string, imageDir: string, reps: number, sizes: number[]): Promise<string> {
  const v = new VirshBackend(uri);
  const tmpl = "bench-fleet-tmpl";
  const image = path.join(imageDir, `${tmpl}.qcow2`);
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", image, "1G"]);
  if (await v.exists(tmpl)) await v.undefine(tmpl);
  await v.define(`<domain type='qemu'><name>${tmpl}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>
    <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${image}'/><target dev='vda' bus='virtio'/></disk>
    <interface type='user'><model type='virtio'/></interface></devices></domain>`);
  const templateXml = await v.dumpxmlInactive(tmpl);
  const samples: Sample[] = [];
  try {
    for (const size of sizes) {
      const keys = Array.from({ length: size }, (_, i) => String(i + 1));
      let made: { d: Record<string, unknown>; m: Record<string, unknown> }[] = [];
      const s = await measure(
        `fleet of ${size}, per member`,
        reps,
        async () => {
          process.stderr.write(`[bench fleet] ${size} members\n`);
          const plan = planFleet({
            fleetName: `bench-fl${size}`,
            project: "bench",
            stack: "bench",
            templateXml,
            keys,
            hwuuidPolicy: { kind: "derive" },
          });
          made = await Promise.all(
            plan.members.map(async (m) => {
              const dd = m.disks[0];
              if (!dd) throw new Error(`bench fleet: member ${m.name} has no disk in the plan`);
              const dc = await disk.check(
                {},
                { path: dd.path, source: dd.source, sourceFormat: dd.sourceFormat, mode: "overlay" },
              );
              const d = (await disk.create(dc.inputs)).outs;
              const c = await impl.check(
                {},
                { name: m.name, xml: m.xml, hwuuid: m.hwuuid, running: false, connection: { uri } },
              );
              return { d, m: (await impl.create(c.inputs)).outs };
            }),
          );
        },
        undefined,
        async () => {
          for (const x of made) {
            await impl.remove(x.m.name as string, x.m);
            await disk.remove(x.d.path as string, x.d);
          }
        },
      );
      samples.push({ label: s.label, ms: s.ms.map((x) => x / size) });
    }
  } finally {
    await v.undefine(tmpl).catch(() => undefined);
    fs.rmSync(image, { force: true });
  }
  const [baseline, ...rest] = samples;
  if (!baseline) throw new Error("bench fleet: no fleet sizes were measured (BENCH_FLEET_SIZES is empty)");
  return table(`Fleet creation, provider time per member (${reps} reps; baseline: the 1-member fleet)`, baseline, rest);
}
