/**
 * Each change classified before it is applied, against the running state (`classifyAgainst`):
 * `live` for what libvirt applies to a running guest (a whole NIC or hot-pluggable disk added or
 * removed, CD-ROM media, `<currentMemory>` within `<memory>`, `<vcpu current>` within the
 * maximum), `next-boot` on a stopped domain, `restart` where the backend cannot apply live
 * (QEMU-direct); and the live step of an update (`lifecycle/live.ts`) against fake operations.
 */
import { expect } from "chai";
import { CHANGE_CLASS_ORDER, classifyChanges, ClassifyContext, diffDomains } from "../../provider/diff/semantic";
import { backendFor, type DomainRef, type LiveDomainOps } from "../../provider/backends/domain-backend";
import { applyLiveChanges, liveUpdate, pendingLines } from "../../provider/lifecycle/live";
import { formatPreviewReport, readPreview } from "../../provider/report/preview";
import { DomainDef } from "../../provider/xml/domain";
import { VirshError } from "../../provider/backends/virsh/exec";

const NIC = "<interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/></interface>";
const VDB = "<disk type='file' device='disk'><source file='/i/b.raw'/><target dev='vdb' bus='virtio'/></disk>";
const SDA_SATA = "<disk type='file' device='disk'><source file='/i/s.raw'/><target dev='sda' bus='sata'/></disk>";
const CDROM = (f: string) =>
  `<disk type='file' device='cdrom'><source file='${f}'/><target dev='hdc' bus='ide'/><readonly/></disk>`;

function dom(o: { mem?: number; cur?: number; vcpu?: string; devices?: string } = {}): string {
  return `<domain type='qemu'><name>d</name><memory unit='MiB'>${o.mem ?? 256}</memory><currentMemory unit='MiB'>${o.cur ?? 256}</currentMemory>${o.vcpu ?? "<vcpu current='1'>2</vcpu>"}<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>${o.devices ?? ""}</devices></domain>`;
}

/** path -> class, for desired vs actual in a context. */
function classes(desired: string, actual: string, ctx: Partial<ClassifyContext> = {}): Record<string, string> {
  const d = DomainDef.parse(desired);
  const a = DomainDef.parse(actual);
  const changes = diffDomains(d, a).changes;
  const full: ClassifyContext = { running: true, liveCapable: true, desired: d, actual: a, ...ctx };
  return Object.fromEntries(classifyChanges(changes, full).map((c) => [c.path, c.class]));
}

