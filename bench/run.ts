/**
 * `npm run bench [-- NAME...]`: runs the benchmarks against the labs (scripts/lab.sh up first)
 * and prints Markdown tables; `bench/README.md` explains them and keeps the last figures.
 *
 * Names: xml, crud, fleet, clone, guest. Env: BENCH_REPS (default 5), BENCH_CLONE_GIB (default "1,4"),
 * BENCH_CRUD_N (default 10), BENCH_REFRESH_N (default 50), BENCH_FLEET_SIZES (default "1,5,10,20").
 */
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { benchClone } from "./clone";
import { benchCrud } from "./crud";
import { benchFleet } from "./fleet";
import { benchGuest } from "./guest";
import { benchXml } from "./xml";

const REPO = path.resolve(__dirname, "..", "..");

function labEnv(): Record<string, string> {
  const out = execFileSync("bash", [path.join(REPO, "scripts", "lab.sh"), "env"], { encoding: "utf8" });
  const env: Record<string, string> = {};
  for (const m of out.matchAll(/^export (\w+)='([^']*)'$/gm)) env[m[1]] = process.env[m[1]] ?? m[2];
  return env;
}

async function main(): Promise<void> {
  const names = process.argv.slice(2);
  const want = (n: string) => names.length === 0 || names.includes(n);
  const reps = Number(process.env.BENCH_REPS ?? "5");
  const env = labEnv();
  const sections: string[] = [`Run ${new Date().toISOString()} on ${require("node:os").hostname()}, ${reps} repetitions.`, ""];
  if (want("xml")) sections.push(await benchXml(REPO, reps));
  if (want("crud")) sections.push(await benchCrud(env.LAB_NEW_URI, reps, Number(process.env.BENCH_CRUD_N ?? "10"), Number(process.env.BENCH_REFRESH_N ?? "50")));
  if (want("fleet")) sections.push(await benchFleet(env.LAB_NEW_URI, env.LAB_IMAGE_DIR, reps, (process.env.BENCH_FLEET_SIZES ?? "1,5,10,20").split(",").map(Number)));
  if (want("clone")) {
    const sizes = (process.env.BENCH_CLONE_GIB ?? "1,4").split(",").map(Number);
    sections.push(await benchClone(env.LAB_HOST_URI, env.LAB_IMAGE_DIR, reps, sizes));
  }
  if (want("guest")) sections.push(await benchGuest(env.LAB_HOST_QEMU, env.LAB_NEW_QEMU, reps));
  process.stdout.write(sections.join("\n") + "\n");
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
