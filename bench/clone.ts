/**
 * Per-member clone time: this project's overlay (qemu-img overlay + define, through the
 * providers) against virt-clone's full copy (virtinst), at 1 and 4 GiB of written data in the
 * template's image. Baseline: virt-clone at the same size, in the same run.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { VirshBackend } from "../provider/backends/virsh/virsh-backend";
import * as disk from "../provider/dynamic/disk";
import * as impl from "../provider/dynamic/impl";
import { planFleet } from "../provider/fleet/plan";
import { measure, table } from "./harness";

/** Runs the clone benchmark on `uri`, images in `imageDir`; returns Markdown. */
export async function benchClone(uri: string, imageDir: string, reps: number, sizesGiB: number[]): Promise<string> {
  const v = new VirshBackend(uri);
  const out: string[] = [];
  for (const gib of sizesGiB) {
    const tmpl = `bench-tmpl-${gib}g`;
    const image = path.join(imageDir, `${tmpl}.qcow2`);
    process.stderr.write(`[bench clone] writing ${gib} GiB into ${image}\n`);
    fs.rmSync(image, { force: true });
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", image, `${gib}G`]);
    // One qemu-io request is limited to under 2 GiB: write 1 GiB at a time.
    const writes = Array.from({ length: gib }, (_, i) => ["-c", `write -q -P 0x6b ${i}G 1G`]).flat();
    execFileSync("qemu-io", ["-f", "qcow2", ...writes, image]);
    if (await v.exists(tmpl)) await v.undefine(tmpl);
    await v.define(`<domain type='qemu'><name>${tmpl}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>
      <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${image}'/><target dev='vda' bus='virtio'/></disk>
      <interface type='user'><model type='virtio'/></interface></devices></domain>`);
    const templateXml = await v.dumpxmlInactive(tmpl);
    try {
      const vc = await measure(
        `virt-clone full copy, ${gib} GiB`,
        reps,
        async (r) => {
          process.stderr.write(`[bench clone] virt-clone ${gib} GiB #${r + 1}\n`);
          execFileSync("virt-clone", [
            "--connect",
            uri,
            "--original",
            tmpl,
            "--name",
            `bench-vc-${r}`,
            "--file",
            path.join(imageDir, `bench-vc-${r}.qcow2`),
            "--quiet",
          ]);
        },
        undefined,
        async (r) => {
          await v.undefine(`bench-vc-${r}`);
          fs.rmSync(path.join(imageDir, `bench-vc-${r}.qcow2`), { force: true });
        },
      );
      const made: Record<string, unknown>[] = [];
      const ov = await measure(
        `overlay + define (this project), ${gib} GiB`,
        reps,
        async (r) => {
          const plan = planFleet({
            fleetName: "bench-ov",
            project: "bench",
            stack: "bench",
            templateXml,
            keys: [String(r)],
            hwuuidPolicy: { kind: "derive" },
          });
          const m = plan.members[0];
          const d = m?.disks[0];
          if (!m || !d)
            throw new Error(
              `bench clone: the fleet plan has no member with a disk (refusals: ${JSON.stringify(plan.refusals)})`,
            );
          const dc = await disk.check(
            {},
            { path: d.path, source: d.source, sourceFormat: d.sourceFormat, mode: "overlay" },
          );
          const dout = (await disk.create(dc.inputs)).outs;
          const c = await impl.check(
            {},
            { name: m.name, xml: m.xml, hwuuid: m.hwuuid, running: false, connection: { uri } },
          );
          const dom = await impl.create(c.inputs);
          made.push(dout, dom.outs);
        },
        undefined,
        async () => {
          const dom = made.pop()!;
          const dout = made.pop()!;
          await impl.remove(dom.name as string, dom);
          await disk.remove(dout.path as string, dout);
        },
      );
      out.push(table(`Per-member clone, ${gib} GiB written in the template image (${reps} reps)`, vc, [ov]));
    } finally {
      await v.undefine(tmpl).catch(() => undefined);
      fs.rmSync(image, { force: true });
    }
  }
  return out.join("\n");
}
