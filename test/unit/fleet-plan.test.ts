/** The fleet planner: determinism, uniqueness, each hwuuid policy, each disk mode, each refusal. */
import { expect } from "chai";
import { DomainDef } from "../../provider/xml/domain";
import { resolveIdentity } from "../../provider/xml/identity";
import { FleetOptions, FleetPlan, fleetNamespace, MemberPlan, planFleet } from "../../provider/fleet/plan";

const H = "5d5b0f1d-128b-4517-8e65-b258a8734c1d";
const TEMPLATE = `<domain type='qemu'>
  <name>tmpl</name>
  <uuid>33721861-ccee-4dc2-858c-5f1e4629771f</uuid>
  <hwuuid>${H}</hwuuid>
  <genid>43dc0cf8-809b-4adb-9bea-a9abb5f3d90d</genid>
  <title>Web template</title>
  <memory unit='KiB'>65536</memory>
  <sysinfo type='smbios'><system><entry name='manufacturer'>Example</entry><entry name='uuid'>${H}</entry></system></sysinfo>
  <os><type arch='x86_64' machine='pc'>hvm</type><nvram>/img/tmpl_VARS.fd</nvram></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/img/tmpl.qcow2'/><target dev='vda' bus='virtio'/><serial>ROOT-1</serial><alias name='virtio-disk0'/></disk>
    <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='/img/seed.iso'/><target dev='sda' bus='sata'/><readonly/></disk>
    <interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/><target dev='vnet0'/></interface>
    <serial type='file'><source path='/var/log/tmpl-serial.log'/></serial>
    <channel type='unix'><source mode='bind' path='/run/tmpl.agent'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <graphics type='vnc' port='5901' autoport='no'/>
  </devices>
</domain>`;

function opts(extra: Partial<FleetOptions> = {}): FleetOptions {
  return {
    fleetName: "web",
    project: "infra",
    stack: "prod",
    templateXml: TEMPLATE,
    keys: ["1", "2", "3"],
    hwuuidPolicy: { kind: "derive" },
    namePattern: "{fleet}-{key}",
    ...extra,
  };
}

/** Member `i` of a plan; fails the test naming the plan's size and refusals when it has fewer. */
function member(p: FleetPlan, i: number): MemberPlan {
  const m = p.members[i];
  if (!m)
    throw new Error(
      `the plan has ${p.members.length} members, no member ${i}; refusals: ${JSON.stringify(p.refusals)}`,
    );
  return m;
}

