/* eslint-disable @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-explicit-any --
 * This file drives Pulumi's generated gRPC stubs (`@pulumi/pulumi/proto/*_pb.js`), which ship
 * without type declarations: their messages are `any` by nature. */
/**
 * A minimal Pulumi language host for Node.js programs (`pulumi-language-nodejs`), for machines
 * where the official one cannot be installed: the Go module proxy reachable here does not serve
 * `github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3` at any version.
 *
 * It does what the official host does for a program run: a gRPC LanguageRuntime server on
 * 127.0.0.1 whose port is printed on stdout; `Run` spawns the SDK's own runner
 * (`@pulumi/pulumi/cmd/run`, resolved from the program directory) with the engine's arguments
 * and the stack config in `PULUMI_CONFIG`. Plugin discovery returns nothing (this project needs
 * no provider plugin but the dynamic one, which ships in `@pulumi/pulumi`), and dependency
 * installation is left to npm.
 *
 * The CLI starts its language host as `pulumi-language-nodejs [-flag=value ...] ENGINE_ADDRESS`,
 * a binary it looks for beside itself. No such binary is in this repository: `scripts/pulumi-cli.sh`
 * writes a shell shim by that name beside the CLI it builds (in its cache directory), and the
 * shim resolves this file (`dist/tools/language-host.js`) from the program's directory: it ships
 * in the npm package, so a user's project outside this repository finds it too.
 * gRPC and protobuf are the copies `@pulumi/pulumi` itself loads: the package does not depend
 * on them, and a second copy would not match the SDK's generated service definitions.
 */
import type * as GrpcModule from "@grpc/grpc-js";
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import * as path from "node:path";

/** `require` as `@pulumi/pulumi` sees it: its gRPC and protobuf, wherever npm put them. */
const sdkRequire = createRequire(require.resolve("@pulumi/pulumi/package.json"));
const grpc: typeof GrpcModule = sdkRequire("@grpc/grpc-js");

/**
 * gRPC before 1.10 (older `@pulumi/pulumi` releases bring one: 3.52 has 1.3.8) serves nothing until `start()`
 * is called after binding; later versions start on their own and deprecate `start()`.
 */
function needsStart(): boolean {
  const [major = 0, minor = 0] = String(sdkRequire("@grpc/grpc-js/package.json").version).split(".").map(Number);
  return major < 1 || (major === 1 && minor < 10);
}

/* eslint-disable @typescript-eslint/no-require-imports */
const langproto = require("@pulumi/pulumi/proto/language_pb.js");
const langrpc = require("@pulumi/pulumi/proto/language_grpc_pb.js");
const pluginproto = require("@pulumi/pulumi/proto/plugin_pb.js");
/* eslint-enable @typescript-eslint/no-require-imports */

/** The SDK version this host pairs with. */
const SDK_VERSION: string = (() => {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a JSON file, resolved at run time
    return require("@pulumi/pulumi/package.json").version;
  } catch {
    return "3.248.0";
  }
})();

/** Command-line options the CLI passes (runtime options from Pulumi.yaml among them). */
interface HostOptions {
  engineAddress: string;
  typescript: boolean;
  tsconfig?: string;
  nodeargs?: string;
}

