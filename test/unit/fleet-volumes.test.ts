/**
 * Fleet images as storage volumes, the pure part (provider/fleet/plan.ts): which URIs are local,
 * the rule that picks volumes or files, the placement of each member image in the pool of its
 * directory, and the refusals (a disk outside any pool, a pool not running, another format)
 * naming the disk, the directory and the fix.
 */
import { expect } from "chai";
import {
  dirsWithoutPool,
  fleetStorage,
  imagesOf,
  isLocalUri,
  planFleet,
  planVolumes,
  volumeDisksAsFiles,
  volumeDisksOf,
  type FleetPlan,
  type StorageFacts,
} from "../../provider/fleet/plan";

const TEMPLATE = `<domain type='qemu'><name>tmpl</name><memory unit='KiB'>65536</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type><nvram>/pool/tmpl_VARS.fd</nvram></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/pool/tmpl.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='/iso/seed.iso'/><target dev='sda' bus='sata'/><readonly/></disk>
  </devices></domain>`;

function plan(extra: { imageDir?: string; templateXml?: string } = {}): FleetPlan {
  return planFleet({
    fleetName: "web",
    project: "p",
    stack: "s",
    templateXml: extra.templateXml ?? TEMPLATE,
    keys: ["1", "2"],
    hwuuidPolicy: { kind: "derive" },
    namePattern: "{fleet}-{key}",
    imageDir: extra.imageDir,
  });
}

const URI = "qemu+ssh://admin@hv1/system";
const POOL = { name: "images", targetPath: "/pool", active: true };
function facts(o: Partial<StorageFacts> = {}): StorageFacts {
  return {
    uri: URI,
    volumes: new Map([
      ["/pool/tmpl.qcow2", { pool: "images", path: "/pool/tmpl.qcow2", format: "qcow2" }],
      ["/pool/tmpl_VARS.fd", { pool: "images", path: "/pool/tmpl_VARS.fd", format: "raw" }],
    ]),
    pools: [POOL],
    ...o,
  };
}

