/**
 * Finding the labs (scripts/lab.sh). A test that needs a lab fails, never skips, when the lab
 * is missing: `npm run lab -- up` (or `.ci/run`) starts both.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { QemuDirectBackend } from "../../provider/backends/qemu/direct";
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

/** `scripts/lab.sh CMD WHICH` (e.g. `crash new`, `up new`), its output discarded; throws when it fails. */
export function labScript(cmd: string, which: string): void {
  execFileSync("bash", [path.join(REPO_ROOT, "scripts", "lab.sh"), cmd, which], { stdio: "ignore" });
}

/** The label of a lab's QEMU in test titles: `7.2 (host)` or `11.x (lab chroot)`. */
export function directQemuLabel(which: Lab["name"]): string {
  return which === "host" ? "7.2 (host)" : "11.x (lab chroot)";
}

/**
 * A fresh QEMU-direct state directory (`os.tmpdir()/lvd-LABEL-WHICH-XXXX`) and its URI on the
 * lab's QEMU `which`, for a describe block's `before`; {@link removeDirectState} undoes it.
 */
export function makeDirectState(which: Lab["name"], label: string): { uri: string; state: string } {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), `lvd-${label}-${which}-`));
  return { state, uri: `qemu-direct://${state}?emulator=${encodeURIComponent(labQemu(which))}` };
}

/** Destroys every domain of a QEMU-direct state (errors ignored) and removes its directory. */
export async function removeDirectState(uri: string, state: string): Promise<void> {
  const b = new QemuDirectBackend(uri);
  for (const n of await b.listNames()) await b.destroy(n).catch(() => undefined);
  fs.rmSync(state, { recursive: true, force: true });
}

/** The value after each occurrence of `flag` in an argv. */
export function argValues(argv: string[], flag: string): string[] {
  const out: string[] = [];
  argv.forEach((a, i) => {
    if (a === flag && i + 1 < argv.length) out.push(argv[i + 1]!);
  });
  return out;
}
