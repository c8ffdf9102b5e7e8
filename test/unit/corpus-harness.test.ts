/**
 * The corpus harness's own definitions (test/corpus): what "lossless" means, how libvirt's
 * `.args` files are read, libvirt's bitmap syntax. The corpus itself runs in test/corpus.
 */
import { expect } from "chai";
import { canonicalXml } from "../corpus/canonical";
import { compareArgv, parseArgsFile } from "../corpus/argv";
import { shellWords } from "../support/shell";

describe("corpus harness", () => {
  describe("canonicalXml (the meaning of a lossless round trip)", () => {
    const same = (a: string, b: string) => expect(canonicalXml(a)).to.equal(canonicalXml(b));
    const differ = (a: string, b: string) => expect(canonicalXml(a)).to.not.equal(canonicalXml(b));

    it("ignores layout, attribute order, quotes, empty-element spelling, CDATA vs text and references", () => {
      same(`<a x="1" y='2'>\n  <b></b>\n</a>`, `<a y='2' x='1'><b/></a>`);
      same(`<a>x &amp; <![CDATA[<y>]]></a>`, `<a>x &amp; &lt;y&gt;</a>`);
      same(`<a v='&#65;'/>`, `<a v='A'/>`);
    });

    it("sees a dropped or changed attribute, text, comment, prefix or namespace declaration", () => {
      differ(`<a x='1'/>`, `<a/>`);
      differ(`<a> t </a>`, `<a>t</a>`);
      differ(`<a><!--c--><b/></a>`, `<a><b/></a>`);
      differ(`<d xmlns:q='u'><q:c/></d>`, `<d xmlns:ns0='u'><ns0:c/></d>`);
      differ(`<a xmlns:q='u'/>`, `<a/>`);
    });

    it("keeps whitespace in mixed content", () => {
      differ(`<a>x <b/> y</a>`, `<a>x<b/>y</a>`);
    });
  });

  describe(".args files", () => {
    it("splits libvirt's shell quoting", () => {
      expect(shellWords(`-smbios 'type=11,value=This is,, more' \\`.replace(/ \\$/, ""))).to.deep.equal([
        "-smbios",
        "type=11,value=This is,, more",
      ]);
      expect(shellWords(`-device '{"driver":"x"}'`)).to.deep.equal(["-device", '{"driver":"x"}']);
    });

    it("separates the environment from the argument vector", () => {
      const a = parseArgsFile(
        "LC_ALL=C \\\nPATH=/bin \\\n/usr/bin/qemu-system-x86_64 \\\n-name guest=g,debug-threads=on \\\n-uuid 1 \\\n-S\n",
      );
      expect(a.env).to.deep.equal({ LC_ALL: "C", PATH: "/bin" });
      expect(a.argv).to.deep.equal([
        "/usr/bin/qemu-system-x86_64",
        "-name",
        "guest=g,debug-threads=on",
        "-uuid",
        "1",
        "-S",
      ]);
    });

    it("compares the chosen options with all their values", () => {
      const l = ["q", "-smbios", "type=0", "-smbios", "type=1,uuid=u", "-uuid", "u"];
      expect(compareArgv(l, ["q", "-uuid", "u", "-smbios", "type=1,uuid=u"]).map((d) => d.option)).to.deep.equal([
        "-smbios",
      ]);
      expect(compareArgv(l, l)).to.deep.equal([]);
    });
  });
});
