/**
 * Running npm as a user would, for the end-to-end tests that pack this package and install it
 * outside the repository (test/e2e/package.test.ts, test/e2e/upgrade.test.ts).
 */
import { spawnSync } from "node:child_process";

/** The environment of a user's shell: none of the `npm run` variables this suite may run under. */
export function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== "INIT_CWD") env[k] = v;
  // Quieter and no audit request; what gets installed is the same.
  return { ...env, npm_config_audit: "false", npm_config_fund: "false", npm_config_update_notifier: "false" };
}

/** Runs npm in `cwd` (up to 10 minutes); throws with its output when it fails. */
export function npm(args: readonly string[], cwd: string): string {
  const r = spawnSync("npm", args, { cwd, env: userEnv(), encoding: "utf8", timeout: 600000 });
  if (r.status !== 0)
    throw new Error(`npm ${args.join(" ")} (in ${cwd}) exited ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}
