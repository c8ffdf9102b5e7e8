/**
 * libvirt's identity rules, one test per rule, on small documents: `<hwuuid>` as libvirt 11.7
 * parses it (`virDomainDefParseIDs` in `src/conf/domain_conf.c`), UUIDs as `virUUIDParse` and
 * `virUUIDIsValid` read them (`src/util/viruuid.c`), the `<sysinfo>` uuid checks
 * (`virSysinfoSystemParseXML`, same file) and `-uuid` (`qemuBuildCommandLine`).
 */
import { expect } from "chai";
import { DomainDef } from "../../provider/xml/domain";
import { DomainXmlError } from "../../provider/xml/errors";
import { normalizeIdentity, resolveIdentity } from "../../provider/xml/identity";
import { buildQemuArgv } from "../../provider/qemu/argv";
import { firstChild } from "../../provider/xml/tree";

const U = "33721861-ccee-4dc2-858c-5f1e4629771f";
const H = "5d5b0f1d-128b-4517-8e65-b258a8734c1d";

function doc(ids: string, sysinfoUuid?: string): DomainDef {
  const si =
    sysinfoUuid === undefined
      ? ""
      : `<sysinfo type='smbios'><system><entry name='uuid'>${sysinfoUuid}</entry></system></sysinfo>`;
  return DomainDef.parse(
    `<domain type='qemu'><name>d</name>${ids}<memory>65536</memory>${si}<os><type>hvm</type><smbios mode='sysinfo'/></os></domain>`,
  );
}

function reason(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (DomainXmlError.isInstance(e)) return e.libvirtMessage;
    throw e;
  }
  return "no error";
}

function uuidArg(def: DomainDef): string {
  const a = buildQemuArgv(def).argv;
  const uuid = a[a.indexOf("-uuid") + 1];
  if (uuid === undefined) throw new Error(`the QEMU argv has no value after -uuid: ${a.join(" ")}`);
  return uuid;
}

