/**
 * The corpus test (issue 12): our XML layer, semantic diff and QEMU command line builder held
 * against libvirt's own test data, tests/qemuxmlconfdata of a pinned libvirt release
 * (scripts/corpus.sh fetches it once; without it this suite fails, it never skips).
 *
 * Five checks, each printing one count line:
 * - roundtrip: parse + format of every domain XML is lossless (test/corpus/canonical.ts says
 *   exactly what that means) and a fixed point;
 * - identity: name and uuid as libvirt reads them (libvirt's own output when it has one);
 * - diff: `diff NAME.xml NAME.x86_64-latest.xml` is no change;
 * - qemu-argv: for every input the builder accepts, `-uuid -name -m -smp -smbios -numa` equal
 *   libvirt's NAME.x86_64-latest.args (test/corpus/argv.ts defines the comparison);
 * - silent-drop: what an accepted input states that the builder neither expresses nor refuses.
 *
 * Known, genuine differences are listed, with the reason of each class, in
 * test/corpus/known-differences.txt and shown in the counts. An unlisted difference fails, and
 * so does a listed one that no longer differs (stale). `REGENERATE_OUTPUT=1` rewrites the list
 * from the results, keeping the reasons; a new class gets a TODO reason the suite refuses.
 */
import { expect } from "chai";
import * as path from "node:path";
import { REPO_ROOT } from "../support/paths";
import { COMPARED_OPTIONS, LIBVIRT_ONLY } from "./argv";
import { Corpus, loadCorpus } from "./cases";
import {
  CheckResult,
  checkDiff,
  checkIdentity,
  checkQemuArgv,
  checkRoundTrip,
  checkSilentDrops,
  checkWholeArgv,
  ArgvRun,
} from "./checks";
import { KnownDifferences, knownClass, readKnown, reconcile, writeKnown } from "./known";

const KNOWN_FILE = path.join(REPO_ROOT, "test", "corpus", "known-differences.txt");
const regenerate = process.env.REGENERATE_OUTPUT === "1";

const HEADER = `# Known differences of the corpus test (test/corpus/corpus.test.ts) over libvirt's
# tests/qemuxmlconfdata. Written by REGENERATE_OUTPUT=1 from the results; the class lines (the
# reasons) are kept by hand. See test/corpus/known.ts for the format and test/corpus/ANALYSIS.md
# for the classes, their causes in libvirt and the planned fixes.`;