describe("live changes: classification against the running state", () => {
  it("the class order is none, live, next-boot, restart, replace", () => {
    expect(CHANGE_CLASS_ORDER).to.deep.equal(["none", "live", "next-boot", "restart", "replace"]);
  });

  it("a NIC or a virtio disk added or removed is live on a running domain", () => {
    expect(classes(dom({ devices: NIC + VDB }), dom())).to.deep.equal({
      "/domain/devices/interface[mac=52:54:00:00:00:01]": "live",
      "/domain/devices/disk[target=vdb]": "live",
    });
    expect(classes(dom(), dom({ devices: NIC + VDB }))).to.deep.equal({
      "/domain/devices/interface[mac=52:54:00:00:00:01]": "live",
      "/domain/devices/disk[target=vdb]": "live",
    });
  });

  it("a SATA disk cannot be hot-plugged: restart", () => {
    expect(classes(dom({ devices: SDA_SATA }), dom())).to.deep.equal({ "/domain/devices/disk[target=sda]": "restart" });
  });

  it("a change inside a device (the NIC's model) is a restart, not live", () => {
    expect(classes(dom({ devices: NIC.replace("virtio", "e1000") }), dom({ devices: NIC }))).to.deep.equal({
      "/domain/devices/interface[mac=52:54:00:00:00:01]/model/@type": "restart",
    });
  });

  it("CD-ROM media: a new source file is live", () => {
    expect(classes(dom({ devices: CDROM("/i/b.iso") }), dom({ devices: CDROM("/i/a.iso") }))).to.deep.equal({
      "/domain/devices/disk[target=hdc]/source/@file": "live",
    });
  });

  it("currentMemory within <memory> is live (setmem); beyond it, or with <memory> changing, a restart", () => {
    expect(classes(dom({ cur: 192 }), dom())).to.deep.equal({ "/domain/currentMemory": "live" });
    expect(classes(dom({ mem: 512, cur: 384 }), dom())).to.deep.equal({
      "/domain/memory": "restart",
      "/domain/currentMemory": "restart",
    });
    // The running guest's maximum decides too: the definition says 512 MiB, the guest runs with 256.
    expect(
      classes(dom({ mem: 512, cur: 384 }), dom({ mem: 512, cur: 256 }), { live: DomainDef.parse(dom()) }),
    ).to.deep.equal({ "/domain/currentMemory": "restart" });
  });

  it("vcpu current within the maximum is live (setvcpus); a new maximum is a restart", () => {
    expect(classes(dom({ vcpu: "<vcpu current='2'>2</vcpu>" }), dom())).to.deep.equal({
      "/domain/vcpu/@current": "live",
    });
    expect(classes(dom({ vcpu: "<vcpu current='2'>4</vcpu>" }), dom())).to.deep.equal({
      "/domain/vcpu": "restart",
      "/domain/vcpu/@current": "restart",
    });
  });

  it("<vcpu current> equal to the maximum is libvirt's default (it writes none): no change", () => {
    expect(classes(dom({ vcpu: "<vcpu current='2'>2</vcpu>" }), dom({ vcpu: "<vcpu>2</vcpu>" }))).to.deep.equal({});
  });

  it("what the running guest already has (only the definition differs) is a redefine: none", () => {
    const live = DomainDef.parse(dom({ vcpu: "<vcpu>2</vcpu>", devices: NIC + CDROM("/i/b.iso") }));
    expect(
      classes(
        dom({ vcpu: "<vcpu current='2'>2</vcpu>", devices: NIC + CDROM("/i/b.iso") }),
        dom({ devices: VDB + CDROM("/i/a.iso") }),
        {
          live,
        },
      ),
    ).to.deep.equal({
      "/domain/vcpu/@current": "none",
      "/domain/devices/interface[mac=52:54:00:00:00:01]": "none",
      "/domain/devices/disk[target=hdc]/source/@file": "none",
      "/domain/devices/disk[target=vdb]": "none",
    });
  });

  it("a stopped domain takes everything by a redefine: next-boot (replace stays replace)", () => {
    expect(
      classes(dom({ cur: 192, devices: NIC + SDA_SATA }).replace("<name>d</name>", "<name>e</name>"), dom(), {
        running: false,
      }),
    ).to.deep.equal({
      "/domain/name": "replace",
      "/domain/currentMemory": "next-boot",
      "/domain/devices/interface[mac=52:54:00:00:00:01]": "next-boot",
      "/domain/devices/disk[target=sda]": "next-boot",
    });
  });

  it("the QEMU-direct backend offers no live changes; the virsh backend does", () => {
    expect(backendFor("qemu-direct:///var/lib/x").live).to.equal(undefined);
    expect(backendFor("qemu:///system").live).to.not.equal(undefined);
  });

  it("a backend without live changes (QEMU-direct): what would be live is a restart", () => {
    expect(classes(dom({ cur: 192, devices: NIC }), dom(), { liveCapable: false })).to.deep.equal({
      "/domain/currentMemory": "restart",
      "/domain/devices/interface[mac=52:54:00:00:00:01]": "restart",
    });
  });
});

/** Fake live operations: records calls, refuses what `refuse` matches, keeps a live XML. */
function fakeOps(liveXml: string, refuse?: RegExp, afterDetach = liveXml): { ops: LiveDomainOps; calls: string[] } {
  const calls: string[] = [];
  const call = (s: string) => {
    calls.push(s);
    if (refuse?.test(s))
      throw new VirshError("test:///default", [s.split(" ")[0] ?? ""], 1, `error: no: ${s.split(" ")[0]}`, "");
    return Promise.resolve();
  };
  const ops: LiveDomainOps = {
    attachDeviceLive: (_r: DomainRef, xml: string) => call(`attach ${xml}`),
    detachDeviceLive: (_r: DomainRef, xml: string) => call(`detach ${xml}`),
    changeMediaLive: (_r: DomainRef, t: string, s: string) => call(`change-media ${t} ${s}`),
    setMemoryLive: (_r: DomainRef, kib: bigint) => call(`setmem ${kib}`),
    setVcpusLive: (_r: DomainRef, n: number) => call(`setvcpus ${n}`),
    dumpxmlLive: () => Promise.resolve(calls.some((c) => c.startsWith("detach")) ? afterDetach : liveXml),
  };
  return { ops, calls };
}

