/**
 * `npm run bench [-- NAME...]`: runs the benchmarks against the labs (scripts/lab.sh up first)
 * and prints Markdown tables; `bench/README.md` explains them and keeps the last figures.
 *
 * Names: xml, crud, fleet, clone, guest, scale. Env: BENCH_REPS (default 5), BENCH_CLONE_GIB (default "1,4"),
 * BENCH_CRUD_N (default 10), BENCH_REFRESH_N (default 50), BENCH_FLEET_SIZES (default "1,5,10,20"),
 * BENCH_SCALE_SIZES (default "1,10,30,100") and
 * BENCH_SCALE_REPS (default 1); scale runs only when named: it takes minutes. fleet-hosts (a fleet over
 * both labs as two hosts, real CLI) too: BENCH_FLEET_HOSTS_SIZE (default 50), BENCH_FLEET_HOSTS_REPS (default 1).
 */
import * as os from "node:os";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { benchClone } from "./clone";
import { benchCrud } from "./crud";
import { benchFleet } from "./fleet";
import { benchFleetHosts } from "./fleet-hosts";
import { benchGuest } from "./guest";
import { benchScale } from "./scale";
import { benchXml } from "./xml";

const REPO = path.resolve(__dirname, "..", "..");

function labEnv(): Record<string, string> {
  const out = execFileSync("bash", [path.join(REPO, "scripts", "lab.sh"), "env"], { encoding: "utf8" });
  const env: Record<string, string> = {};
  for (const [, key, value] of out.matchAll(/^export (\w+)='([^']*)'$/gm)) {
    if (key !== undefined && value !== undefined) env[key] = process.env[key] ?? value;
  }
  return env;
}

/** The lab variable `key` from {@link labEnv}'s result (throws when `scripts/lab.sh env` did not print it). */
function labVar(env: Record<string, string>, key: string): string {
  const value = env[key];
  if (value === undefined)
    throw new Error(`bench: \`scripts/lab.sh env\` did not print ${key}; is the lab up (scripts/lab.sh up)?`);
  return value;
}

async function main(): Promise<void> {
  const names = process.argv.slice(2);
  const want = (n: string) => names.length === 0 || names.includes(n);
  const reps = Number(process.env.BENCH_REPS ?? "5");
  const env = labEnv();
  const sections: string[] = [`Run ${new Date().toISOString()} on ${os.hostname()}, ${reps} repetitions.`, ""];
  if (want("xml")) sections.push(await benchXml(REPO, reps));
  if (want("crud"))
    sections.push(
      await benchCrud(
        labVar(env, "LAB_NEW_URI"),
        reps,
        Number(process.env.BENCH_CRUD_N ?? "10"),
        Number(process.env.BENCH_REFRESH_N ?? "50"),
      ),
    );
  if (want("fleet"))
    sections.push(
      await benchFleet(
        labVar(env, "LAB_NEW_URI"),
        labVar(env, "LAB_IMAGE_DIR"),
        reps,
        (process.env.BENCH_FLEET_SIZES ?? "1,5,10,20").split(",").map(Number),
      ),
    );
  if (want("clone")) {
    const sizes = (process.env.BENCH_CLONE_GIB ?? "1,4").split(",").map(Number);
    sections.push(await benchClone(labVar(env, "LAB_HOST_URI"), labVar(env, "LAB_IMAGE_DIR"), reps, sizes));
  }
  if (want("guest")) sections.push(await benchGuest(labVar(env, "LAB_HOST_QEMU"), labVar(env, "LAB_NEW_QEMU"), reps));
  if (names.includes("scale"))
    sections.push(
      await benchScale(
        labVar(env, "LAB_NEW_URI"),
        Number(process.env.BENCH_SCALE_REPS ?? "1"),
        (process.env.BENCH_SCALE_SIZES ?? "1,10,30,100").split(",").map(Number),
      ),
    );
  if (names.includes("fleet-hosts"))
    sections.push(
      await benchFleetHosts(
        { host: labVar(env, "LAB_HOST_URI"), new: labVar(env, "LAB_NEW_URI") },
        labVar(env, "LAB_IMAGE_DIR"),
        Number(process.env.BENCH_FLEET_HOSTS_REPS ?? "1"),
        Number(process.env.BENCH_FLEET_HOSTS_SIZE ?? "50"),
      ),
    );
  process.stdout.write(sections.join("\n") + "\n");
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