describe("identity rules (libvirt >= 11.7)", () => {
  it("libvirt's own case: -uuid is the hwuuid, format keeps both, hwuuid right after uuid", () => {
    const d = doc(`<uuid>${U}</uuid><hwuuid>${H}</hwuuid>`);
    expect(resolveIdentity(d)).to.include({ uuid: U, hwuuid: H, guestUuid: H });
    expect(uuidArg(d)).to.equal(H);
    expect(d.format()).to.contain(`<uuid>${U}</uuid>\n  <hwuuid>${H}</hwuuid>`);
  });
  it("no hwuuid: the guest sees the uuid", () => {
    expect(uuidArg(doc(`<uuid>${U}</uuid>`))).to.equal(U);
  });
  it("malformed hwuuid: libvirt's internal error text", () => {
    expect(reason(() => resolveIdentity(doc(`<uuid>${U}</uuid><hwuuid>not-a-uuid</hwuuid>`)))).to.equal(
      "internal error: malformed hwuuid element",
    );
  });
  it("malformed uuid: libvirt's internal error text", () => {
    expect(reason(() => resolveIdentity(doc(`<uuid>xyz</uuid>`)))).to.equal("internal error: malformed uuid element");
  });
  it("empty <hwuuid></hwuuid> reads as absent and is dropped", () => {
    const d = doc(`<uuid>${U}</uuid><hwuuid></hwuuid>`);
    expect(normalizeIdentity(d).hwuuid).to.equal(null);
    expect(firstChild(d.root, "hwuuid")).to.equal(undefined);
  });
  for (const allEqual of [
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "11".repeat(16),
  ]) {
    it(`all-equal hwuuid ${allEqual.slice(0, 8)}... is unset: not formatted back, -uuid falls back to uuid`, () => {
      const d = doc(`<uuid>${U}</uuid><hwuuid>${allEqual}</hwuuid>`);
      expect(normalizeIdentity(d).hwuuid).to.equal(null);
      expect(d.format()).to.not.contain("hwuuid");
      expect(uuidArg(d)).to.equal(U);
    });
  }
  it("only the first <hwuuid> counts; the others are dropped", () => {
    const d = doc(`<uuid>${U}</uuid><hwuuid>${H}</hwuuid><hwuuid>aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee</hwuuid>`);
    expect(normalizeIdentity(d).hwuuid).to.equal(H);
    expect(d.format().match(/<hwuuid>/g)).to.have.length(1);
  });
  it("uppercase, undashed or space-padded hwuuid is normalized to lowercase dashed", () => {
    for (const t of [H.toUpperCase(), H.replace(/-/g, ""), `  ${H}\n`]) {
      const d = doc(`<uuid>${U}</uuid><hwuuid>${t}</hwuuid>`);
      normalizeIdentity(d);
      expect(d.childText("hwuuid")).to.equal(H);
    }
  });
  it("hwuuid set: sysinfo uuid must equal the hwuuid", () => {
    expect(resolveIdentity(doc(`<uuid>${U}</uuid><hwuuid>${H}</hwuuid>`, H)).guestUuid).to.equal(H);
    expect(reason(() => resolveIdentity(doc(`<uuid>${U}</uuid><hwuuid>${H}</hwuuid>`, U)))).to.equal(
      "UUID mismatch between <hwuuid> and <sysinfo>",
    );
  });
  it("hwuuid not set: sysinfo uuid must equal the uuid", () => {
    expect(resolveIdentity(doc(`<uuid>${U}</uuid>`, U.toUpperCase())).sysinfoUuid).to.equal(U);
    expect(reason(() => resolveIdentity(doc(`<uuid>${U}</uuid>`, H)))).to.equal(
      "UUID mismatch between <uuid> and <sysinfo>",
    );
  });
  it("all-equal hwuuid counts as not set for the sysinfo rule", () => {
    expect(reason(() => resolveIdentity(doc(`<uuid>${U}</uuid><hwuuid>${"00".repeat(16)}</hwuuid>`, H)))).to.equal(
      "UUID mismatch between <uuid> and <sysinfo>",
    );
  });
  it("no <uuid>: the uuid takes the sysinfo uuid", () => {
    const d = doc("", U);
    expect(normalizeIdentity(d).uuid).to.equal(U);
    expect(d.childText("uuid")).to.equal(U);
  });
  it("no <uuid>, sysinfo uuid and a different hwuuid: rejected up front (our deliberate difference)", () => {
    expect(reason(() => resolveIdentity(doc(`<hwuuid>${H}</hwuuid>`, U)))).to.equal(
      "UUID mismatch between <hwuuid> and <sysinfo>",
    );
  });
  it("no <uuid> and no sysinfo: uuid null (libvirt generates one), guestUuid the hwuuid or null", () => {
    expect(resolveIdentity(doc(""))).to.include({ uuid: null, guestUuid: null });
    expect(resolveIdentity(doc(`<hwuuid>${H}</hwuuid>`))).to.include({ uuid: null, guestUuid: H });
  });
  it("malformed sysinfo uuid: libvirt's XML detail text", () => {
    expect(reason(() => resolveIdentity(doc(`<uuid>${U}</uuid>`, "nope")))).to.equal(
      "malformed <sysinfo> uuid element",
    );
  });
  it("errors name the path, the value and the fix", () => {
    let caught: unknown;
    try {
      resolveIdentity(doc(`<uuid>${U}</uuid><hwuuid>12-34</hwuuid>`));
    } catch (e) {
      caught = e;
    }
    // Outside the catch: an expect.fail inside the try would be caught and checked as the error.
    expect(DomainXmlError.isInstance(caught), `a DomainXmlError, got ${String(caught)}`).to.equal(true);
    const x = caught as DomainXmlError;
    expect(x.path).to.equal("/domain/hwuuid");
    expect(x.value).to.equal("12-34");
    expect(x.message).to.contain("fix:");
  });
});
