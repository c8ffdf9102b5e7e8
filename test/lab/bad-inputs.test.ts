/**
 * Bad inputs to the Domain resource: each fails with a message that names the property and the
 * fix, and leaves no domain and no file behind (counted before and after).
 */
import { expect } from "chai";
import * as impl from "../../provider/dynamic/impl";
import { domainsWithPrefix, listFiles, RUN_PREFIX, checkAndCreate, removeDomains } from "../support/domains";
import { domainBadInputs } from "../support/bad-inputs";
import { Lab, requireLab } from "../support/lab";

const prefix = `${RUN_PREFIX}-b-`;
const CASES = domainBadInputs(prefix);

describe("bad inputs fail at check, naming the property and the fix, leaving nothing behind", function () {
  let lab: Lab;
  let domainsBefore: string[];
  let filesBefore: string[];
  before(async () => {
    lab = await requireLab("new");
    domainsBefore = await domainsWithPrefix(lab.uri, prefix);
    filesBefore = listFiles(lab.imageDir);
  });
  after(async () => removeDomains(lab.uri, prefix));

  it("each case sets the input it expects to be named, and no two cases give the same inputs", () => {
    expect(
      CASES.filter(([, extra, property]) => !(property.split(/[.[]/)[0]! in extra)).map(([t]) => t),
      "cases whose inputs do not hold the property they expect to be named",
    ).to.deep.equal([]);
    const seen = new Map<string, string>();
    for (const [title, extra] of CASES) {
      const key = JSON.stringify(extra);
      expect(seen.get(key), `${title}: the same inputs as another case`).to.equal(undefined);
      seen.set(key, title);
    }
  });

  for (const [title, extra, property, fix] of CASES) {
    it(title, async () => {
      const c = await impl.check({}, { connection: { uri: lab.uri }, ...extra });
      expect(
        c.failures.map((f) => f.property),
        title,
      ).to.include(property);
      const f = c.failures.find((x) => x.property === property)!;
      expect(f.reason, title).to.match(/fix: /).and.match(fix);
      expect(f.reason.startsWith(`${property}: `), "names the property first").to.equal(true);
    });
  }

  it("a duplicate name fails at create with the fix, and leaves the existing domain alone", async () => {
    const a = await checkAndCreate({ name: `${prefix}dup`, running: false, connection: { uri: lab.uri } });
    const c = await impl.check({}, { name: `${prefix}dup`, running: false, connection: { uri: lab.uri } });
    let err: Error | undefined;
    await impl.create(c.inputs).catch((e: Error) => (err = e));
    expect(err?.message).to.contain("already exists").and.contain("adopt: true");
    expect((await impl.read(a.id, a.outs)).id).to.equal(a.id);
    await impl.remove(a.id, a.outs);
  });

  it("adopting a domain that does not exist fails at create with the fix", async () => {
    const c = await impl.check({}, { name: `${prefix}ghost`, adopt: true, connection: { uri: lab.uri } });
    let err: Error | undefined;
    await impl.create(c.inputs).catch((e: Error) => (err = e));
    expect(err?.message)
      .to.match(/^adopt: no domain named/)
      .and.contain("fix:");
  });

  it("left no domain and no file behind", async () => {
    expect(await domainsWithPrefix(lab.uri, prefix)).to.deep.equal(domainsBefore);
    expect(listFiles(lab.imageDir)).to.deep.equal(filesBefore);
  });
});
