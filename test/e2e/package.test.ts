/**
 * The npm package as users install it. `npm pack` makes the tarball (its `prepack` builds);
 * its file list and source maps are checked and `npm publish --dry-run` must accept it. Then,
 * in temporary directories outside the repository, the README's section "Install (for users)"
 * runs as written (test/support/readme.ts), for a TypeScript and a JavaScript program, with the
 * oldest `@pulumi/pulumi` the package supports (3.52.0: the first whose `dynamic.Resource`
 * takes the module and type that make the resources' type tokens, so the URNs) and the newest
 * that runs on Node 20 (3.248.0): npm install, `pulumi up` of a Domain and a 2-member
 * DomainFleet on the host lab (libvirt 9.0) through the real CLI, `pulumi preview
 * --expect-no-changes`, `pulumi destroy`. Only values change: the tarball for the registry
 * name, the `@pulumi/pulumi` version, the stack name (the domains are named after it), the
 * lab's URI and the template this test defines. Each guest's UUID is read over QMP.
 */
import { expect } from "chai";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { VirshBackend } from "../../provider/backends/virsh/virsh-backend";
import { domainsWithPrefix, removeDomains, RUN_PREFIX } from "../support/domains";
import { Lab, requireLab } from "../support/lab";
import { npm, userEnv } from "../support/npm";
import { REPO_ROOT } from "../support/paths";
import { PulumiStack } from "../support/pulumi";
import { sha256File } from "../support/files";
import { installSteps, ProgramLanguage, ReadmeStep } from "../support/readme";

/** The oldest `@pulumi/pulumi` the package supports (its peer range starts here). */
const OLDEST_PULUMI = "3.52.0";
/** The newest `@pulumi/pulumi` for Node 20 (3.249.0 and later declare node >= 22). */
const NEWEST_PULUMI = "3.248.0";
/** The README program's hwuuid for the Domain `web`. */
const WEB_HWUUID = "5d5b0f1d-128b-4517-8e65-b258a8734c1d";

const PKG = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8"));

/** Every `@pulumi/pulumi` directory under a project's node_modules, with its version. */
function pulumiCopies(projectDir: string): string[] {
  const found: string[] = [];
  const walk = (nm: string): void => {
    if (!fs.existsSync(nm)) return;
    for (const e of fs.readdirSync(nm)) {
      if (e.startsWith(".")) continue;
      const dirs = e.startsWith("@")
        ? fs.readdirSync(path.join(nm, e)).map((s) => path.join(nm, e, s))
        : [path.join(nm, e)];
      for (const d of dirs) {
        if (path.relative(nm, d) === path.join("@pulumi", "pulumi"))
          found.push(
            `${path.relative(projectDir, d)}@${JSON.parse(fs.readFileSync(path.join(d, "package.json"), "utf8")).version}`,
          );
        walk(path.join(d, "node_modules"));
      }
    }
  };
  walk(path.join(projectDir, "node_modules"));
  return found.sort();
}