describe("fleet images as storage volumes (pure)", () => {
  it("local URIs: no host, no transport or unix; everything else is remote", () => {
    for (const u of ["qemu:///system", "qemu:///session", "qemu+unix:///system?socket=/run/x", "test:///default"])
      expect(isLocalUri(u), u).to.equal(true);
    for (const u of [
      "qemu+ssh://root@hv1/system",
      "qemu+ssh://localhost/system",
      "qemu+tcp://hv1/system",
      "qemu://hv1/system",
      "qemu+tls://hv1/system",
      "qemu+libssh2://hv1/system",
    ])
      expect(isLocalUri(u), u).to.equal(false);
  });

  it("the rule: remote always volumes; local volumes only when every template image is a pool volume and every members' directory a running pool's; QEMU-direct files", () => {
    const p = plan();
    expect(fleetStorage(URI, false, p, facts({ volumes: new Map(), pools: [] }))).to.equal("volumes");
    expect(fleetStorage("qemu:///system", false, p, facts())).to.equal("volumes");
    const partly = facts({ volumes: new Map([["/pool/tmpl.qcow2", { pool: "images", path: "/pool/tmpl.qcow2" }]]) });
    expect(fleetStorage("qemu:///system", false, p, partly), "the NVRAM is in no pool").to.equal("files");
    expect(fleetStorage("qemu:///system", false, p, undefined)).to.equal("files");
    expect(
      fleetStorage("qemu:///system", false, plan({ imageDir: "/members" }), facts()),
      "imageDir in no pool",
    ).to.equal("files");
    expect(fleetStorage(URI, false, plan({ imageDir: "/members" }), facts()), "remote: refused later").to.equal(
      "volumes",
    );
    expect(fleetStorage("qemu-direct:///var/lib/x", true, p, facts())).to.equal("files");
  });

  it("the images a plan makes: writable disks and NVRAM copies, never a shared read-only disk", () => {
    expect(imagesOf(plan())).to.deep.equal({ sources: ["/pool/tmpl.qcow2", "/pool/tmpl_VARS.fd"], dirs: ["/pool"] });
  });

  it("places each member disk and NVRAM copy as a volume of the pool of its directory; the XML path is the volume's", () => {
    const r = planVolumes(plan(), facts());
    expect(r.refusals).to.deep.equal([]);
    const [m1] = r.plan.members;
    expect(m1!.disks.map((d) => [d.target, d.mode, d.volume])).to.deep.equal([
      ["vda", "overlay", { pool: "images", name: "web-1-vda.qcow2" }],
      ["sda", "share", undefined],
    ]);
    expect(m1!.disks[0]!.path).to.equal("/pool/web-1-vda.qcow2");
    expect(m1!.nvram).to.deep.equal({
      source: "/pool/tmpl_VARS.fd",
      path: "/pool/web-1_VARS.fd",
      volume: { pool: "images", name: "web-1_VARS.fd" },
    });
    expect(m1!.xml).to.contain("<source file='/pool/web-1-vda.qcow2'/>");
  });

  it("a template disk outside any pool: one refusal per disk (not per member) naming the disk, the directory and the fix", () => {
    const r = planVolumes(plan(), facts({ volumes: new Map(), pools: [] }));
    const disk = r.refusals.filter((x) => x.path === "/domain/devices/disk[target=vda]");
    expect(disk.length).to.equal(1);
    expect(disk[0]!.reason)
      .to.contain("/pool/tmpl.qcow2 is in /pool, which is no storage pool's on " + URI)
      .and.contain(`virsh -c ${URI} pool-define-as NAME dir --target /pool`)
      .and.contain("pool-start NAME")
      .and.contain("definePools: true");
    expect(r.refusals.some((x) => x.path === "/domain/os/nvram")).to.equal(true);
    expect(dirsWithoutPool(plan(), facts({ volumes: new Map(), pools: [] }))).to.deep.equal(["/pool"]);
  });

  it("members' directory (imageDir) with no pool, or a pool not running: refused naming the fix", () => {
    const r = planVolumes(plan({ imageDir: "/members" }), facts());
    expect(r.refusals.map((x) => x.reason).join("\n")).to.contain(
      `the members' directory /members is no storage pool's on ${URI}; fix: define the directory as a pool (virsh -c ${URI} pool-define-as NAME dir --target /members`,
    );
    expect(dirsWithoutPool(plan({ imageDir: "/members" }), facts())).to.deep.equal(["/members"]);
    const idle = planVolumes(
      plan({ imageDir: "/members" }),
      facts({ pools: [POOL, { name: "m", targetPath: "/members", active: false }] }),
    );
    expect(idle.refusals.map((x) => x.reason).join("\n")).to.contain(`virsh -c ${URI} pool-start m`);
    const ok = planVolumes(
      plan({ imageDir: "/members" }),
      facts({ pools: [POOL, { name: "m", targetPath: "/members", active: true }] }),
    );
    expect(ok.refusals).to.deep.equal([]);
    expect(ok.plan.members[0]!.disks[0]!.volume).to.deep.equal({ pool: "m", name: "web-1-vda.qcow2" });
  });

  it("a template whose XML says raw for a qcow2 volume is refused naming the driver type to write", () => {
    const raw = TEMPLATE.replace(
      "type='qcow2'/><source file='/pool/tmpl.qcow2'",
      "type='raw'/><source file='/pool/tmpl.qcow2'",
    );
    const r = planVolumes(plan({ templateXml: raw }), facts());
    expect(r.refusals.map((x) => x.reason).join()).to.contain("<driver type='qcow2'/>");
  });

  it("a template disk of type='volume' is written as the file disk it is once its path is known; unresolved ones stay", () => {
    const t = TEMPLATE.replace(
      "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/pool/tmpl.qcow2'/>",
      "<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/><source pool='images' volume='tmpl.qcow2'/>",
    );
    expect(volumeDisksOf(t)).to.deep.equal([{ pool: "images", volume: "tmpl.qcow2" }]);
    const asFile = volumeDisksAsFiles(t, new Map([["images\ntmpl.qcow2", "/pool/tmpl.qcow2"]]));
    expect(asFile).to.contain("<disk type='file' device='disk'>").and.contain("<source file='/pool/tmpl.qcow2'/>");
    expect(volumeDisksAsFiles(t, new Map())).to.equal(t);
    const r = planVolumes(plan({ templateXml: asFile }), facts());
    expect(r.refusals).to.deep.equal([]);
    expect(r.plan.members[0]!.disks[0]!.volume).to.deep.equal({ pool: "images", name: "web-1-vda.qcow2" });
  });
});
