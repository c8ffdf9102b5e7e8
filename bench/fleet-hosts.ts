/**
 * A fleet of 50 members over two hosts (the 9.0 lab and the 12.x lab) with the real Pulumi CLI:
 * `pulumi up` (create), `preview` (no change), `refresh` and `destroy`, each as a ratio against
 * the baseline measured in the same run: `pulumi preview` of an empty JavaScript program (the
 * Pulumi engine and Node, nothing of ours).
 *
 * Members are defined and left shut off (`running: false`): QEMU starting under TCG is not the
 * provider's cost, and 50 running TCG guests would measure the machine's two cores instead. Each
 * member has a qcow2 overlay of its host's template image.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { VirshBackend } from "../provider/backends/virsh/virsh-backend";
import { PulumiStack } from "../test/support/pulumi";
import { median, Sample, table } from "./harness";

const REPO = path.resolve(__dirname, "..", "..");

/** The program: one DomainFleet of `count` members over the `hosts` config (JSON), shut off. */
const FLEET_JS = `const pulumi = require("@pulumi/pulumi");
const { DomainFleet } = require("pulumi-libvirt-domain");
const cfg = new pulumi.Config();
new DomainFleet("bench", {
  template: { name: cfg.require("template") },
  hosts: cfg.requireObject("hosts"),
  members: cfg.requireNumber("count"),
  namePattern: "lvd-benchh-{key}",
  running: false,
  shutdownTimeoutSeconds: 0,
});
`;

/** A stack of a JavaScript program in `work`, its `node_modules` this checkout's. */
function stackOf(work: string, label: string, source: string): PulumiStack {
  const s = new PulumiStack(null, label, "bench", { workRoot: work });
  fs.writeFileSync(
    path.join(s.dir, "Pulumi.yaml"),
    `name: lvd-${label}\nruntime: { name: nodejs, options: { typescript: false } }\nmain: index.js\n`,
  );
  fs.writeFileSync(path.join(s.dir, "index.js"), source);
  fs.writeFileSync(path.join(s.dir, "package.json"), JSON.stringify({ name: `lvd-${label}`, private: true }));
  fs.symlinkSync(path.join(REPO, "node_modules"), path.join(s.dir, "node_modules"));
  s.ok("stack", "init", "bench");
  return s;
}

/** Milliseconds one CLI command takes; fails with the CLI's output when it exits non-zero. */
function timed(s: PulumiStack, ...args: string[]): number {
  const t0 = process.hrtime.bigint();
  s.ok(...args);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/**
 * Runs the two-host fleet benchmark: `size` members over `hosts` (name -> URI), `reps` times each
 * command; returns Markdown.
 */
export async function benchFleetHosts(
  hosts: Record<string, string>,
  imageDir: string,
  reps: number,
  size: number,
): Promise<string> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-bench-hosts-"));
  const tmpl = "lvd-benchh-tmpl";
  try {
    for (const [name, uri] of Object.entries(hosts)) {
      const v = new VirshBackend(uri);
      const image = path.join(imageDir, `${tmpl}-${name}.qcow2`);
      execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", image, "128M"]);
      if (await v.exists(tmpl)) await v.undefine(tmpl);
      await v.define(`<domain type='qemu'><name>${tmpl}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>
        <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${image}'/><target dev='vda' bus='virtio'/></disk>
        <interface type='user'><model type='virtio'/></interface></devices></domain>`);
    }
    const empty = stackOf(work, "empty-js", "");
    const fleet = stackOf(work, "fleet-hosts", FLEET_JS);
    fleet.setConfig("template", tmpl);
    fleet.setConfig("count", String(size));
    fleet.setConfig("hosts", JSON.stringify(Object.entries(hosts).map(([name, uri]) => ({ name, uri }))));
    const baseline: Sample = { label: "preview, empty JavaScript program", ms: [] };
    const ops: Sample[] = [
      { label: `up: create ${size} members over ${Object.keys(hosts).length} hosts`, ms: [] },
      { label: `preview, ${size} members unchanged`, ms: [] },
      { label: `refresh, ${size} members`, ms: [] },
      { label: `destroy, ${size} members`, ms: [] },
    ];
    for (let r = 0; r < reps; r++) {
      process.stderr.write(`[bench fleet-hosts] rep ${r + 1}/${reps}\n`);
      baseline.ms.push(timed(empty, "preview"));
      ops[0]!.ms.push(timed(fleet, "up", "--yes", "--skip-preview"));
      ops[1]!.ms.push(timed(fleet, "preview", "--expect-no-changes"));
      ops[2]!.ms.push(timed(fleet, "refresh", "--yes", "--skip-preview"));
      ops[3]!.ms.push(timed(fleet, "destroy", "--yes", "--skip-preview"));
    }
    const base = median(baseline.ms);
    const perMember = ops
      .map((s) => {
        const extra = median(s.ms) - base;
        return `| ${s.label.split(":")[0]!.split(",")[0]} | ${(extra / size / 1000).toFixed(3)} s (${(extra / size / base).toFixed(3)}x) |`;
      })
      .join("\n");
    return (
      table(
        `Fleet of ${size} members over two hosts (9.0 + 12.x labs), real Pulumi CLI (${reps} reps)`,
        baseline,
        ops,
      ) +
      `\nPer member, over the baseline ((median - baseline) / ${size}; the baseline is ${(base / 1000).toFixed(2)} s in this run):\n\n` +
      `| command | per member (ratio to baseline) |\n|---|---|\n${perMember}\n`
    );
  } finally {
    for (const uri of Object.values(hosts)) {
      const v = new VirshBackend(uri);
      for (const n of await v.listNames().catch(() => [] as string[]))
        if (n.startsWith("lvd-benchh-")) await v.undefine(n).catch(() => undefined);
    }
    for (const f of fs.readdirSync(imageDir))
      if (f.startsWith("lvd-benchh-")) fs.rmSync(path.join(imageDir, f), { force: true });
    if (!process.env.KEEP_BENCH_WORK) fs.rmSync(work, { recursive: true, force: true });
  }
}
