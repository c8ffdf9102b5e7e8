/**
 * Driving the real Pulumi CLI for end-to-end tests: a project copied into `.e2e-work/` (inside
 * the repository, so `@pulumi/pulumi` and `pulumi-libvirt-domain` resolve as for a user), or
 * written anywhere else (a temporary directory outside the repository, with its own
 * `node_modules`), a local file backend and a temporary PULUMI_HOME. The CLI comes from
 * PULUMI_BIN_DIR or `scripts/pulumi-cli.sh bindir`; a missing CLI fails the test.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "./paths";

let binDir: string | undefined;

/** The directory holding the `pulumi` binary (and the language host shim). */
export function pulumiBinDir(): string {
  if (binDir) return binDir;
  const dir =
    process.env.PULUMI_BIN_DIR ||
    execFileSync("bash", [path.join(REPO_ROOT, "scripts", "pulumi-cli.sh"), "bindir"], { encoding: "utf8" }).trim();
  const version = execFileSync(path.join(dir, "pulumi"), ["version"], { encoding: "utf8" }).trim();
  if (!version.startsWith("v3.248."))
    throw new Error(`the Pulumi CLI in ${dir} is ${version}, not v3.248.x; run: npm run pulumi -- version`);
  binDir = dir;
  return dir;
}

/** The result of one CLI run. */
export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Where a {@link PulumiStack} lives and how its CLI runs. */
export interface PulumiStackOptions {
  /** The folder that holds `<label>/` (project, state, home). @default `.e2e-work/` in the repository */
  readonly workRoot?: string;
  /** The environment the CLI starts from. @default process.env */
  readonly baseEnv?: NodeJS.ProcessEnv;
  /** Type-check TypeScript programs, as a user's runs do. @default false (transpile only: faster) */
  readonly typeCheck?: boolean;
}

/** One project + stack in a work directory. */
export class PulumiStack {
  /** Where the project files are. */
  public readonly dir: string;
  private readonly home: string;

  /**
   * Copies `source` (a folder with Pulumi.yaml) into `<workRoot>/<label>/project`, or makes that
   * folder empty when `source` is null (the test writes the project).
   */
  constructor(
    source: string | null,
    label: string,
    public readonly stack: string,
    private readonly options: PulumiStackOptions = {},
  ) {
    const work = path.join(options.workRoot ?? path.join(REPO_ROOT, ".e2e-work"), label);
    fs.rmSync(work, { recursive: true, force: true });
    fs.mkdirSync(path.join(work, "state"), { recursive: true });
    this.dir = path.join(work, "project");
    this.home = path.join(work, "home");
    if (source === null) fs.mkdirSync(this.dir);
    else fs.cpSync(source, this.dir, { recursive: true });
  }

  /** Environment for the CLI. */
  public env(): NodeJS.ProcessEnv {
    const base = this.options.baseEnv ?? process.env;
    return {
      ...base,
      PATH: `${pulumiBinDir()}:${base.PATH}`,
      PULUMI_HOME: this.home,
      PULUMI_BACKEND_URL: `file://${path.join(path.dirname(this.dir), "state")}`,
      PULUMI_CONFIG_PASSPHRASE: "",
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      PULUMI_NODEJS_TRANSPILE_ONLY: this.options.typeCheck ? undefined : "true",
      NO_COLOR: "1",
    };
  }

  /** Runs `pulumi ARGS` in the project; never throws. */
  public run(...args: string[]): CliResult {
    return this.runAsWritten([...args, "--non-interactive"]);
  }

  /** Runs `pulumi ARGS` exactly as given (no `--non-interactive`: there is no terminal anyway); never throws. */
  public runAsWritten(args: readonly string[]): CliResult {
    const r = spawnSync(path.join(pulumiBinDir(), "pulumi"), args, {
      cwd: this.dir,
      env: this.env(),
      encoding: "utf8",
      timeout: 300000,
    });
    return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  }

  /**
   * Runs `pulumi ARGS` in the background (for a test that acts while it runs, e.g. kills a
   * daemon); resolves once it exits and all its output is read. Bounded by `timeoutMs`
   * (default 5 minutes): then it is killed and resolves with code -1. Never rejects.
   */
  public runAsync(args: readonly string[], timeoutMs = 300000): Promise<CliResult> {
    return new Promise((resolve) => {
      const p = spawn(path.join(pulumiBinDir(), "pulumi"), [...args, "--non-interactive"], {
        cwd: this.dir,
        env: this.env(),
      });
      let stdout = "";
      let stderr = "";
      const timer = setTimeout(() => {
        stderr += `\n(pulumi ${args.join(" ")} killed after ${timeoutMs} ms)`;
        p.kill("SIGKILL");
      }, timeoutMs);
      p.stdout.on("data", (d) => (stdout += d));
      p.stderr.on("data", (d) => (stderr += d));
      // "close", not "exit": only then is all the output read.
      p.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout, stderr });
      });
    });
  }

  /** Runs and requires exit 0; the error shows the output. */
  public ok(...args: string[]): CliResult {
    const r = this.run(...args);
    if (r.code !== 0) throw new Error(`pulumi ${args.join(" ")} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r;
  }

  /** `stack init` + config. */
  public init(config: Record<string, string>): void {
    this.ok("stack", "init", this.stack);
    for (const [k, v] of Object.entries(config)) this.setConfig(k, v);
  }

  /** `config set`. */
  public setConfig(key: string, value: string): void {
    this.ok("config", "set", key, value);
  }

  /** Stack outputs. */
  public outputs(): Record<string, any> {
    return JSON.parse(this.ok("stack", "output", "--json").stdout);
  }

  /** `preview --json`, parsed. */
  public previewJson(): any {
    const r = this.run("preview", "--json", "--diff");
    return JSON.parse(r.stdout);
  }
}
