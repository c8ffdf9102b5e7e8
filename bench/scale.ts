/**
 * Scale with the real Pulumi CLI: `pulumi up`, `preview` and `refresh` (and `destroy`) of
 * programs with 0, 1, 10, 30 and 100 Domains (no disks), and where the fixed cost of a run goes.
 *
 * The per-domain cost is the slope of a least-squares line through the timings at each size; the
 * fixed cost is the same line's value at zero domains. Both are also given as a ratio against the
 * baseline measured in the same run: `pulumi preview` of an empty JavaScript program (the Pulumi
 * engine and Node, nothing of ours).
 *
 * Domains are defined and left shut off (`running: false`): QEMU starting under TCG is not the
 * provider's cost, and 100 running TCG guests would measure the machine's two cores instead.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PulumiStack } from "../test/support/pulumi";
import { median, Sample, table } from "./harness";

const REPO = path.resolve(__dirname, "..", "..");

/** The program: `count` Domains on `uri`, shut off; with `count` 0 it only loads our SDK. */
const DOMAINS_JS = `const pulumi = require("@pulumi/pulumi");
const { Domain } = require("pulumi-libvirt-domain");
const cfg = new pulumi.Config();
const count = cfg.requireNumber("count");
const uri = cfg.require("uri");
for (let i = 0; i < count; i++) {
  new Domain("d" + i, { name: "lvd-scale-" + i, memory: "32 MiB", vcpus: 1, running: false, connection: { uri } });
}
`;

/** Writes a Pulumi project (`index.js` or `index.ts`) with `node_modules` pointing at this checkout's. */
function project(dir: string, name: string, file: "index.js" | "index.ts", source: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const runtime = file === "index.ts" ? "nodejs" : "{ name: nodejs, options: { typescript: false } }";
  fs.writeFileSync(path.join(dir, "Pulumi.yaml"), `name: ${name}\nruntime: ${runtime}\nmain: ${file}\n`);
  fs.writeFileSync(path.join(dir, file), source);
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name, private: true }));
  fs.symlinkSync(path.join(REPO, "node_modules"), path.join(dir, "node_modules"));
}

/** A stack of a program written by {@link project}, in a work folder outside the repository. */
function stackOf(work: string, label: string, file: "index.js" | "index.ts", source: string): PulumiStack {
  const s = new PulumiStack(null, label, "bench", { workRoot: work });
  fs.rmSync(s.dir, { recursive: true, force: true });
  project(s.dir, `lvd-${label}`, file, source);
  s.ok("stack", "init", "bench");
  return s;
}

