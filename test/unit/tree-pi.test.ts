/**
 * Processing instructions are kept, as libxml2 (and so libvirt) keeps them: before, inside and
 * after the root element, with their data verbatim; they are not text (XPath `string()` skips
 * them). The XML declaration is not one of them: it is dropped, as libvirt formats none.
 */
import { expect } from "chai";
import { formatXml, parseXml, textContent } from "../../provider/xml/tree";

describe("xml tree: processing instructions", () => {
  it("round-trips them where they stand, data verbatim (a ? or > inside included)", () => {
    const doc = `<?xml version='1.0'?>
<?xml-stylesheet type="text/xsl" href="a.xsl"?>
<domain>
  <?app if a > b ? yes : no?>
  <name>x</name>
</domain>
<?after?>
`;
    expect(formatXml(parseXml(doc))).to.equal(`<?xml-stylesheet type="text/xsl" href="a.xsl"?>
<domain>
  <?app if a > b ? yes : no?>
  <name>x</name>
</domain>
<?after?>
`);
  });

  it("is a node of its own: target and data", () => {
    const d = parseXml("<domain><?app  two  spaces ?></domain>");
    expect(d.root.children).to.deep.equal([{ kind: "pi", target: "app", value: "two  spaces " }]);
  });

  it("is not text: textContent skips it, and mixed content stays inline", () => {
    const d = parseXml("<domain><title>a<?app x?>b</title></domain>");
    const title = d.root.children[0]!;
    expect(title.kind === "element" && textContent(title)).to.equal("ab");
    expect(formatXml(d)).to.equal("<domain>\n  <title>a<?app x?>b</title>\n</domain>\n");
  });
});