describe("fleet planner", () => {
  it("is deterministic", () => {
    expect(planFleet(opts())).to.deep.equal(planFleet(opts()));
  });
  it("names members {stack}-{fleet}-{key} by default, so two stacks never collide", () => {
    expect(planFleet(opts({ namePattern: undefined })).members.map((m) => m.name)).to.deep.equal([
      "prod-web-1",
      "prod-web-2",
      "prod-web-3",
    ]);
    expect(member(planFleet(opts({ namePattern: undefined, stack: "dev" })), 0).name).to.equal("dev-web-1");
  });
  it("names members from the pattern and gives each a unique hwuuid and MAC", () => {
    const p = planFleet(opts({ namePattern: "{fleet}-{index}" }));
    expect(p.refusals).to.deep.equal([]);
    expect(p.members.map((m) => m.name)).to.deep.equal(["web-1", "web-2", "web-3"]);
    expect(new Set(p.members.map((m) => m.hwuuid)).size).to.equal(3);
    expect(new Set(p.members.flatMap((m) => m.macs)).size).to.equal(3);
    for (const m of p.members) expect(m.macs[0]).to.match(/^52:54:00(:[0-9a-f]{2}){3}$/);
  });
  it("a member's plan depends only on its key (scaling leaves the others alone)", () => {
    const three = planFleet(opts());
    const five = planFleet(opts({ keys: ["1", "2", "3", "4", "5"] }));
    expect(five.members.slice(0, 3)).to.deep.equal(three.members);
  });
  it("derive: stable, distinct across stacks and fleets", () => {
    const a = member(planFleet(opts()), 0).hwuuid;
    expect(member(planFleet(opts({ stack: "dev" })), 0).hwuuid).to.not.equal(a);
    expect(member(planFleet(opts({ fleetName: "db" })), 0).hwuuid).to.not.equal(a);
    expect(fleetNamespace("infra", "prod", "web")).to.equal(fleetNamespace("infra", "prod", "web"));
  });
  it("keep: one member keeps the template's guest UUID; several are refused", () => {
    expect(member(planFleet(opts({ keys: ["1"], hwuuidPolicy: { kind: "keep" } })), 0).hwuuid).to.equal(H);
    const r = planFleet(opts({ hwuuidPolicy: { kind: "keep" } })).refusals;
    expect(r.map((x) => x.path)).to.deep.equal(["hwuuidPolicy"]);
    expect(r[0]?.reason).to.contain("share it");
  });
  it("explicit: uses the map; refuses missing, malformed, all-equal, duplicate and unknown keys", () => {
    const U2 = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
    const ok = planFleet(
      opts({ keys: ["a", "b"], hwuuidPolicy: { kind: "explicit", hwuuids: { a: H.toUpperCase(), b: U2 } } }),
    );
    expect(ok.refusals).to.deep.equal([]);
    expect(ok.members.map((m) => m.hwuuid)).to.deep.equal([H, U2]);
    const bad = planFleet(
      opts({
        keys: ["a", "b", "c", "d"],
        hwuuidPolicy: { kind: "explicit", hwuuids: { a: H, b: "nope", c: "0".repeat(32), zz: U2 } },
      }),
    );
    expect(bad.refusals.map((r) => r.path).sort()).to.deep.equal([
      "hwuuidPolicy.hwuuids.b",
      "hwuuidPolicy.hwuuids.c",
      "hwuuidPolicy.hwuuids.d",
      "hwuuidPolicy.hwuuids.zz",
    ]);
    const dup = planFleet(opts({ keys: ["a", "b"], hwuuidPolicy: { kind: "explicit", hwuuids: { a: H, b: H } } }));
    expect(dup.refusals[0]?.reason).to.contain("would share the hwuuid");
  });
  it("clears per-domain fields as virt-clone does, keeps the title, renews genid and disk serials", () => {
    const m = member(planFleet(opts()), 1);
    const d = DomainDef.parse(m.xml);
    expect(d.name).to.equal("web-2");
    expect(d.childText("uuid")).to.equal(undefined);
    expect(d.childText("hwuuid")).to.equal(undefined);
    expect(d.childText("title")).to.equal("Web template");
    expect(m.xml).to.contain("<genid/>");
    expect(m.xml).to.not.contain("43dc0cf8");
    expect(m.xml).to.not.contain("<entry name='uuid'>");
    expect(m.xml).to.contain("<graphics type='vnc' port='-1' autoport='yes'/>");
    expect(m.xml).to.not.contain("vnet0").and.not.contain("<alias").and.not.contain("/run/tmpl.agent");
    expect(m.xml).to.contain("/var/log/web-2-tmpl-serial.log");
    expect(m.xml).to.contain("<serial>ROOT-1-2</serial>");
    expect(resolveIdentity(d).uuid).to.equal(null);
  });
  it("overlay (default): a qcow2 per member backed by the template image; read-only disks shared", () => {
    const m = member(planFleet(opts()), 0);
    expect(m.disks).to.deep.equal([
      {
        target: "vda",
        mode: "overlay",
        source: "/img/tmpl.qcow2",
        sourceFormat: "qcow2",
        path: "/img/web-1-vda.qcow2",
        format: "qcow2",
      },
      {
        target: "sda",
        mode: "share",
        source: "/img/seed.iso",
        sourceFormat: "raw",
        path: "/img/seed.iso",
        format: "raw",
      },
    ]);
    expect(m.xml).to.contain("<source file='/img/web-1-vda.qcow2'/>").and.contain("<source file='/img/seed.iso'/>");
    expect(m.nvram).to.deep.equal({ source: "/img/tmpl_VARS.fd", path: "/img/web-1_VARS.fd" });
  });
  it("UEFI: with <nvram template> each member gets its own NVRAM file, made from the template variables at first start (nothing copied from the template domain's NVRAM)", () => {
    const efi = TEMPLATE.replace(
      "<nvram>/img/tmpl_VARS.fd</nvram>",
      "<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader><nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/var/lib/libvirt/qemu/nvram/tmpl_VARS.fd</nvram>",
    );
    const p = planFleet(opts({ templateXml: efi }));
    const paths = p.members.map((m) => {
      expect(m.nvram, m.name).to.equal(undefined);
      const nv = /<nvram([^>]*)>([^<]*)<\/nvram>/.exec(m.xml);
      expect(nv && nv[1], m.name).to.equal(" template='/usr/share/OVMF/OVMF_VARS_4M.fd'");
      return nv && nv[2];
    });
    expect(paths).to.deep.equal([
      "/var/lib/libvirt/qemu/nvram/web-1_VARS.fd",
      "/var/lib/libvirt/qemu/nvram/web-2_VARS.fd",
      "/var/lib/libvirt/qemu/nvram/web-3_VARS.fd",
    ]);
    const inDir = planFleet(opts({ templateXml: efi, imageDir: "/img/fleet" }));
    expect(member(inDir, 0).xml).to.contain(">/img/fleet/web-1_VARS.fd</nvram>");
    // An <nvram> naming no file stays so: each backend makes its own NAME_VARS.fd per domain.
    const noPath = planFleet(
      opts({ templateXml: efi.replace(">/var/lib/libvirt/qemu/nvram/tmpl_VARS.fd</nvram>", "/>") }),
    );
    expect(member(noPath, 0).nvram).to.equal(undefined);
    expect(member(noPath, 0).xml).to.contain("<nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'/>");
  });
  it("copy: a full copy in the source format, in imageDir", () => {
    const raw = TEMPLATE.replace(
      "type='qcow2'/><source file='/img/tmpl.qcow2'",
      "type='raw'/><source file='/img/tmpl.img'",
    );
    const m = member(planFleet(opts({ templateXml: raw, diskMode: "copy", imageDir: "/fleet" })), 0);
    expect(m.disks[0]).to.deep.equal({
      target: "vda",
      mode: "copy",
      source: "/img/tmpl.img",
      sourceFormat: "raw",
      path: "/fleet/web-1-vda.img",
      format: "raw",
    });
  });
  it("refuses: share of a writable disk, a raw block device to copy, a pool volume, a bad key, a bad name, a colliding name", () => {
    expect(planFleet(opts({ diskMode: "share" })).refusals[0]?.reason).to.contain("several members write");
    const block = TEMPLATE.replace(
      "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/img/tmpl.qcow2'/>",
      "<disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev/vg/tmpl'/>",
    );
    expect(planFleet(opts({ templateXml: block, diskMode: "copy" })).refusals[0]?.reason).to.contain(
      "raw block device",
    );
    expect(planFleet(opts({ templateXml: block })).refusals).to.deep.equal([]);
    const vol = TEMPLATE.replace(
      "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/img/tmpl.qcow2'/>",
      "<disk type='volume' device='disk'><source pool='default' volume='tmpl'/>",
    );
    expect(planFleet(opts({ templateXml: vol })).refusals[0]?.reason).to.contain("storage API");
    expect(planFleet(opts({ keys: ["a/b"] })).refusals[0]?.path).to.equal("keys");
    expect(planFleet(opts({ namePattern: "{fleet}/{key}" })).refusals[0]?.path).to.equal("namePattern");
    expect(
      planFleet(opts({ namePattern: "same" })).refusals.some((r) => r.reason.includes("would both be named")),
    ).to.equal(true);
    expect(planFleet(opts({ keys: ["1", "1"] })).refusals.some((r) => r.reason.includes("given twice"))).to.equal(true);
  });
  it("refuses a template libvirt would refuse, without throwing", () => {
    const p = planFleet(opts({ templateXml: TEMPLATE.replace(`<hwuuid>${H}</hwuuid>`, "<hwuuid>bad</hwuuid>") }));
    expect(p.members).to.deep.equal([]);
    expect(p.refusals[0]?.reason).to.contain("malformed hwuuid element");
  });
});
