/**
 * Robustness against real libvirt: a domain whose XML holds U+FFFD and elements named like
 * JavaScript's own properties (`constructor`, `__proto__`, `toString`) is created, refreshed
 * without drift and destroyed, on both labs; and what libxml2 refuses fails at check, naming
 * libvirt's own objection (the same document given to `virsh define` is refused too).
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { VirshBackend } from "../../provider/backends/virsh/virsh-backend";
import { runVirsh, VirshError } from "../../provider/backends/virsh/exec";
import * as impl from "../../provider/dynamic/impl";
import { checkAndCreate, removeDomains, RUN_PREFIX } from "../support/domains";
import { Lab, requireLab } from "../support/lab";

const BODY = (name: string, extra: string) =>
  `<domain type='qemu'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>${extra}<os><type arch='x86_64' machine='pc'>hvm</type></os><devices><serial type='pty'/></devices></domain>`;

for (const labName of ["new", "host"] as const) {
  describe(`robustness on the ${labName} lab`, function () {
    this.timeout(300000);
    let lab: Lab;
    const prefix = `${RUN_PREFIX}-r${labName[0]}-`;
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-robust-"));
    before(async () => {
      lab = await requireLab(labName);
    });
    after(async () => {
      fs.rmSync(tmp, { recursive: true, force: true });
      if (lab) await removeDomains(lab.uri, prefix);
    });

    it("U+FFFD in the description and elements named constructor, __proto__, toString: create, refresh without drift, destroy", async () => {
      const xml = BODY(
        "x",
        "<description>bytes that were not UTF-8: \ufffd\ufffd</description><metadata><constructor xmlns='urn:example:a'><__proto__ toString='1'/></constructor></metadata>",
      );
      const a = await checkAndCreate({ name: `${prefix}fffd`, xml, running: false, connection: { uri: lab.uri } });
      expect(a.outs.xml).to.contain("\ufffd\ufffd").and.contain("<__proto__ toString=");
      const r = await impl.read(a.id, a.outs);
      expect(r.id).to.equal(a.id);
      expect(r.props.drift).to.deep.equal([]);
      const c = await impl.check(a.outs, a.inputs);
      expect(c.failures).to.deep.equal([]);
      expect((await impl.diff(a.id, r.props, c.inputs)).changes).to.equal(false);
      await impl.remove(a.id, r.props);
      expect(await new VirshBackend(lab.uri).exists(a.id)).to.equal(false);
    });

    for (const [title, extra, re] of [
      ["&#1;", "<description>a&#1;b</description>", /xmlParseCharRef: invalid xmlChar value 1/],
      ["-- inside a comment", "<!-- a -- b -->", /Double hyphen within comment/],
      ["]]> in text", "<description>a]]>b</description>", /Sequence ']]>' not allowed in content/],
    ] as const) {
      it(`${title}: refused at check, as libvirt refuses it at define`, async () => {
        const name = `${prefix}bad`;
        const c = await impl.check({}, { name, xml: BODY("x", extra), connection: { uri: lab.uri } });
        expect(c.failures.map((f) => f.property)).to.deep.equal(["xml"]);
        const file = path.join(tmp, "bad.xml");
        fs.writeFileSync(file, BODY(name, extra));
        let err: unknown;
        await runVirsh(lab.uri, ["define", file]).catch((e) => (err = e));
        expect(VirshError.isInstance(err), "libvirt refuses it too").to.equal(true);
        expect((err as VirshError).libvirtMessage).to.match(re);
      });
    }
  });
}