/** Milliseconds one CLI command takes; fails with the CLI's output when it exits non-zero. */
function timed(s: PulumiStack, ...args: string[]): number {
  const t0 = process.hrtime.bigint();
  s.ok(...args);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Milliseconds `node -e CODE` takes, from this checkout. */
function nodeMs(code: string): number {
  const t0 = process.hrtime.bigint();
  execFileSync(process.execPath, ["-e", code], { cwd: REPO });
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Least-squares line through (x, y): slope and intercept. */
export function fitLine(xs: number[], ys: number[]): { slope: number; intercept: number } {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  xs.forEach((x, i) => {
    sxy += (x - mx) * (ys[i]! - my);
    sxx += (x - mx) ** 2;
  });
  const slope = sxx === 0 ? 0 : sxy / sxx;
  return { slope, intercept: my - slope * mx };
}

/** Runs the scale benchmark on `uri` at `sizes` domains; returns Markdown. */
export async function benchScale(uri: string, reps: number, sizes: number[]): Promise<string> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-bench-scale-"));
  const out: string[] = [];
  try {
    // Where the fixed cost goes: the engine with an empty program, TypeScript vs JavaScript, our
    // SDK loaded, and Node loading the modules alone.
    const emptyJs = stackOf(work, "empty-js", "index.js", "");
    const emptyTs = stackOf(work, "empty-ts", "index.ts", "export {};\n");
    const sdkOnly = stackOf(work, "sdk-only", "index.js", DOMAINS_JS);
    sdkOnly.setConfig("count", "0");
    sdkOnly.setConfig("uri", uri);
    const oneDomain = stackOf(work, "one-domain", "index.js", DOMAINS_JS);
    oneDomain.setConfig("count", "1");
    oneDomain.setConfig("uri", uri);
    timed(oneDomain, "up", "--yes", "--skip-preview");
    const fixed: Sample[] = [
      { label: "preview, empty JavaScript program", ms: [] },
      { label: "preview, empty TypeScript program", ms: [] },
      { label: "preview, JavaScript program loading pulumi-libvirt-domain, no resource", ms: [] },
      { label: "preview, 1 Domain (unchanged): the dynamic provider starts", ms: [] },
      { label: "node: require @pulumi/pulumi", ms: [] },
      { label: "node: require @pulumi/pulumi + pulumi-libvirt-domain (SDK)", ms: [] },
      { label: "node: require the Domain provider (dist/provider/dynamic/impl)", ms: [] },
    ];
    for (let r = 0; r < reps; r++) {
      fixed[0]!.ms.push(timed(emptyJs, "preview"));
      fixed[1]!.ms.push(timed(emptyTs, "preview"));
      fixed[2]!.ms.push(timed(sdkOnly, "preview"));
      fixed[3]!.ms.push(timed(oneDomain, "preview"));
      fixed[4]!.ms.push(nodeMs('require("@pulumi/pulumi")'));
      fixed[5]!.ms.push(nodeMs('require("@pulumi/pulumi"); require("./dist/sdk")'));
      fixed[6]!.ms.push(nodeMs('require("./dist/provider/dynamic/impl")'));
    }
    timed(oneDomain, "destroy", "--yes", "--skip-preview");
    const [baseline, ...rest] = fixed;
    out.push(table(`Fixed cost of one CLI run (${reps} reps)`, baseline!, rest));

    // Per-domain costs: up (create), preview (no change), refresh, destroy at each size.
    const ops = ["up", "preview", "refresh", "destroy"] as const;
    const at: Record<(typeof ops)[number], number[]> = { up: [], preview: [], refresh: [], destroy: [] };
    const stack = stackOf(work, "domains", "index.js", DOMAINS_JS);
    stack.setConfig("uri", uri);
    for (const n of sizes) {
      stack.setConfig("count", String(n));
      const t: Record<(typeof ops)[number], number[]> = { up: [], preview: [], refresh: [], destroy: [] };
      for (let r = 0; r < reps; r++) {
        t.up.push(timed(stack, "up", "--yes", "--skip-preview"));
        t.preview.push(timed(stack, "preview", "--expect-no-changes"));
        t.refresh.push(timed(stack, "refresh", "--yes", "--skip-preview"));
        t.destroy.push(timed(stack, "destroy", "--yes", "--skip-preview"));
      }
      for (const op of ops) at[op].push(median(t[op]));
    }
    const base = median(baseline!.ms);
    const rows = ops.map((op) => {
      const { slope, intercept } = fitLine(sizes, at[op]);
      const cells = at[op].map((ms) => `${(ms / 1000).toFixed(2)} s`).join(" | ");
      return `| ${op} | ${cells} | ${(slope / 1000).toFixed(3)} s (${(slope / base).toFixed(3)}x) | ${(intercept / 1000).toFixed(2)} s (${(intercept / base).toFixed(2)}x) |`;
    });
    out.push(
      `### Domains (no disks, shut off) with the real Pulumi CLI, median of ${reps} reps\n\n` +
        `| command | ${sizes.map((n) => `${n} domains`).join(" | ")} | per domain (slope) | fixed (at 0) |\n` +
        `|---|${sizes.map(() => "---|").join("")}---|---|\n` +
        rows.join("\n") +
        `\n\nRatios are against the baseline above (preview of an empty JavaScript program, ${(base / 1000).toFixed(2)} s in this run).\n`,
    );
  } finally {
    if (!process.env.KEEP_BENCH_WORK) fs.rmSync(work, { recursive: true, force: true });
  }
  return out.join("\n");
}
