/**
 * libvirt's QEMU test data (tests/qemuxmlconfdata, fetched by scripts/corpus.sh) as cases.
 *
 * Selection rule. libvirt's harness (tests/qemuxmlconftest.c) names its files
 * `NAME.xml` (the input, what a user would define) and, per input, outputs
 * `NAME.ARCH-VERSION[+VARIANT][.abi-update].{xml,args,err}`: ARCH is x86_64, aarch64, ppc64,
 * s390x, riscv64, loongarch64, armv7l, ppc...; VERSION is `latest` (the newest QEMU capabilities
 * libvirt records) or a QEMU version such as `8.0.0`; `+VARIANT` (e.g. `+amdsev`) a variant of
 * those capabilities; `.abi-update` the same input defined with the ABI-update flag. `.xml` is
 * libvirt's inactive XML after define (post-parse defaults, addresses), `.args` its QEMU
 * command line, `.err` its error.
 * - Inputs: every `.xml` whose name does not end in such an output suffix. Names may hold
 *   dots themselves (`x86_64-default-cpu-tcg-pc-4.2.xml`), hence the suffix test, not a split.
 * - Outputs used: `NAME.x86_64-latest.xml`, `.args`, `.err` only: the arch and QEMU of the
 *   project's labs (x86_64, the newest QEMU). Other arches, older QEMUs, variants and ABI-update
 *   outputs are other experiments on the same input and are not compared.
 * - Round trip and identity run over every domain XML in the directory, inputs and outputs.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "../support/paths";

/** A libvirt output file name: `.ARCH-VERSION[+VARIANT][.abi-update].{xml,args,err}`. */
export const OUTPUT_SUFFIX = /\.([a-z0-9_]+)-(latest|\d+\.\d+\.\d+)(\+[A-Za-z0-9_-]+)?(\.abi-update)?\.(xml|args|err)$/;

/** The outputs compared: x86_64 with the newest QEMU capabilities libvirt records. */
export const COMPARED_OUTPUT = "x86_64-latest";

/** One input and the outputs of it we compare. */
export interface CorpusCase {
  /** `NAME` of `NAME.xml`. */
  name: string;
  /** Path of `NAME.xml`. */
  input: string;
  /** Path of `NAME.x86_64-latest.xml`, when libvirt defined it. */
  outputXml?: string;
  /** Path of `NAME.x86_64-latest.args`, when libvirt built a command line. */
  args?: string;
  /** Path of `NAME.x86_64-latest.err`, when libvirt refused it. */
  err?: string;
}

/** The corpus: its directory, libvirt version, the cases and every XML file. */
export interface Corpus {
  dir: string;
  version: string;
  cases: CorpusCase[];
  /** Every `.xml` file (inputs and outputs of every arch), sorted. */
  xmlFiles: string[];
}

/**
 * Runs scripts/corpus.sh (which fetches the corpus once into the cache) and reads the
 * directory. Throws, with the script's own reason, when the corpus cannot be had.
 */
export function loadCorpus(): Corpus {
  const script = path.join(REPO_ROOT, "scripts", "corpus.sh");
  let dir: string;
  let version: string;
  try {
    dir = execFileSync("bash", [script], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 15 * 60_000,
    }).trim();
    version = execFileSync("bash", [script, "version"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(
      `the corpus (libvirt's tests/qemuxmlconfdata) cannot be had: scripts/corpus.sh failed:\n${err.stderr || err.message}`,
      { cause: e },
    );
  }
  const files = fs.readdirSync(dir).sort();
  const have = new Set(files);
  const cases: CorpusCase[] = [];
  for (const f of files) {
    if (!f.endsWith(".xml") || OUTPUT_SUFFIX.test(f)) continue;
    const name = f.slice(0, -".xml".length);
    const out = (ext: string) =>
      have.has(`${name}.${COMPARED_OUTPUT}.${ext}`) ? path.join(dir, `${name}.${COMPARED_OUTPUT}.${ext}`) : undefined;
    cases.push({ name, input: path.join(dir, f), outputXml: out("xml"), args: out("args"), err: out("err") });
  }
  return { dir, version, cases, xmlFiles: files.filter((f) => f.endsWith(".xml")).map((f) => path.join(dir, f)) };
}
