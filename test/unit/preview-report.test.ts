/**
 * The CI preview report on previews recorded from the end-to-end runs
 * (`test/data/previews/NAME.json` -> `NAME.md`; `npm run build && RECORD_PREVIEWS=1 npx mocha --config test/.mocharc.e2e.json`
 * records them anew, `REGENERATE_OUTPUT=1` rewrites the expected reports).
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import { previewReport, readPreview } from "../../provider/report/preview";
import { main } from "../../provider/cli/main";
import { GOLDEN_DIR } from "../support/paths";

const DIR = path.join(GOLDEN_DIR, "previews");
const regenerate = process.env.REGENERATE_OUTPUT === "1";

describe("preview-report (recorded previews)", () => {
  const used = new Set<string>();
  const names = fs
    .readdirSync(DIR)
    .filter((f) => f.endsWith(".json"))
    .map((f) => f.slice(0, -5))
    .sort();

  it("has recorded previews of every action", () => {
    const actions = new Set(
      names.flatMap((n) =>
        readPreview(JSON.parse(fs.readFileSync(path.join(DIR, `${n}.json`), "utf8"))).map((p) => p.action),
      ),
    );
    expect([...actions].sort()).to.deep.equal(["create", "delete", "replace", "update"]);
  });

  for (const name of names) {
    it(name, () => {
      used.add(`${name}.json`).add(`${name}.md`);
      const got = previewReport(fs.readFileSync(path.join(DIR, `${name}.json`), "utf8"));
      const file = path.join(DIR, `${name}.md`);
      if (regenerate) fs.writeFileSync(file, got);
      expect(got).to.equal(fs.readFileSync(file, "utf8"));
    });
  }

  it("reads standard input and refuses what is not preview JSON", async () => {
    let out = "";
    let err = "";
    const io = (stdin: string) => ({
      out: (s: string) => (out += s),
      err: (s: string) => (err += s),
      stdin: () => stdin,
    });
    expect(await main(["preview-report"], io(fs.readFileSync(path.join(DIR, `${names[0]}.json`), "utf8")))).to.equal(0);
    expect(out).to.contain("## Libvirt domains in this preview");
    expect(await main(["preview-report"], io("not json"))).to.equal(2);
    expect(err).to.contain("not pulumi preview --json output");
  });

  it("has no unused data files", () => {
    expect(fs.readdirSync(DIR).filter((f) => !used.has(f))).to.deep.equal([]);
  });
});