describe("libvirt corpus (tests/qemuxmlconfdata)", function () {
  let corpus: Corpus;
  let known: KnownDifferences;
  let argvRun: ArgvRun | undefined;
  /** The qemu-argv run, made once and shared by the two checks that read it (either may run alone, e.g. with --grep). */
  const qemuArgv = (): ArgvRun => (argvRun ??= checkQemuArgv(corpus));
  const results: CheckResult[] = [];
  const countLines: string[] = [];
  const started = Date.now();

  before(function () {
    this.timeout(20 * 60_000);
    corpus = loadCorpus();
    known = readKnown(KNOWN_FILE);
  });

  after(function () {
    if (countLines.length === 0) return;
    console.log(
      `\n  corpus: libvirt ${corpus?.version} tests/qemuxmlconfdata (${corpus?.cases.length} inputs), ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    for (const l of countLines) console.log("  " + l);
  });

  /** Prints the count line, records the result, and fails on unlisted, stale or unexplained entries. */
  function hold(result: CheckResult, line: (differ: number, listed: number) => string): void {
    results.push(result);
    const r = reconcile(result, known);
    const differ = result.findings.size;
    const classes = [...r.perClass.entries()]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(
        ([c, n]) =>
          `${c} ${n}${knownClass(known, result.check, c) ? ` (${knownClass(known, result.check, c)!.kind})` : ""}`,
      )
      .join(", ");
    const text = line(differ, r.listed) + (classes ? `\n    classes: ${classes}` : "");
    countLines.push(text);
    console.log("      " + text.replace(/\n/g, "\n      "));
    if (regenerate) return;
    const detail = (k: string) => {
      const [, key, cls] = k.split("\t");
      const f = key === undefined ? undefined : result.findings.get(key)?.find((x) => x.cls === cls);
      return `${k.replace(/\t/g, " ")}${f ? `: ${f.detail.replace(/\s*\n\s*/g, " ").slice(0, 300)}` : ""}`;
    };
    const problems = [
      ...r.unexplained.map((c) => `class without a reason: ${result.check} ${c}`),
      ...r.unlisted.map((k) => `not listed (fix it, or list it with REGENERATE_OUTPUT=1 and a reason): ${detail(k)}`),
      ...r.stale.map((k) => `listed but no longer differs (remove it: REGENERATE_OUTPUT=1): ${detail(k)}`),
    ];
    expect(problems, `${result.check} against ${KNOWN_FILE}`).to.deep.equal([]);
  }

  it("was fetched from the pinned release the known differences were made for", function () {
    expect(corpus.cases.length, "inputs in tests/qemuxmlconfdata").to.be.greaterThan(0);
    if (!regenerate) {
      expect(known.version, `the corpus line of ${KNOWN_FILE}`).to.equal(`libvirt ${corpus.version}`);
    }
  });

  it("roundtrip: parse + format is lossless for every domain XML", function () {
    const r = checkRoundTrip(corpus);
    hold(
      r,
      (d, l) =>
        `corpus roundtrip: ${r.population - d} lossless, ${d} differ (${l} listed as known), ${r.population} files`,
    );
  });

  it("identity: name and uuid as libvirt reads them, for every domain XML", function () {
    const r = checkIdentity(corpus);
    hold(
      r,
      (d, l) =>
        `corpus identity: ${r.population - d} same, ${d} differ (${l} listed as known), ${r.population} documents of ${corpus.xmlFiles.length} files` +
        ` (same includes ${r.extra["refused as libvirt refuses"]} refused as libvirt refuses; ${r.extra["without uuid (libvirt generates one)"]} without uuid, libvirt generates one)`,
    );
  });

  it("diff: NAME.xml against libvirt's NAME.x86_64-latest.xml is no change", function () {
    const r = checkDiff(corpus);
    hold(
      r,
      (d, l) => `corpus diff: ${r.population - d} same, ${d} differ (${l} listed as known), ${r.population} pairs`,
    );
  });

  it(`qemu-argv: ${COMPARED_OPTIONS.join(" ")} equal libvirt's NAME.x86_64-latest.args for every accepted input`, function () {
    const r = qemuArgv();
    const x = r.extra;
    hold(
      r,
      (d, l) =>
        `corpus qemu-argv: ${r.population - d} same, ${d} differ (${l} listed as known), ${r.population} accepted of ${x["libvirt command lines"]} libvirt command lines` +
        ` (${x.refused} refused); compared: ${COMPARED_OPTIONS.join(" ")}; libvirt refuses ${x["libvirt refuses (.err)"]} inputs, the builder accepts ${x["of which the builder accepts"]} of them`,
    );
  });

  it("whole-argv: the whole command line of every accepted input equals libvirt's, its own plumbing removed (test/corpus/argv.ts LIBVIRT_ONLY)", function () {
    const r = checkWholeArgv(qemuArgv());
    hold(
      r,
      (d, l) =>
        `corpus whole-argv: ${r.population - d} agree, ${d} differ (${l} listed as known), ${r.population} accepted cases; libvirt-only arguments removed: ${LIBVIRT_ONLY.map((x) => x.name).join(", ")}`,
    );
  });

  it("silent-drop: what accepted inputs state that the builder neither expresses nor refuses", function () {
    const r = checkSilentDrops(qemuArgv());
    hold(
      r,
      (d, l) =>
        `corpus silent drops: ${d} paths dropped (${l} listed as known gaps), in ${r.extra["accepted cases with a drop"]} of ${r.population} accepted cases (${r.extra["cases per path"]} case-path pairs)`,
    );
  });

  it("known-differences.txt has a reason for every class and no class it does not use", function () {
    if (regenerate) {
      writeKnown(KNOWN_FILE, corpus.version, results, known, HEADER);
      known = readKnown(KNOWN_FILE);
      console.log(`      wrote ${KNOWN_FILE}`);
    }
    const todo = [...known.classes.values()].filter((c) => /^TODO/.test(c.reason)).map((c) => `${c.check} ${c.cls}`);
    expect(todo, `classes whose reason is still TODO in ${KNOWN_FILE}`).to.deep.equal([]);
    if (results.length < 5) return; // a --grep run: not every check ran
    const used = new Set(results.flatMap((r) => [...r.findings.values()].flat().map((f) => `${r.check} ${f.cls}`)));
    const unused = [...known.classes.values()].map((c) => `${c.check} ${c.cls}`).filter((k) => !used.has(k));
    expect(unused, `class lines in ${KNOWN_FILE} no difference uses (remove them)`).to.deep.equal([]);
  });
});
