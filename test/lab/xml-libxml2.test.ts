/**
 * The XML layer beside libxml2 (what libvirt parses with): names are kept as written, every
 * character XML 1.0 allows is accepted, and what libxml2 refuses is refused here too, so a bad
 * document fails at preview instead of at define. `xmllint --noout` (libxml2-utils, installed by
 * `scripts/lab.sh`) is the oracle: a case passes when we and xmllint agree. In the lab suite because
 * it runs that tool (the unit suite needs npm packages only).
 */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DomainDef } from "../../provider/xml/domain";
import { DomainXmlError } from "../../provider/xml/errors";
import { formatXml, parseXml } from "../../provider/xml/tree";

/** [title, document]: each is given to xmllint and to parseXml. */
const CASES: [string, string][] = [
  // Names are names: libxml2 takes any XML name, whatever it means in JavaScript.
  ["element named __proto__", "<domain><__proto__/></domain>"],
  ["element named constructor", "<domain><constructor a='1'>x</constructor></domain>"],
  ["element named prototype", "<domain><prototype/></domain>"],
  [
    "attributes named __proto__, constructor, prototype",
    "<domain><a __proto__='1' constructor='2' prototype='3'/></domain>",
  ],
  [
    "elements and attributes named toString, valueOf, hasOwnProperty",
    "<domain><toString valueOf='1' hasOwnProperty='2'/><valueOf/><hasOwnProperty/></domain>",
  ],
  [
    "elements named __defineGetter__, __lookupSetter__",
    "<domain><__defineGetter__/><__lookupSetter__ __defineSetter__='1'/></domain>",
  ],
  // Characters XML 1.0 allows.
  ["U+FFFD as a character", "<domain><description>a\ufffdb</description></domain>"],
  ["U+FFFD as a character reference", "<domain><description>a&#xFFFD;b</description></domain>"],
  ["U+FFFD in an attribute", "<domain><a b='\ufffd'/></domain>"],
  ["tab, newline, carriage return as references", "<domain><a b='&#9;&#10;&#13;'>&#9;&#xA;&#xD;</a></domain>"],
  ["U+007F and U+0085", "<domain><a>\u007f\u0085&#x7F;&#x85;</a></domain>"],
  ["the last code point, U+10FFFF", "<domain><a>&#x10FFFF;</a></domain>"],
  ["an astral character", "<domain><a>\u{1F600}</a></domain>"],
  ["'>' in an attribute value", "<domain><a b='x>y'/></domain>"],
  ["']]>' in an attribute value", "<domain><a b=']]>'/></domain>"],
  ["a ']]' without '>' in text", "<domain><a>x]]y</a></domain>"],
  ["an empty comment", "<domain><!----></domain>"],
  ["a comment with single hyphens", "<domain><!-- a - b -c- --></domain>"],
  ["an XML declaration at the start", "<?xml version='1.0' encoding='UTF-8' standalone='yes'?><domain/>"],
  ["a processing instruction", "<domain><?app data?></domain>"],
  ["a BOM", "\ufeff<domain/>"],
  // What libxml2 refuses.
  ["character reference &#1;", "<domain><description>a&#1;b</description></domain>"],
  ["character reference &#x8; in an attribute", "<domain><a b='&#x8;'/></domain>"],
  ["character reference &#11;", "<domain><a>&#11;</a></domain>"],
  ["character reference &#x1F;", "<domain><a>&#x1F;</a></domain>"],
  ["character reference to a surrogate, &#xD800;", "<domain><a>&#xD800;</a></domain>"],
  ["character reference &#xDFFF;", "<domain><a>&#xDFFF;</a></domain>"],
  ["character reference &#xFFFE;", "<domain><a>&#xFFFE;</a></domain>"],
  ["character reference &#xFFFF;", "<domain><a>&#xFFFF;</a></domain>"],
  ["character reference &#0;", "<domain><a>&#0;</a></domain>"],
  ["character reference past U+10FFFF", "<domain><a>&#x110000;</a></domain>"],
  ["-- inside a comment", "<domain><!-- a -- b --></domain>"],
  ["a comment ending in --->", "<domain><!-- a ---></domain>"],
  ["-- inside a comment before the root", "<!-- a -- b --><domain/>"],
  ["-- inside a comment after the root", "<domain/><!-- a -- b -->"],
  ["]]> in text", "<domain><description>a]]>b</description></domain>"],
  ["]]> alone in text", "<domain><a>]]></a></domain>"],
  ["raw < in an attribute value", "<domain><a b='x<y'/></domain>"],
  ["an XML declaration after the root", "<domain/><?xml version='1.0'?>"],
  ["an XML declaration inside the root", "<domain><?xml version='1.0'?></domain>"],
  ["a processing instruction named XML", "<domain><?XML x?></domain>"],
  ["a processing instruction without a target", "<domain><? x?></domain>"],
  ["an XML declaration without a version", "<?xml encoding='UTF-8'?><domain/>"],
  ["an XML declaration with standalone='maybe'", "<?xml version='1.0' standalone='maybe'?><domain/>"],
  ["an unknown encoding", "<?xml version='1.0' encoding='nope'?><domain/>"],
  ["text after a self-closed root", "<domain/>-"],
  ["a no-break space after the root", "<domain/>\u00a0"],
  ["a markup declaration inside the root", "<domain><!ELEMENT a ANY></domain>"],
  ["CDATA before the root", "<![CDATA[x]]><domain/>"],
  ["U+FFFE as a character", "<domain><a>\ufffe</a></domain>"],
  ["a control character", "<domain><a>\u0001</a></domain>"],
];

