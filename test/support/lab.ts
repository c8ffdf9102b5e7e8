/**
 * Finding the labs (scripts/lab.sh). A test that needs a lab fails, never skips, when the lab
 * is missing: `npm run lab -- up` (or `.ci/run`) starts both.
 */
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { runVirsh } from "../../provider/backends/virsh/exec";
import { REPO_ROOT } from "./paths";

/** One lab. */
export interface Lab {
  readonly name: "host" | "new";
  readonly uri: string;
  /** Where images live, the same path for both labs. */
  readonly imageDir: string;
}

let cachedEnv: Record<string, string> | undefined;

/** The variables `scripts/lab.sh env` prints, each overridden by the environment variable of that name. */
export function labEnv(): Record<string, string> {
  if (cachedEnv) return cachedEnv;
  const env: Record<string, string> = {};
  const out = execFileSync("bash", [path.join(REPO_ROOT, "scripts", "lab.sh"), "env"], { encoding: "utf8" });
  for (const [, k, v] of out.matchAll(/^export (\w+)='([^']*)'$/gm)) if (k !== undefined && v !== undefined) env[k] = v;
  for (const k of Object.keys(env)) if (process.env[k]) env[k] = process.env[k]!;
  cachedEnv = env;
  return env;
}

/** The value `scripts/lab.sh env` printed for `name`; throws naming it when it printed none. */
function labVar(env: Record<string, string>, name: string): string {
  const v = env[name];
  if (v === undefined) throw new Error(`scripts/lab.sh env printed no ${name}; start the labs with: npm run lab -- up`);
  return v;
}

/** The lab, checked to answer; throws with how to start it otherwise. */
export async function requireLab(name: Lab["name"]): Promise<Lab> {
  const env = labEnv();
  const uri = labVar(env, name === "host" ? "LAB_HOST_URI" : "LAB_NEW_URI");
  try {
    await runVirsh(uri, ["version", "--daemon"], { timeoutMs: 15000 });
  } catch (e) {
    throw new Error(
      `the ${name} lab does not answer at ${uri} (${(e as Error).message}); start it with: npm run lab -- up`,
      { cause: e },
    );
  }
  return { name, uri, imageDir: labVar(env, "LAB_IMAGE_DIR") };
}

/**
 * A lab's QEMU binary for the QEMU-direct backend (`LAB_HOST_QEMU`: the host's 7.2,
 * `LAB_NEW_QEMU`: the chroot's 11.x), checked to run; a missing one fails the test.
 */
export function labQemu(which: Lab["name"]): string {
  const env = labEnv();
  const bin = labVar(env, which === "host" ? "LAB_HOST_QEMU" : "LAB_NEW_QEMU");
  execFileSync(bin, ["--version"]);
  return bin;
}

/** The value after each occurrence of `flag` in an argv. */
export function argValues(argv: string[], flag: string): string[] {
  const out: string[] = [];
  argv.forEach((a, i) => {
    if (a === flag && i + 1 < argv.length) out.push(argv[i + 1]!);
  });
  return out;
}
