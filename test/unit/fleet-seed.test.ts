/**
 * Seeding a host of a multi-host fleet that lacks its template's image, the pure part
 * (`planSeeds`) and the DiskImage `seed` mode's input validation (no I/O: the failures come
 * before any connection is made).
 */
import { expect } from "chai";
import * as disk from "../../provider/dynamic/disk";
import {
  planFleet,
  planSeeds,
  planVolumes,
  seedVolumeName,
  type FleetPlan,
  type SeedCandidate,
  type StorageFacts,
} from "../../provider/fleet/plan";
import { validateFleetArgs } from "../../sdk/fleet";

const TEMPLATE = `<domain type='qemu'><name>tmpl</name><memory unit='KiB'>65536</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/pool/tmpl.qcow2'/><target dev='vda' bus='virtio'/></disk>
  </devices></domain>`;

function plan(): FleetPlan {
  return planFleet({
    fleetName: "web",
    project: "p",
    stack: "s",
    templateXml: TEMPLATE,
    keys: ["1", "2"],
    hwuuidPolicy: { kind: "derive" },
    namePattern: "{fleet}-{key}",
  });
}

const URI = "qemu+ssh://admin@hv2/system";
/** hv2: pool "images" on /pool runs, but has no tmpl.qcow2. */
const LACKING: StorageFacts = {
  uri: URI,
  volumes: new Map(),
  pools: [{ name: "images", targetPath: "/pool", active: true }],
};
const HV1: SeedCandidate = {
  host: "hv1",
  uri: "qemu:///system",
  images: new Map([["tmpl.qcow2", { pool: "default", path: "/var/lib/libvirt/images/tmpl.qcow2", format: "qcow2" }]]),
};

describe("seeding a host that lacks the template image (planSeeds, pure)", () => {
  it("with seedImages: one seed per missing image, from the first host that has it; members placed on the seed", () => {
    const other: SeedCandidate = { ...HV1, host: "hv3", uri: "qemu+ssh://hv3/system" };
    let asked = 0;
    const s = planSeeds(plan(), LACKING, {
      fleetName: "web",
      host: "hv2",
      seedImages: true,
      candidates: () => (asked++, [HV1, other]),
    });
    expect(s.refusals).to.deep.equal([]);
    expect(asked).to.equal(1);
    const volume = seedVolumeName("web", "/pool/tmpl.qcow2");
    expect(volume).to.match(/^lvd-seed-[0-9a-f]{8}-tmpl\.qcow2$/);
    expect(s.seeds).to.deep.equal([
      {
        missing: "/pool/tmpl.qcow2",
        pool: "images",
        volume,
        path: `/pool/${volume}`,
        format: "qcow2",
        from: { host: "hv1", uri: "qemu:///system", path: "/var/lib/libvirt/images/tmpl.qcow2" },
      },
    ]);
    const placed = planVolumes(plan(), s.facts);
    expect(placed.refusals).to.deep.equal([]);
    expect(placed.plan.members.map((m) => m.disks[0]?.volume)).to.deep.equal([
      { pool: "images", name: "web-1-vda.qcow2" },
      { pool: "images", name: "web-2-vda.qcow2" },
    ]);
  });

  it("without seedImages: a refusal naming the host, the image and the fix (seedImages: true, or copy it there)", () => {
    const s = planSeeds(plan(), LACKING, { fleetName: "web", host: "hv2", seedImages: false, candidates: () => [HV1] });
    expect(s.seeds).to.deep.equal([]);
    expect(s.refusals).to.have.length(1);
    const r = s.refusals[0]!.reason;
    expect(r)
      .to.contain(`host hv2 (${URI}) lacks the template image /pool/tmpl.qcow2`)
      .and.contain("host hv1 (qemu:///system) has /var/lib/libvirt/images/tmpl.qcow2")
      .and.contain("fix: seedImages: true")
      .and.contain("or copy it there yourself");
    // The only refusal about it: planVolumes does not refuse it again.
    expect(planVolumes(plan(), s.facts).refusals).to.deep.equal([]);
  });

  it("no host has it: a refusal naming the image, even with seedImages", () => {
    const s = planSeeds(plan(), LACKING, { fleetName: "web", host: "hv2", seedImages: true, candidates: () => [] });
    expect(s.seeds).to.deep.equal([]);
    expect(s.refusals[0]?.reason).to.contain("lacks the template image /pool/tmpl.qcow2").and.contain("fix: ");
  });

  it("a host that has the image, or whose image is in no running pool, is not seeded (the other hosts are not read)", () => {
    const have: StorageFacts = {
      ...LACKING,
      volumes: new Map([["/pool/tmpl.qcow2", { pool: "images", path: "/pool/tmpl.qcow2", format: "qcow2" }]]),
    };
    const never = (): SeedCandidate[] => {
      throw new Error("read");
    };
    for (const f of [have, { ...LACKING, pools: [{ name: "images", targetPath: "/pool", active: false }] }]) {
      const s = planSeeds(plan(), f, { fleetName: "web", host: "hv2", seedImages: true, candidates: never });
      expect(s.seeds).to.deep.equal([]);
      expect(s.refusals).to.deep.equal([]);
    }
  });

  it("the seed's name is stable and differs per fleet and per image", () => {
    expect(seedVolumeName("web", "/pool/tmpl.qcow2")).to.equal(seedVolumeName("web", "/pool/tmpl.qcow2"));
    expect(seedVolumeName("web", "/pool/tmpl.qcow2")).to.not.equal(seedVolumeName("db", "/pool/tmpl.qcow2"));
    expect(seedVolumeName("web", "/pool/a.qcow2")).to.not.equal(seedVolumeName("web", "/pool/b/a.qcow2"));
  });

  it("seedImages must be a boolean", () => {
    const f = validateFleetArgs({ template: { name: "t" }, members: 1, seedImages: "yes" });
    expect(f.map((x) => x.argument)).to.deep.equal(["seedImages"]);
    expect(f[0]?.fix).to.contain("seedImages: true");
  });
});

