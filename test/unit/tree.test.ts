/** The ordered tree: round-trip of what we do not model, strings stay strings, bad input refused. */
import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DomainDef } from "../../provider/xml/domain";
import { DomainXmlError } from "../../provider/xml/errors";
import { parseXml, formatXml, MAX_XML_BYTES } from "../../provider/xml/tree";
import { readXmlFile, main } from "../../provider/cli/main";
import { GOLDEN_DIR } from "../support/paths";

function errorOf(f: () => unknown): DomainXmlError {
  try {
    f();
  } catch (e) {
    if (DomainXmlError.isInstance(e)) return e;
    throw e;
  }
  throw new Error("expected a DomainXmlError");
}

describe("xml tree", () => {
  it("round-trips foreign namespaces, metadata, comments, CDATA and entities (format is a fixed point)", () => {
    const src = fs.readFileSync(path.join(GOLDEN_DIR, "roundtrip-foreign.xml"), "utf8");
    const once = DomainDef.parse(src).format();
    expect(DomainDef.parse(once).format()).to.equal(once);
    for (const kept of [
      "<!-- managed by an infrastructure repo: do not edit by hand -->",
      "<app2:nested flag='0001'>0001</app2:nested>",
      '<![CDATA[Free text with <markup> & "quotes" kept as CDATA]]>',
      "<title>Round &amp; trip &lt;test&gt;</title>",
      "<!-- boot settings -->",
      "<memory unit='KiB'>0065536</memory>",
      "<qemu:arg value='kvm-pit.lost_tick_policy=discard'/>",
      "<!-- trailing comment -->",
    ]) {
      expect(once).to.contain(kept);
    }
  });
  it("keeps values as strings (0001 stays 0001)", () => {
    const d = DomainDef.parse("<domain><name>0001</name><vcpu>01</vcpu></domain>");
    expect(d.name).to.equal("0001");
    expect(d.format()).to.contain("<vcpu>01</vcpu>");
  });
  it("escapes everything written back", () => {
    const d = DomainDef.parse("<domain><name>x</name></domain>");
    d.setChildText("title", `a<b>&'"c`);
    d.setChildText("description", "]]> <!-- not a comment -->");
    const again = DomainDef.parse(d.format());
    expect(again.childText("title")).to.equal(`a<b>&'"c`);
    expect(again.childText("description")).to.equal("]]> <!-- not a comment -->");
  });
  it("inserts new elements where libvirt formats them", () => {
    const d = DomainDef.parse("<domain><name>x</name><memory>1</memory><devices/></domain>");
    d.setChildText("hwuuid", "5d5b0f1d-128b-4517-8e65-b258a8734c1d");
    d.setChildText("uuid", "33721861-ccee-4dc2-858c-5f1e4629771f");
    d.setChildText("on_reboot", "restart");
    const names = d.root.children.map((c) => (c.kind === "element" ? c.name : c.kind));
    expect(names).to.deep.equal(["name", "uuid", "hwuuid", "memory", "on_reboot", "devices"]);
  });
  it("refuses a DOCTYPE with entities, without expanding them", () => {
    const e = errorOf(() => parseXml(`<!DOCTYPE d [<!ENTITY a "${"x".repeat(10)}">]><domain>&a;</domain>`));
    expect(e.reason).to.equal("DOCTYPE and entity declarations are not allowed");
  });
  it("refuses a root other than <domain>", () => {
    expect(errorOf(() => DomainDef.parse("<network/>")).message).to.contain("allowed: <domain>");
  });
  it("refuses binary garbage", () => {
    expect(errorOf(() => parseXml("\u0000\u0001ELF")).reason).to.equal("not an XML text document");
  });
  it("refuses a document over the size limit", () => {
    expect(errorOf(() => parseXml("<domain>" + " ".repeat(MAX_XML_BYTES) + "</domain>")).reason).to.equal(
      "document too large",
    );
  });
  it("refuses XML that is not well formed, with the line", () => {
    expect(errorOf(() => parseXml("<domain>\n<name>x</domain>")).message).to.match(/line \d+/);
  });
  it("formatXml is stable on the golden corpus", () => {
    for (const f of fs.readdirSync(GOLDEN_DIR).filter((n) => n.endsWith(".out.xml"))) {
      const text = fs.readFileSync(path.join(GOLDEN_DIR, f), "utf8");
      expect(formatXml(parseXml(text)), f).to.equal(text);
    }
  });
});

describe("libvirt-domain CLI", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-cli-"));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = "";
    let err = "";
    const code = await main(argv, { out: (s) => (out += s), err: (s) => (err += s), stdin: () => "" });
    return { code, out, err };
  }

  it("identity prints one JSON line with guestUuid = hwuuid for libvirt's case", async () => {
    const r = await run("identity", path.join(GOLDEN_DIR, "hwuuid.xml"));
    expect(r.code).to.equal(0);
    expect(JSON.parse(r.out)).to.deep.equal({
      name: "hwuuid",
      uuid: "33721861-ccee-4dc2-858c-5f1e4629771f",
      hwuuid: "5d5b0f1d-128b-4517-8e65-b258a8734c1d",
      guestUuid: "5d5b0f1d-128b-4517-8e65-b258a8734c1d",
    });
  });
  it("qemu-argv prints -uuid then the hwuuid", async () => {
    const lines = (await run("qemu-argv", path.join(GOLDEN_DIR, "hwuuid.xml"))).out.split("\n");
    expect(lines[lines.indexOf("-uuid") + 1]).to.equal("5d5b0f1d-128b-4517-8e65-b258a8734c1d");
  });
  it("invalid file: exit 1 with libvirt's text on stderr", async () => {
    const r = await run("identity", path.join(GOLDEN_DIR, "hwuuid-malformed.xml"));
    expect(r.code).to.equal(1);
    expect(r.err.split("\n")[0]).to.equal("error: internal error: malformed hwuuid element");
  });
  it("missing file: exit 1, names the file", async () => {
    const r = await run("format", path.join(tmp, "nope.xml"));
    expect(r.code).to.equal(1);
    expect(r.err).to.contain("nope.xml").and.contain("No such file or directory");
  });
  it("oversize file: refused before reading", () => {
    const f = path.join(tmp, "big.xml");
    fs.writeFileSync(f, Buffer.alloc(MAX_XML_BYTES + 1, 0x20));
    expect(errorOf(() => readXmlFile(f)).reason).to.equal("document too large");
  });
  it("--help on every command; bad usage exits 2", async () => {
    for (const c of ["identity", "format", "qemu-argv"]) {
      const r = await run(c, "--help");
      expect(r.code, c).to.equal(0);
      expect(r.out, c).to.contain(`usage: libvirt-domain ${c}`);
    }
    expect((await run("identity")).code).to.equal(2);
    expect((await run("frobnicate")).code).to.equal(2);
  });
});