describe("live changes: the live step of an update (fake operations)", () => {
  const ref = { name: "d", uuid: "33721861-ccee-4dc2-858c-5f1e4629771f" };

  it("applies each live change with its operation, unplug first; the rest is left for the redefine", async () => {
    const desired = DomainDef.parse(
      dom({ cur: 192, vcpu: "<vcpu current='2'>2</vcpu>", devices: VDB + CDROM("/i/b.iso") }),
    );
    const actual = DomainDef.parse(dom({ devices: NIC + CDROM("/i/a.iso") }));
    const { ops, calls } = fakeOps(
      dom({ devices: NIC + CDROM("/i/a.iso") }),
      undefined,
      dom({ devices: CDROM("/i/a.iso") }),
    );
    const changes = diffDomains(desired, actual).changes;
    const r = await liveUpdate({ live: ops }, ref, changes, desired, actual, "running");
    expect(calls.map((c) => c.split(" ")[0])).to.deep.equal(["detach", "attach", "change-media", "setvcpus", "setmem"]);
    expect(calls).to.include("change-media hdc /i/b.iso");
    expect(calls).to.include(`setmem ${192 * 1024}`);
    expect(calls).to.include("setvcpus 2");
    expect(calls.find((c) => c.startsWith("attach"))).to.contain("<target dev='vdb' bus='virtio'/>");
    expect(calls.find((c) => c.startsWith("detach"))).to.contain("52:54:00:00:00:01");
    expect(r.refused).to.deep.equal([]);
    expect(r.remaining).to.deep.equal([]);
  });

  it("a change libvirt refuses waits for a restart, with libvirt's reason; the others are applied", async () => {
    const desired = DomainDef.parse(dom({ cur: 192, devices: VDB }));
    const actual = DomainDef.parse(dom());
    const { ops } = fakeOps(dom(), /^attach/);
    const changes = diffDomains(desired, actual).changes;
    const r = await liveUpdate({ live: ops }, ref, changes, desired, actual, "running");
    expect(r.applied.map((c) => c.path)).to.deep.equal(["/domain/currentMemory"]);
    expect(r.remaining.map((c) => [c.path, c.class])).to.deep.equal([["/domain/devices/disk[target=vdb]", "restart"]]);
    expect(pendingLines(r.remaining, r.refused)).to.deep.equal([
      "/domain/devices/disk[target=vdb]: libvirt refused to apply it live: no: attach",
    ]);
  });

  it("a device the running guest still holds after the unplug wait is reported, not counted as applied", async () => {
    const desired = DomainDef.parse(dom());
    const actual = DomainDef.parse(dom({ devices: NIC }));
    const { ops } = fakeOps(dom({ devices: NIC })); // the live XML keeps the NIC
    const changes = classifyChanges(diffDomains(desired, actual).changes, {
      running: true,
      liveCapable: true,
      desired,
      actual,
    });
    const t0 = Date.now();
    const r = await applyLiveChanges(ops, ref, changes, desired, actual, 1000);
    expect(Date.now() - t0, "waited for the unplug, bounded").to.be.within(1000, 5000);
    expect(r.applied).to.deep.equal([]);
    expect(r.refused.map((x) => x.reason)).to.deep.equal([
      "the running guest has not released the device within 1 s (libvirt asked it to; the definition no longer has it)",
    ]);
  });

  it("a stopped domain, or a backend without live operations: nothing is applied live", async () => {
    const desired = DomainDef.parse(dom({ cur: 192 }));
    const actual = DomainDef.parse(dom());
    const { ops, calls } = fakeOps(dom());
    const changes = diffDomains(desired, actual).changes;
    const stopped = await liveUpdate({ live: ops }, ref, changes, desired, actual, "shut off");
    expect(calls).to.deep.equal([]);
    expect(stopped.remaining.map((c) => c.class)).to.deep.equal(["next-boot"]);
    const direct = await liveUpdate({}, ref, changes, desired, actual, "running");
    expect(direct.remaining.map((c) => c.class)).to.deep.equal(["restart"]);
  });
});

describe("live changes: the preview report shows each path's class against the state", () => {
  const step = (state: string, uri?: string) => ({
    steps: [
      {
        op: "update",
        urn: "urn:pulumi:e2e::p::pulumi-nodejs:dynamic/libvirt-domain:Resource::d",
        oldState: {
          type: "pulumi-nodejs:dynamic/libvirt-domain:Resource",
          outputs: { name: "d", xml: dom(), state, guestUuid: "x", connection: uri ? { uri } : undefined },
        },
        newState: {
          type: "pulumi-nodejs:dynamic/libvirt-domain:Resource",
          inputs: { name: "d", xml: dom({ cur: 192, devices: NIC }), connection: uri ? { uri } : undefined },
        },
      },
    ],
  });
  it("running: live, no restart needed", () => {
    const p = readPreview(step("running"));
    expect(p[0]!.changes.map((c) => c.class)).to.deep.equal(["live", "live"]);
    expect(p[0]!.restart).to.equal(false);
    const md = formatPreviewReport(p);
    expect(md).to.contain("| `/domain/currentMemory` | `262144 KiB` | `196608 KiB` | live |");
    expect(md).to.match(/\| `d` \| update \| no \|/);
  });
  it("shut off: next-boot; QEMU-direct: restart", () => {
    expect(readPreview(step("shut off"))[0]!.changes.map((c) => c.class)).to.deep.equal(["next-boot", "next-boot"]);
    const direct = readPreview(step("running", "qemu-direct:///var/lib/x"))[0]!;
    expect(direct.changes.map((c) => c.class)).to.deep.equal(["restart", "restart"]);
    expect(direct.restart).to.equal(true);
  });
});
