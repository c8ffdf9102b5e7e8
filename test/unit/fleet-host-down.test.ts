/**
 * A fleet member (its connection names its host) whose host does not answer at `check`: not a
 * check failure (the engine would stop every other host's members), but held as recorded or
 * refused at create/update naming the host and its URI. A Domain without a host label keeps the
 * check failure. No lab: the URI names a socket that does not exist.
 */
import { expect } from "chai";
import { provider } from "../../provider/dynamic/impl";

const URI = "qemu+unix:///system?socket=/nonexistent/pld-unit/libvirt-sock";
const XML = `<domain type='qemu'><name>m1</name><memory unit='KiB'>65536</memory><os><type arch='x86_64' machine='pc'>hvm</type></os></domain>`;
const news = (host?: string) => ({
  name: "m1",
  xml: XML,
  hwuuid: "5d5b0f1d-128b-4517-8e65-b258a8734c1d",
  connection: host ? { uri: URI, host } : { uri: URI },
  ownerId: "p/s/web-1",
  running: false,
});

describe("a fleet member whose host does not answer", () => {
  it("without a host label: a check failure naming the URI (as before)", async () => {
    const c = await provider.check({}, news());
    expect(c.failures.map((f) => f.property)).to.deep.equal(["connection.uri"]);
    expect(c.failures[0]!.reason).to.contain(`cannot reach libvirt at ${JSON.stringify(URI)}`);
  });

  it("a new member: no check failure, and create refuses it naming the host and the URI", async () => {
    const c = await provider.check({}, news("b"));
    expect(c.failures).to.deep.equal([]);
    expect(c.inputs.resolvedHwuuidMode).to.equal(undefined);
    let err: Error | undefined;
    try {
      await provider.create(c.inputs);
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.match(new RegExp(`^host b \\(${URI.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\): `));
    expect(err?.message)
      .to.contain("did not answer when this domain was checked")
      .and.contain("fix: start the libvirt");
  });

  it("a recorded member: composed with its recorded hwuuid mode, so an unchanged member shows no change", async () => {
    const c = await provider.check({ resolvedHwuuidMode: "native" }, news("b"));
    expect(c.failures).to.deep.equal([]);
    expect(c.inputs.resolvedHwuuidMode).to.equal("native");
    expect(c.inputs.xml).to.contain("<hwuuid>5d5b0f1d-128b-4517-8e65-b258a8734c1d</hwuuid>");
    const again = await provider.check({ resolvedHwuuidMode: "native" }, news("b"));
    expect(again.inputs.xml).to.equal(c.inputs.xml);
  });

  it("a checked member whose host stops answering: the create error names the host and the URI", async () => {
    let err: Error | undefined;
    try {
      await provider.create({ ...news("b"), resolvedHwuuidMode: "native" });
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.match(/^host b \(qemu\+unix:/);
    expect(err?.message).to.contain("/nonexistent/pld-unit/libvirt-sock");
  });
});
