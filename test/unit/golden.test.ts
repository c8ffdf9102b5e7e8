/**
 * Golden tests in the libvirt style (tests/qemuxmlconftest.c): every `test/data/NAME.xml` is
 * run through parse -> identity -> format -> QEMU argv and compared with its expected files.
 * `REGENERATE_OUTPUT=1 npm run test:unit` rewrites the expected files (review the diff line by
 * line). The last test fails on any data file that no case used.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import { GOLDEN_DIR } from "../support/paths";
import { computeGolden, goldenCases, OUTPUT_SUFFIXES, readCase } from "../support/golden";

const regenerate = process.env.REGENERATE_OUTPUT === "1";
const used = new Set<string>();

describe("golden cases (test/data)", () => {
  for (const name of goldenCases()) {
    it(name, () => {
      used.add(`${name}.xml`);
      const got = computeGolden(readCase(name));
      for (const suffix of OUTPUT_SUFFIXES) {
        const file = path.join(GOLDEN_DIR, name + suffix);
        const produced = got[suffix];
        if (regenerate) {
          if (produced === undefined) fs.rmSync(file, { force: true });
          else fs.writeFileSync(file, produced);
        }
        if (produced === undefined) {
          expect(fs.existsSync(file), `${name + suffix} exists but the case no longer produces it`).to.equal(false);
          continue;
        }
        used.add(name + suffix);
        expect(fs.existsSync(file), `${name + suffix} is missing (REGENERATE_OUTPUT=1 writes it)`).to.equal(true);
        expect(produced, name + suffix).to.equal(fs.readFileSync(file, "utf8"));
      }
    });
  }

  it("has no unused data files", () => {
    // Subfolders (previews/) are suites of their own, with their own unused-file check.
    const files = fs
      .readdirSync(GOLDEN_DIR, { withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => e.name);
    const unused = files.filter((f) => !used.has(f));
    expect(unused, "data files no case used").to.deep.equal([]);
  });
});
