/** libvirt's UUID rules (virUUIDParse, virUUIDIsValid, virUUIDFormat), one test per rule. */
import { expect } from "chai";
import {
  formatUuid,
  isValidUuid,
  matchesUuidSchema,
  normalizeUuid,
  parseUuid,
  randomUuid,
  uuidV5,
  NAMESPACE_URL,
} from "../../provider/xml/uuid";

const H = "5d5b0f1d-128b-4517-8e65-b258a8734c1d";

describe("uuid: parse as virUUIDParse", () => {
  const ok: [string, string][] = [
    ["dashed lowercase", H],
    ["uppercase", H.toUpperCase()],
    ["no dashes", H.replace(/-/g, "")],
    ["leading whitespace skipped", " \t\n" + H],
    ["trailing whitespace allowed", H + " \n\r\t"],
    ["spaces between pairs", "5d 5b 0f 1d 12 8b 45 17 8e 65 b2 58 a8 73 4c 1d"],
    ["any number of dashes between pairs", "5d--5b-0f-1d128b4517-8e65-b258a8734c1d"],
    ["dash before the first pair", "-" + H],
  ];
  for (const [what, text] of ok) it(`accepts ${what}`, () => expect(normalizeUuid(text)).to.equal(H));

  const bad: [string, string][] = [
    ["31 hex digits", H.slice(0, -1)],
    ["33 hex digits", H + "0"],
    ["braces", `{${H}}`],
    ["urn:uuid: prefix", `urn:uuid:${H}`],
    ["a tab inside", H.replace("-", "\t")],
    ["a dash inside a pair", "5d5b0f1-d128b-4517-8e65-b258a8734c1d"],
    ["non-hex", H.replace("d", "g")],
    ["trailing garbage after whitespace", H + " x"],
    ["vertical tab (not g_ascii_isspace)", "\v" + H],
    ["empty", ""],
  ];
  for (const [what, text] of bad) it(`rejects ${what}`, () => expect(parseUuid(text)).to.equal(undefined));
});

describe("uuid: valid and format", () => {
  it("all 16 bytes equal is not valid", () => {
    for (const b of ["00", "ff", "11", "ab"]) expect(isValidUuid(parseUuid(b.repeat(16))!)).to.equal(false);
  });
  it("any differing byte is valid", () => expect(isValidUuid(parseUuid("00".repeat(15) + "01")!)).to.equal(true));
  it("formats lowercase dashed 8-4-4-4-12", () =>
    expect(formatUuid(parseUuid(H.toUpperCase().replace(/-/g, ""))!)).to.equal(H));
  it("schema: 32 hex digits or dashed 8-4-4-4-12 only", () => {
    expect(matchesUuidSchema(H)).to.equal(true);
    expect(matchesUuidSchema(H.replace(/-/g, ""))).to.equal(true);
    expect(matchesUuidSchema(` ${H}`)).to.equal(false);
    expect(matchesUuidSchema("5d5b0f1d128b-4517-8e65-b258a8734c1d")).to.equal(false);
  });
});

describe("uuid: generation", () => {
  it("random v4 is valid, versioned and distinct", () => {
    const a = randomUuid();
    const b = randomUuid();
    expect(a).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a).to.not.equal(b);
  });
  it("v5 matches Python uuid.uuid5 (URL and DNS namespaces)", () => {
    expect(uuidV5(NAMESPACE_URL, "https://example.org/")).to.equal("527dda32-a0de-5105-a042-cb475b5f7d11");
    expect(uuidV5("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "python.org")).to.equal(
      "886313e1-3b8a-5372-9b90-0c9aee199e5d",
    );
  });
  it("v5 is deterministic and name-sensitive", () => {
    expect(uuidV5(H, "web-1")).to.equal(uuidV5(H, "web-1"));
    expect(uuidV5(H, "web-1")).to.not.equal(uuidV5(H, "web-2"));
  });
});