function parseArgs(argv: string[]): HostOptions {
  const o: HostOptions = { engineAddress: "", typescript: true };
  for (const a of argv) {
    const m = /^--?([A-Za-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) {
      o.engineAddress = a;
      continue;
    }
    const [, key, value] = m;
    if (key === "typescript") o.typescript = value === undefined || value === "true";
    else if (key === "tsconfig") o.tsconfig = value;
    else if (key === "nodeargs") o.nodeargs = value;
  }
  return o;
}

type Callback = (err: GrpcModule.ServiceError | null, resp?: unknown) => void;
type Call = { request: any };

function unimplemented(name: string) {
  return (_call: unknown, cb: Callback) =>
    cb({
      code: grpc.status.UNIMPLEMENTED,
      details: `${name} is not implemented by this language host`,
      name,
      message: name,
    } as GrpcModule.ServiceError);
}

/** Runs the program; resolves with the RunResponse fields. */
function runProgram(opts: HostOptions, req: any): Promise<{ error: string; bail: boolean }> {
  const info = req.getInfo?.();
  const programDir: string = info?.getProgramDirectory?.() || req.getProgram() || req.getPwd();
  const entry: string = info?.getEntryPoint?.() || ".";
  const rootDir: string = info?.getRootDirectory?.() || req.getPwd();
  let runPath: string;
  try {
    runPath = require.resolve("@pulumi/pulumi/cmd/run", { paths: [programDir, rootDir] });
  } catch {
    return Promise.resolve({
      error: "It looks like the Pulumi SDK has not been installed. Have you run npm install?",
      bail: false,
    });
  }
  const args: string[] = [];
  if (opts.nodeargs) args.push(...opts.nodeargs.split(/\s+/).filter(Boolean));
  args.push(runPath);
  const flag = (k: string, v: string | undefined) => {
    if (v) args.push(`--${k}`, v);
  };
  flag("monitor", req.getMonitorAddress());
  flag("engine", opts.engineAddress);
  flag("organization", req.getOrganization());
  flag("project", req.getProject());
  flag("stack", req.getStack());
  flag("pwd", req.getPwd());
  flag("root-directory", rootDir);
  if (req.getDryrun()) args.push("--dry-run");
  flag("parallel", String(req.getParallel()));
  // The program: its directory (Node loads its index or package.json main) or its entry file.
  args.push(entry === "." ? programDir : path.resolve(programDir, entry), ...req.getArgsList());

  const config: Record<string, string> = {};
  req.getConfigMap().forEach((v: string, k: string) => {
    config[k] = v;
  });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PULUMI_CONFIG: JSON.stringify(config),
    PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(req.getConfigsecretkeysList()),
  };
  if (opts.typescript) env.PULUMI_NODEJS_TYPESCRIPT = "true";
  if (opts.tsconfig) env.PULUMI_NODEJS_TSCONFIG_PATH = opts.tsconfig;

  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, {
      cwd: req.getPwd() || programDir,
      env,
      stdio: ["ignore", "inherit", "inherit"],
    });
    child.on("error", (e) =>
      resolve({ error: `Problem executing program (could not run node): ${e.message}`, bail: false }),
    );
    child.on("exit", (code, signal) => {
      if (code === 0) resolve({ error: "", bail: false });
      // 32: the program already showed the user an actionable message.
      else if (code === 32) resolve({ error: "", bail: true });
      else
        resolve({
          error: signal ? `Program exited with signal ${signal}` : `Program exited with non-zero exit code: ${code}`,
          bail: false,
        });
    });
  });
}

/** Starts the server and prints its port. */
export function main(argv: string[]): void {
  const opts = parseArgs(argv);
  const server = new grpc.Server();
  server.addService(langrpc.LanguageRuntimeService, {
    handshake: (_call: Call, cb: Callback) => cb(null, new langproto.LanguageHandshakeResponse()),
    getRequiredPlugins: (_call: Call, cb: Callback) => cb(null, new langproto.GetRequiredPluginsResponse()),
    getRequiredPackages: (_call: Call, cb: Callback) => cb(null, new langproto.GetRequiredPackagesResponse()),
    getPluginInfo: (_call: Call, cb: Callback) => {
      const r = new pluginproto.PluginInfo();
      r.setVersion(SDK_VERSION);
      cb(null, r);
    },
    run: (call: Call, cb: Callback) => {
      runProgram(opts, call.request).then(
        (r) => {
          const resp = new langproto.RunResponse();
          resp.setError(r.error);
          resp.setBail(r.bail);
          cb(null, resp);
        },
        (e: Error) =>
          cb({
            code: grpc.status.INTERNAL,
            details: e.message,
            name: "RunError",
            message: e.message,
          } as GrpcModule.ServiceError),
      );
    },
    installDependencies: (call: GrpcModule.ServerWritableStream<unknown, unknown>) => call.end(),
    runtimeOptionsPrompts: (_call: Call, cb: Callback) => cb(null, new langproto.RuntimeOptionsResponse()),
    about: (_call: Call, cb: Callback) => {
      const r = new langproto.AboutResponse();
      r.setExecutable(process.execPath);
      r.setVersion(process.version.replace(/^v/, ""));
      cb(null, r);
    },
    getProgramDependencies: (_call: Call, cb: Callback) => cb(null, new langproto.GetProgramDependenciesResponse()),
    runPlugin: unimplemented("RunPlugin"),
    generateProgram: unimplemented("GenerateProgram"),
    generateProject: unimplemented("GenerateProject"),
    generatePackage: unimplemented("GeneratePackage"),
    pack: unimplemented("Pack"),
    link: unimplemented("Link"),
    template: unimplemented("Template"),
    cancel: (_call: Call, cb: Callback) =>
      cb(null, new (sdkRequire("google-protobuf/google/protobuf/empty_pb.js").Empty)()),
  });
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) {
      process.stderr.write(`could not start the language host: ${err.message}\n`);
      process.exit(1);
    }
    if (needsStart()) server.start();
    process.stdout.write(`${port}\n`);
  });
}

if (require.main === module) main(process.argv.slice(2));