describe("DiskImage mode seed: input validation (no I/O)", () => {
  const good: Record<string, unknown> & { connection: { uri: string } } = {
    connection: { uri: "qemu+ssh://root@hv2/system" },
    pool: "images",
    volume: "tmpl.qcow2",
    source: "/var/lib/libvirt/images/tmpl.qcow2",
    sourceFormat: "qcow2",
    mode: "seed",
    from: { uri: "qemu:///system" },
  };
  const failures = async (o: Record<string, unknown>) => (await disk.check({}, o)).failures;

  it("connection, pool, volume and from are required; each failure names the property and the fix", async () => {
    for (const k of ["connection", "pool", "volume", "from"]) {
      const { [k]: _gone, ...rest } = good;
      const f = await failures(rest);
      expect(
        f.map((x) => x.property),
        k,
      ).to.include(k);
      for (const x of f) expect(x.reason, k).to.contain("fix: ");
    }
  });

  it("from must be another libvirt host: not the connection, not QEMU-direct, a URI string", async () => {
    const same = await failures({ ...good, from: { uri: good.connection.uri } });
    expect(same.map((x) => x.property)).to.deep.equal(["from.uri"]);
    expect(same[0]?.reason).to.contain('mode: "copy"');
    const direct = await failures({ ...good, from: { uri: "qemu-direct:///var/lib/x" } });
    expect(direct.map((x) => x.property)).to.deep.equal(["from.uri"]);
    const num = await failures({ ...good, from: { uri: 7 } });
    expect(num.map((x) => x.property)).to.deep.equal(["from.uri"]);
  });

  it("from is only for a seed; a bad mode names seed among the modes", async () => {
    const f = await failures({ ...good, mode: "overlay" });
    expect(f.map((x) => x.property)).to.include("from");
    const m = await failures({ ...good, mode: "seeded" });
    expect(m.find((x) => x.property === "mode")?.reason).to.contain('"seed"');
  });

  it("a volume's source not known yet (preview of a seed's output: unknown, or left out) is not checked", async () => {
    for (const source of [disk.UNKNOWN, undefined]) {
      const f = await failures({
        connection: { uri: "qemu+ssh://root@hv2/system" },
        pool: "images",
        volume: "web-1-vda.qcow2",
        source,
        sourceFormat: "qcow2",
        mode: "overlay",
      });
      expect(f).to.deep.equal([]);
    }
    // A file image still needs its source.
    const file = await failures({ path: "/img/a.qcow2", sourceFormat: "qcow2", mode: "overlay" });
    expect(file.map((x) => x.property)).to.deep.equal(["source"]);
  });
});
