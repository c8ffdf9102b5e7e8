/**
 * The bad inputs of test/lab/bad-inputs.test.ts against the pure layers alone (no libvirt, no
 * lab): `validateInputs`, then `composeDomain` as `check` runs them. Each case must be refused
 * here already, naming the property first and giving the fix; the lab test keeps checking that
 * the provider's `check` against a real libvirt says the same. The only cases these layers cannot
 * see are the ones a daemon answers (listed below with the reason): for them the test asserts
 * the pure layers let them through, so the list stays exact.
 */
import { expect } from "chai";
import { composeDomain, ComposeError } from "../../provider/desired/compose";
import { DomainInputs, InputFailure, validateInputs } from "../../provider/desired/inputs";
import { domainBadInputs } from "../support/bad-inputs";

/** Cases only a running daemon can refuse, with the reason. */
const NEEDS_A_DAEMON: Record<string, string> = {
  "unreachable daemon": "the URI is well formed; only the capability probe finds no daemon behind it",
};

/** `check` without the probe: validation, then composition in the mode the inputs ask for. */
function pureCheck(inputs: Record<string, unknown>): InputFailure[] {
  const typed = inputs as unknown as DomainInputs;
  const failures = validateInputs(typed);
  if (failures.length) return failures;
  try {
    composeDomain(typed, typed.hwuuidMode === "passthrough" ? "passthrough" : "native", typed.adopt === true);
  } catch (e) {
    if (e instanceof ComposeError) return e.failures;
    throw e;
  }
  return [];
}

describe("bad inputs refused by the pure layers (validateInputs, composeDomain), without a lab", () => {
  const cases = domainBadInputs("unit-b-");

  it("every case the pure layers let through is listed, with the reason, as needing a daemon", () => {
    const titles = cases.map(([t]) => t);
    expect(
      Object.keys(NEEDS_A_DAEMON).filter((t) => !titles.includes(t)),
      "listed but not in the table",
    ).to.deep.equal([]);
  });

  for (const [title, extra, property, fix] of cases) {
    const daemon = NEEDS_A_DAEMON[title];
    if (daemon !== undefined) {
      it(`${title}: passes the pure layers (${daemon})`, () => {
        expect(pureCheck({ connection: { uri: "qemu:///system" }, ...extra })).to.deep.equal([]);
      });
      continue;
    }
    it(title, () => {
      const failures = pureCheck({ connection: { uri: "qemu:///system" }, ...extra });
      expect(
        failures.map((f) => f.property),
        title,
      ).to.include(property);
      const f = failures.find((x) => x.property === property)!;
      expect(f.reason, title).to.match(/fix: /).and.match(fix);
      expect(f.reason.startsWith(`${property}: `), "names the property first").to.equal(true);
    });
  }
});
