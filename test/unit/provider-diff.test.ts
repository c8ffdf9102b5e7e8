/**
 * The Domain provider's `diff` and `xmlChanges` without a lab: both are pure (no libvirt call),
 * so what re-creates, what updates and what counts as drift is checked here on composed XML.
 */
import { expect } from "chai";
import { composeDomain } from "../../provider/desired/compose";
import { diff, xmlChanges } from "../../provider/dynamic/impl";

const URI = "qemu:///system";
const desired = (memory = "64 MiB", xml?: string): string =>
  composeDomain({ name: "web-1", memory, connection: { uri: URI }, ...(xml ? { xml } : {}) }, "native").xml;

/** The state after an up: the inputs, and the outputs as read back (actual XML = desired). */
function state(memory = "64 MiB"): Record<string, unknown> {
  const x = desired(memory);
  return { name: "web-1", memory, connection: { uri: URI }, xml: x, desiredXml: x, state: "running" };
}
/** What `check` returns for the same program. */
function news(memory = "64 MiB", extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: "web-1", memory, connection: { uri: URI }, xml: desired(memory), ...extra };
}

describe("Domain provider diff and xmlChanges (pure, no lab)", () => {
  it("the same program: no change", async () => {
    expect(await diff("web-1", state(), news())).to.deep.equal({
      changes: false,
      replaces: [],
      deleteBeforeReplace: false,
    });
  });

  it("a memory change is an update, not a replacement", async () => {
    expect(await diff("web-1", state(), news("96 MiB"))).to.deep.equal({
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
  });

  it("a new name re-creates, the new one first (the names differ)", async () => {
    const n = { ...news(), name: "web-2" };
    expect(await diff("web-1", state(), n)).to.deep.equal({
      changes: true,
      replaces: ["name"],
      deleteBeforeReplace: false,
    });
  });

  it("a new replaceTrigger re-creates, deleting first (the name stays)", async () => {
    expect(await diff("web-1", state(), news("64 MiB", { replaceTrigger: "2" }))).to.deep.equal({
      changes: true,
      replaces: ["replaceTrigger"],
      deleteBeforeReplace: true,
    });
  });

  it("another connection re-creates", async () => {
    const r = await diff("web-1", state(), news("64 MiB", { connection: { uri: "qemu:///session" } }));
    expect(r.replaces).to.include("connection");
  });

  it("another domain type re-creates", async () => {
    const kvm = desired("64 MiB", "<domain type='kvm'><name>x</name></domain>");
    const r = await diff("web-1", state(), { ...news(), xml: kvm });
    expect(r.replaces).to.include("xml");
  });

  it("drift: the actual XML lacks what is desired, so a change is shown", async () => {
    const s = { ...state(), xml: desired("32 MiB") };
    expect((await diff("web-1", s, news())).changes).to.equal(true);
  });

  it("a stopped domain that should run is a change; one that should not, is not", async () => {
    const stopped = { ...state(), state: "shut off" };
    expect((await diff("web-1", stopped, news())).changes).to.equal(true);
    const off = { running: false };
    expect((await diff("web-1", { ...stopped, ...off }, news("64 MiB", off))).changes).to.equal(false);
  });

  it("xmlChanges: none for the same XML or no actual XML, the memory path when it differs", () => {
    expect(xmlChanges(desired(), desired())).to.deep.equal([]);
    expect(xmlChanges(desired(), undefined)).to.deep.equal([]);
    const paths = xmlChanges(desired("96 MiB"), desired()).map((c) => c.path);
    expect(
      paths.some((p) => p.includes("memory")),
      JSON.stringify(paths),
    ).to.equal(true);
  });
});
