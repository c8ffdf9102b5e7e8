/**
 * Helpers of the QEMU command line unit tests (test/unit/argv*.test.ts): the argv of a definition,
 * the values of one option, and the refusal a definition gets.
 */
import { buildQemuArgv } from "../../provider/qemu/argv";
import type { DomainDef } from "../../provider/xml/domain";
import { DomainXmlError } from "../../provider/xml/errors";

/** The QEMU command line the builder makes for `d`. */
export const argv = (d: DomainDef): string[] => buildQemuArgv(d).argv;

/** Every value given to `opt` in `a` (the word after each `opt`), in order. */
export const values = (a: readonly string[], opt: string): string[] =>
  a.flatMap((x, i) => (x === opt && i + 1 < a.length ? [a[i + 1]!] : []));

/** The `-device` JSON values of `d`'s command line, parsed. */
export const devices = (d: DomainDef): Record<string, unknown>[] =>
  values(argv(d), "-device").map((v) => JSON.parse(v) as Record<string, unknown>);

/** The DomainXmlError the builder refuses `d` with, or `"accepted"` when it builds it. */
export function refusalOrAccepted(d: DomainDef): DomainXmlError | "accepted" {
  try {
    buildQemuArgv(d);
  } catch (e) {
    if (DomainXmlError.isInstance(e)) return e;
    throw e;
  }
  return "accepted";
}

/** The DomainXmlError the builder refuses `d` with; throws `accepted` when it builds it. */
export function refusal(d: DomainDef): DomainXmlError {
  const r = refusalOrAccepted(d);
  if (r === "accepted") throw new Error("accepted");
  return r;
}