function xmllintAccepts(file: string): boolean {
  const r = spawnSync("xmllint", ["--noout", file], { encoding: "utf8" });
  if (r.error)
    throw new Error(
      `xmllint is needed (apt-get install libxml2-utils; scripts/lab.sh installs it): ${r.error.message}`,
    );
  // Exit 0: well formed (namespace warnings, which libvirt tolerates, keep the status 0).
  return r.status === 0;
}

function oursAccepts(text: string): boolean {
  try {
    parseXml(text);
    return true;
  } catch (e) {
    if (DomainXmlError.isInstance(e)) return false;
    throw new Error(`not a DomainXmlError: ${(e as Error).message}`, { cause: e });
  }
}

describe("xml tree beside libxml2 (xmllint --noout is the oracle)", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-xmllint-"));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  CASES.forEach(([title, text], n) => {
    it(title, () => {
      const file = path.join(dir, `case-${n}.xml`);
      fs.writeFileSync(file, text);
      const theirs = xmllintAccepts(file);
      expect(oursAccepts(text), `xmllint ${theirs ? "accepts" : "refuses"} ${JSON.stringify(text)}`).to.equal(theirs);
    });
  });

  it("the oracle itself: xmllint refuses &#1; and accepts U+FFFD", () => {
    fs.writeFileSync(path.join(dir, "a.xml"), "<a>&#1;</a>");
    fs.writeFileSync(path.join(dir, "b.xml"), "<a>\ufffd</a>");
    expect([xmllintAccepts(path.join(dir, "a.xml")), xmllintAccepts(path.join(dir, "b.xml"))]).to.deep.equal([
      false,
      true,
    ]);
  });
});

describe("xml tree: names and characters kept as written", () => {
  it("keeps toString, valueOf, hasOwnProperty, __proto__, constructor, prototype as written, in order", () => {
    const src =
      "<domain><metadata><toString valueOf='1' hasOwnProperty='2'/><__proto__ constructor='3'>t</__proto__><prototype prototype='4'/></metadata></domain>";
    const doc = parseXml(src);
    const md = doc.root.children[0];
    if (md?.kind !== "element") throw new Error("metadata");
    const els = md.children.filter((c) => c.kind === "element");
    expect(els.map((e) => e.kind === "element" && e.name)).to.deep.equal(["toString", "__proto__", "prototype"]);
    const again = formatXml(doc);
    expect(again)
      .to.contain("<toString valueOf='1' hasOwnProperty='2'/>")
      .and.contain("<__proto__ constructor='3'>t</__proto__>")
      .and.contain("<prototype prototype='4'/>");
    expect(formatXml(parseXml(again))).to.equal(again);
    // Nothing leaked onto Object.prototype.
    expect(({} as Record<string, unknown>).constructor).to.equal(Object);
  });

  it("a document with U+FFFD round-trips (a domain whose description holds it can be read back)", () => {
    const d = DomainDef.parse(
      "<domain><name>x</name><description>bad byte: \ufffd, ref: &#xFFFD;</description></domain>",
    );
    expect(d.childText("description")).to.equal("bad byte: \ufffd, ref: \ufffd");
    expect(DomainDef.parse(d.format()).childText("description")).to.equal("bad byte: \ufffd, ref: \ufffd");
  });

  it("refusals name the path, the offending text and the fix", () => {
    const cases: [string, RegExp][] = [
      ["<domain><a>&#1;</a></domain>", /character reference to a character XML 1.0 forbids.*&#1;/],
      ["<domain><!-- a -- b --></domain>", /"--" inside a comment/],
      ["<domain><a>]]></a></domain>", /"\]\]>" in text/],
      ["<domain><a b='<'/></domain>", /"<" in an attribute value/],
    ];
    for (const [text, re] of cases) {
      let err: unknown;
      try {
        parseXml(text, "xml");
      } catch (e) {
        err = e;
      }
      expect(DomainXmlError.isInstance(err), text).to.equal(true);
      const m = (err as DomainXmlError).message;
      expect(m, text)
        .to.match(/^xml: /)
        .and.match(re)
        .and.match(/fix: /);
    }
  });

  it("refuses a lone surrogate (it cannot be written as UTF-8)", () => {
    expect(oursAccepts("<domain><a>\ud800</a></domain>")).to.equal(false);
    expect(oursAccepts("<domain><a>\udc00x</a></domain>")).to.equal(false);
  });
});