describe("the npm package as users install it: npm pack, then the README's user section in a project outside the repository", function () {
  this.timeout(1800000);
  let tmp: string;
  let tarball: string;
  let packed: string[];

  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pld-package-"));
    expect(path.relative(REPO_ROOT, tmp).startsWith(".."), `${tmp} must be outside ${REPO_ROOT}`).to.equal(true);
    const out = JSON.parse(npm(["pack", "--json", "--pack-destination", tmp], REPO_ROOT));
    tarball = path.join(tmp, out[0].filename);
    packed = (out[0].files as { path: string }[]).map((f) => f.path).sort();
    fs.mkdirSync(path.join(tmp, "unpacked"));
    execFileSync("tar", ["-xzf", tarball, "-C", path.join(tmp, "unpacked")]);
  });
  after(() => {
    if (tmp && !process.env.KEEP_E2E_WORK) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("the tarball holds the compiled SDK, provider, CLI, language host, their type declarations, README and CHANGELOG, and nothing else", () => {
    const allowed = [
      /^package\.json$/,
      /^README\.md$/,
      /^CHANGELOG\.md$/,
      /^LICENSE$/,
      /^bin\/[\w-]+\.js$/,
      /^dist\/(sdk|provider|tools)\/[\w/.-]+\.(js|d\.ts|js\.map)$/,
    ];
    const stray = packed.filter((f) => !allowed.some((re) => re.test(f)));
    expect(stray, "files that are not part of the package (tests, labs, examples, sources, benchmarks)").to.deep.equal(
      [],
    );
    for (const f of packed)
      expect(f, "no tests, labs, examples or benchmarks").to.not.match(
        /(^|\/)(test|tests|bench|examples|scripts|\.ci|\.e2e-work)\//,
      );
    const required = [
      "package.json",
      "README.md",
      "CHANGELOG.md",
      PKG.main,
      PKG.types,
      ...Object.values(PKG.bin as Record<string, string>),
      "dist/sdk/domain.js",
      "dist/sdk/disk.js",
      "dist/sdk/fleet.js",
      "dist/sdk/provider.js",
      // Named in every stack's state by the serialized provider (sdk/provider.ts).
      "dist/provider/dynamic/impl.js",
      "dist/provider/dynamic/disk.js",
      "dist/provider/cli/main.js",
      // Found by the language host shim beside the CLI (scripts/pulumi-cli.sh).
      "dist/tools/language-host.js",
    ].map((f) => f.replace(/^\.\//, ""));
    expect(
      required.filter((f) => !packed.includes(f)),
      "missing from the tarball",
    ).to.deep.equal([]);
    const js = packed.filter((f) => f.startsWith("dist/") && f.endsWith(".js"));
    expect(
      js.filter((f) => !packed.includes(f.replace(/\.js$/, ".d.ts"))),
      "JavaScript without type declarations",
    ).to.deep.equal([]);
    expect(PKG.types).to.equal(PKG.main.replace(/\.js$/, ".d.ts"));
    expect(PKG.peerDependencies?.["@pulumi/pulumi"]).to.equal(`^${OLDEST_PULUMI}`);
    expect(PKG.dependencies?.["@pulumi/pulumi"], "@pulumi/pulumi is a peer dependency, never a dependency").to.equal(
      undefined,
    );
    for (const k of ["repository", "keywords", "license", "homepage", "bugs", "engines"])
      expect(PKG[k], k).to.not.equal(undefined);
  });

  it("every source map carries its sources (the tarball has no TypeScript) and names a file of this checkout: no stale output", () => {
    const root = path.join(tmp, "unpacked", "package");
    for (const f of packed.filter((p) => p.endsWith(".js"))) {
      const text = fs.readFileSync(path.join(root, f), "utf8");
      const m = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(text);
      if (!m?.[1]) continue;
      const mapFile = path.join(path.dirname(f), m[1]);
      expect(packed, `${f} points at ${mapFile}`).to.include(mapFile);
    }
    for (const f of packed.filter((p) => p.endsWith(".js.map"))) {
      const map = JSON.parse(fs.readFileSync(path.join(root, f), "utf8"));
      expect(map.sourcesContent?.length, `${f}: sourcesContent`).to.equal(map.sources.length);
      expect(
        map.sourcesContent.every((c: unknown) => typeof c === "string" && c.length > 0),
        `${f}: every source inlined`,
      ).to.equal(true);
      for (const s of map.sources as string[]) {
        const source = path.resolve(REPO_ROOT, path.dirname(f), s);
        expect(
          fs.existsSync(source),
          `${f} was compiled from ${path.relative(REPO_ROOT, source)}, which no longer exists: rm -rf dist && npm run build`,
        ).to.equal(true);
      }
    }
  });

  it("npm publish --dry-run accepts the tarball", () => {
    const dir = path.join(tmp, "publish");
    fs.mkdirSync(dir);
    const r = spawnSync("npm", ["publish", "--dry-run", tarball], {
      cwd: dir,
      env: userEnv(),
      encoding: "utf8",
      timeout: 300000,
    });
    expect(r.status, `${r.stdout}\n${r.stderr}`).to.equal(0);
    expect(r.stdout + r.stderr).to.contain(`+ ${PKG.name}@${PKG.version}`);
  });

  it("npm refuses @pulumi/pulumi 3.51.1 beside it (below the peer range: its dynamic resources have no type tokens of their own, so other URNs)", () => {
    const dir = path.join(tmp, "too-old");
    fs.mkdirSync(dir);
    npm(["init", "-y"], dir);
    const r = spawnSync("npm", ["install", "@pulumi/pulumi@3.51.1", tarball], {
      cwd: dir,
      env: userEnv(),
      encoding: "utf8",
      timeout: 600000,
    });
    expect(r.status, `${r.stdout}\n${r.stderr}`).to.not.equal(0);
    expect(r.stderr)
      .to.contain("ERESOLVE")
      .and.to.contain(`peer @pulumi/pulumi@"^${OLDEST_PULUMI}" from ${PKG.name}@${PKG.version}`);
  });

  describe("on the host lab (libvirt 9.0), a template domain for the fleets", () => {
    let lab: Lab;
    let v: VirshBackend;
    const prefix = `${RUN_PREFIX}-pkg-`;
    const template = `${prefix}tmpl`;
    let image: string;
    let checksum: string;
    let templateXml: string;

    before(async () => {
      lab = await requireLab("host");
      v = new VirshBackend(lab.uri);
      image = path.join(lab.imageDir, `${template}.qcow2`);
      execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", image, "64M"]);
      checksum = sha256File(image);
      await v.define(`<domain type='qemu'><name>${template}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
        <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${image}'/><target dev='vda' bus='virtio'/></disk>
        <interface type='user'><mac address='52:54:00:00:cc:01'/><model type='virtio'/></interface><serial type='pty'/></devices></domain>`);
      templateXml = await v.dumpxmlInactive(template);
    });
    after(async () => {
      if (!lab) return;
      await removeDomains(lab.uri, prefix);
      for (const f of fs.readdirSync(lab.imageDir)) if (f.startsWith(prefix)) fs.rmSync(path.join(lab.imageDir, f));
    });

    const cases: { lang: ProgramLanguage; pulumi: string }[] = [
      { lang: "ts", pulumi: OLDEST_PULUMI },
      { lang: "js", pulumi: OLDEST_PULUMI },
      { lang: "ts", pulumi: NEWEST_PULUMI },
      { lang: "js", pulumi: NEWEST_PULUMI },
    ];
    for (const c of cases) {
      const label = `${c.lang}-${c.pulumi.replace(/\./g, "_")}`;
      describe(`a ${c.lang === "ts" ? "TypeScript" : "JavaScript"} program with @pulumi/pulumi ${c.pulumi} — one stack, its cases run in the order written (the README's steps in turn)`, () => {
        const stack = `${prefix}${label}`;
        let s: PulumiStack;
        let steps: ReadmeStep[];
        let next = 0;
        /** The README line of a step that failed: the steps after it are not run. */
        let failedAt: number | undefined;
        const used = new Set<string>();

        /** The README's words with this run's values: each rule must apply somewhere. */
        function adapt(words: readonly string[]): string[] {
          const w = [...words];
          const at = (i: number, rule: string, value: string) => {
            w[i] = value;
            used.add(rule);
          };
          if (w[0] === "npm" && w[1] === "install") {
            w.forEach((x, i) => {
              if (x === PKG.name) at(i, "tarball", tarball);
              else if (/^@pulumi\/pulumi@/.test(x)) at(i, "pulumi version", `@pulumi/pulumi@${c.pulumi}`);
            });
          }
          if (w.slice(0, 3).join(" ") === "pulumi stack init" && w.length === 4) at(3, "stack", stack);
          if (w.slice(0, 4).join(" ") === "pulumi config set libvirt:uri" && w.length === 5) at(4, "uri", lab.uri);
          if (w.slice(0, 4).join(" ") === "pulumi config set template" && w.length === 5) at(4, "template", template);
          return w;
        }

        /** Runs the README's steps up to and including the first one `until` matches. */
        function runUntil(what: string, until: (st: ReadmeStep) => boolean): void {
          const end = steps.findIndex((st, i) => i >= next && until(st));
          if (failedAt !== undefined) throw new Error(`not run: README.md line ${failedAt} failed before "${what}"`);
          if (end < 0)
            throw new Error(`README.md's user section has no step "${what}" after line ${steps[next - 1]?.line ?? 0}`);
          for (; next <= end; next++) {
            const st = steps[next]!;
            failedAt = st.line;
            if (st.kind === "file") fs.writeFileSync(path.join(s.dir, st.name), st.content);
            else {
              const words = adapt(st.words);
              if (words[0] === "npm") npm(words.slice(1), s.dir);
              else if (words[0] === "pulumi") {
                const r = s.runAsWritten(words.slice(1));
                if (r.code !== 0)
                  throw new Error(
                    `README.md line ${st.line}: ${words.join(" ")} exited ${r.code}\n${r.stdout}\n${r.stderr}`,
                  );
              } else
                throw new Error(
                  `README.md line ${st.line}: "${words[0]}" is neither npm nor pulumi; the test runs only those`,
                );
            }
            failedAt = undefined;
          }
        }
        const isCommand = (prefixWords: string) => (st: ReadmeStep) =>
          st.kind === "command" && st.words.join(" ").startsWith(prefixWords);

        before(() => {
          steps = installSteps(c.lang);
          s = new PulumiStack(null, label, stack, { workRoot: tmp, baseEnv: userEnv(), typeCheck: true });
        });

        it(`npm install as the README says: one @pulumi/pulumi (${c.pulumi}, the project's), the package from the tarball`, () => {
          const lastBeforePulumi = steps.findIndex((st) => st.kind === "command" && st.words[0] === "pulumi") - 1;
          runUntil("npm install ... before the first pulumi command", (st) => steps.indexOf(st) === lastBeforePulumi);
          expect(pulumiCopies(s.dir)).to.deep.equal([`node_modules/@pulumi/pulumi@${c.pulumi}`]);
          const installed = path.join(s.dir, "node_modules", PKG.name);
          expect(fs.lstatSync(installed).isSymbolicLink(), "installed, not linked").to.equal(false);
          expect(JSON.parse(fs.readFileSync(path.join(installed, "package.json"), "utf8")).version).to.equal(
            PKG.version,
          );
          expect(require.resolve(PKG.name, { paths: [s.dir] })).to.equal(
            path.join(installed, "dist", "sdk", "index.js"),
          );
          expect(fs.existsSync(path.join(s.dir, c.lang === "ts" ? "index.ts" : "index.js"))).to.equal(true);
        });

        it("pulumi up: the Domain and both fleet members run, and QMP reports each guest's hwuuid", async () => {
          runUntil("pulumi up", isCommand("pulumi up"));
          const out = s.outputs();
          expect(await v.queryGuestUuid(`${stack}-web`))
            .to.equal(WEB_HWUUID)
            .and.to.equal(out.webGuestUuid);
          expect(await v.domuuid(`${stack}-web`))
            .to.equal(out.webUuid)
            .and.to.not.equal(WEB_HWUUID);
          const members = Object.keys(out.appHwuuids).sort();
          expect(members).to.deep.equal([`${stack}-app-1`, `${stack}-app-2`]);
          for (const m of members) expect(await v.queryGuestUuid(m), m).to.equal(out.appHwuuids[m]);
          expect(new Set(Object.values(out.appHwuuids)).size).to.equal(2);
        });

        it("pulumi preview --expect-no-changes passes", () => {
          runUntil("pulumi preview --expect-no-changes", isCommand("pulumi preview --expect-no-changes"));
        });

        it("pulumi destroy leaves no domain and no image of the stack; the template is unchanged; every README step ran", async () => {
          runUntil("pulumi destroy", isCommand("pulumi destroy"));
          expect(next, "README steps after destroy that the test did not run").to.equal(steps.length);
          expect(await domainsWithPrefix(lab.uri, `${stack}-`)).to.deep.equal([]);
          expect(fs.readdirSync(lab.imageDir).filter((f) => f.startsWith(`${stack}-`))).to.deep.equal([]);
          expect(await v.dumpxmlInactive(template)).to.equal(templateXml);
          expect(sha256File(image)).to.equal(checksum);
          expect([...used].sort(), "substitutions that found nothing to replace in the README").to.deep.equal([
            "pulumi version",
            "stack",
            "tarball",
            "template",
            "uri",
          ]);
        });
      });
    }
  });
});
