/**
 * Identity, read inside the guest: the tiny guest (scripts/guest.sh) booted through the Domain
 * provider prints what its own OS reads (`/sys/class/dmi/id/product_uuid`, `product_serial`) on
 * its serial console, a file this test reads. One row a case; each row names its lab and
 * backend: the hwuuid (native `<hwuuid>` on libvirt 12.x, passthrough on libvirt 9.0, QEMU's
 * -uuid under QEMU-direct 7.2 and 11.x), the libvirt uuid when there is no hwuuid, a
 * `<sysinfo>` serial, a rename (re-create: new libvirt uuid, same guest UUID) and each member of
 * a fleet (its own derived hwuuid, never the template's). Rows boot at once, four at a time.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { backendFor } from "../../provider/backends/domain-backend";
import { VirshBackend } from "../../provider/backends/virsh/virsh-backend";
import * as disk from "../../provider/dynamic/disk";
import * as impl from "../../provider/dynamic/impl";
import { planFleet } from "../../provider/fleet/plan";
import { checkAndCreate, RUN_PREFIX } from "../support/domains";
import {
  GUEST_TARGET_LABELS,
  GuestConsole,
  guestDomainXml,
  GuestReport,
  GuestTarget,
  guestTarget,
  GuestTargetKind,
  inParallel,
} from "../support/guest";

const SERIAL = "LVD serial 7";

/** One identity row: what it checks, on which target. */
interface Row {
  readonly title: string;
  readonly kind: GuestTargetKind;
  readonly run: (t: GuestTarget, name: string, track: (uri: string, name: string) => void) => Promise<void>;
}

/** The Domain's `xml`: the tiny guest with its console in `consoleDir/NAME.console`. */
function guestXml(t: GuestTarget, name: string, sysinfoSerial?: string): { xml: string; console: GuestConsole } {
  const consolePath = path.join(t.consoleDir, `${name}.console`);
  fs.rmSync(consolePath, { force: true });
  let xml = guestDomainXml({ name, image: t.image, consolePath });
  if (sysinfoSerial !== undefined)
    xml = xml
      .replace("</os>", "  <smbios mode='sysinfo'/>\n  </os>")
      .replace(
        "</domain>",
        `  <sysinfo type='smbios'><system><entry name='serial'>${sysinfoSerial}</entry></system></sysinfo>\n</domain>`,
      );
  return { xml, console: new GuestConsole(consolePath) };
}

/** Creates the Domain through the provider and returns its outputs and the guest's first report. */
async function boot(
  t: GuestTarget,
  name: string,
  track: (uri: string, name: string) => void,
  extra: { hwuuid?: string; sysinfoSerial?: string } = {},
): Promise<{ outs: impl.DomainOutputs; report: GuestReport }> {
  const { xml, console: con } = guestXml(t, name, extra.sysinfoSerial);
  track(t.uri, name);
  const a = await checkAndCreate({
    name,
    xml,
    ...(extra.hwuuid === undefined ? {} : { hwuuid: extra.hwuuid }),
    connection: { uri: t.uri },
    shutdownTimeoutSeconds: 0,
  });
  return { outs: a.outs, report: await con.report() };
}

/** The mode the provider resolves on the target, where it says one. */
function expectMode(kind: GuestTargetKind, outs: impl.DomainOutputs): void {
  if (kind === "libvirt-12") expect(outs.hwuuidMode).to.equal("native");
  if (kind === "libvirt-9") expect(outs.hwuuidMode).to.equal("passthrough");
}

const hwuuidRow = (kind: GuestTargetKind): Row => ({
  kind,
  title: "the guest OS reads the hwuuid as its product_uuid, not the libvirt uuid",
  run: async (t, name, track) => {
    const hw = randomUUID();
    const { outs, report } = await boot(t, name, track, { hwuuid: hw });
    expectMode(kind, outs);
    expect(report.productUuid, "product_uuid").to.equal(hw);
    expect(outs.uuid).to.not.equal(hw);
    expect(outs.guestUuid).to.equal(hw);
    await impl.remove(name, outs);
  },
});

const noHwuuidRow = (kind: GuestTargetKind): Row => ({
  kind,
  title: "with no hwuuid the guest OS reads the libvirt uuid",
  run: async (t, name, track) => {
    const { outs, report } = await boot(t, name, track);
    expect(report.productUuid, "product_uuid").to.equal(outs.uuid);
    expect(outs.guestUuid).to.equal(outs.uuid);
    await impl.remove(name, outs);
  },
});

const sysinfoRow = (kind: GuestTargetKind): Row => ({
  kind,
  title: "with a <sysinfo> serial the guest OS reads it as product_serial, and the hwuuid as product_uuid",
  run: async (t, name, track) => {
    const hw = randomUUID();
    const { outs, report } = await boot(t, name, track, { hwuuid: hw, sysinfoSerial: SERIAL });
    expect(report.productSerial, "product_serial").to.equal(SERIAL);
    expect(report.productUuid, "product_uuid").to.equal(hw);
    await impl.remove(name, outs);
  },
});

const renameRow = (kind: GuestTargetKind): Row => ({
  kind,
  title: "a rename re-creates the domain: new libvirt uuid, the guest OS reads the same product_uuid",
  run: async (t, name, track) => {
    const hw = randomUUID();
    const { xml, console: first } = guestXml(t, name);
    const inputs = { name, xml, hwuuid: hw, connection: { uri: t.uri }, shutdownTimeoutSeconds: 0 };
    track(t.uri, name);
    const a = await checkAndCreate(inputs);
    expect((await first.report()).productUuid, "product_uuid before the rename").to.equal(hw);

    const name2 = `${name}-2`;
    const renamed = guestXml(t, name2);
    track(t.uri, name2);
    const c = await impl.check(a.outs, { ...inputs, name: name2, xml: renamed.xml });
    expect(c.failures).to.deep.equal([]);
    expect((await impl.diff(name, a.outs, c.inputs)).replaces).to.include("name");
    const b = await impl.create(c.inputs); // create before delete, as the engine replaces
    await impl.remove(name, a.outs);
    expect(b.outs.uuid, "the new libvirt uuid").to.not.equal(a.outs.uuid);
    expect((await renamed.console.report()).productUuid, "product_uuid after the rename").to.equal(hw);
    await impl.remove(name2, b.outs);
  },
});

/** The template (shut off, never started): the tiny guest with a small virtio disk. */
async function defineTemplate(t: GuestTarget, name: string, hwuuid: string | undefined): Promise<string> {
  const img = path.join(t.consoleDir, `${name}.qcow2`); // the members' overlays go beside it
  fs.rmSync(img, { force: true });
  const { xml } = guestXml(t, name);
  const devices = `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${img}'/><target dev='vda' bus='virtio'/><serial>TMPL-ROOT</serial></disk>`;
  const v = new VirshBackend(t.uri);
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", img, "16M"]);
  await v.define(
    xml
      .replace("<devices>", `<devices>\n    ${devices}`)
      .replace("<vcpu>", hwuuid === undefined ? "<vcpu>" : `<hwuuid>${hwuuid}</hwuuid>\n  <vcpu>`),
  );
  return img;
}

const fleetRow = (kind: GuestTargetKind): Row => ({
  kind,
  title: "each fleet member's guest OS reads its own derived hwuuid, never the template's",
  run: async (t, name, track) => {
    const tmpl = `${name}-tmpl`;
    track(t.uri, tmpl);
    const v = new VirshBackend(t.uri);
    const templateHw = kind === "libvirt-12" ? randomUUID() : undefined; // <hwuuid> needs libvirt >= 11.7
    const img = await defineTemplate(t, tmpl, templateHw);
    try {
      const templateGuestUuid = templateHw ?? (await v.domuuid(tmpl));
      const plan = planFleet({
        fleetName: name,
        project: "lab",
        stack: "identity",
        keys: ["1", "2"],
        hwuuidPolicy: { kind: "derive" },
        namePattern: "{fleet}-{key}",
        templateXml: await v.dumpxmlInactive(tmpl),
      });
      expect(plan.refusals).to.deep.equal([]);
      const members = await Promise.all(
        plan.members.map(async (m) => {
          track(t.uri, m.name);
          const disks: Record<string, unknown>[] = [];
          for (const d of m.disks.filter((x) => x.mode !== "share")) {
            const c = await disk.check(
              {},
              { path: d.path, source: d.source, sourceFormat: d.sourceFormat, mode: d.mode, replaceTrigger: "t" },
            );
            expect(c.failures).to.deep.equal([]);
            disks.push((await disk.create(c.inputs)).outs);
          }
          const consolePath = /<serial type=["']file["']>\s*<source path=["']([^"']+)["']/.exec(m.xml)?.[1];
          if (consolePath === undefined) throw new Error(`member ${m.name}: no <serial type='file'> in ${m.xml}`);
          fs.rmSync(consolePath, { force: true });
          const dom = await checkAndCreate({
            name: m.name,
            xml: m.xml,
            hwuuid: m.hwuuid,
            connection: { uri: t.uri },
            shutdownTimeoutSeconds: 0,
          });
          const report = await new GuestConsole(consolePath).report();
          return { m, disks, dom, report, consolePath };
        }),
      );
      for (const { m, dom, report } of members) {
        expect(report.productUuid, `${m.name}: product_uuid`).to.equal(m.hwuuid);
        expect(report.productUuid, `${m.name}: product_uuid`).to.not.equal(templateGuestUuid);
        expect(dom.outs.uuid, `${m.name}: libvirt uuid`).to.not.equal(m.hwuuid);
        expect(report.disks.map((d) => d.serial)).to.deep.equal([`TMPL-ROOT-${m.name.slice(-1)}`]);
      }
      expect(new Set(members.map((x) => x.report.productUuid)).size, "distinct guest UUIDs").to.equal(2);
      for (const { m, disks, dom, consolePath } of members) {
        await impl.remove(m.name, dom.outs);
        for (const d of disks) await disk.remove(d.path as string, d);
        fs.rmSync(consolePath, { force: true });
      }
    } finally {
      await v.undefine(tmpl).catch(() => undefined);
      fs.rmSync(img, { force: true });
    }
  },
});

const ROWS: readonly Row[] = [
  hwuuidRow("libvirt-12"),
  hwuuidRow("libvirt-9"),
  hwuuidRow("direct-7.2"),
  hwuuidRow("direct-11"),
  noHwuuidRow("libvirt-12"),
  noHwuuidRow("libvirt-9"),
  noHwuuidRow("direct-7.2"),
  sysinfoRow("libvirt-12"),
  sysinfoRow("libvirt-9"),
  sysinfoRow("direct-11"),
  renameRow("libvirt-12"),
  renameRow("libvirt-9"),
  fleetRow("libvirt-12"),
  fleetRow("libvirt-9"),
];

describe("identity read inside the guest OS, through the Domain provider", function () {
  this.timeout(600000);
  const prefix = `${RUN_PREFIX}-gi-`;
  let work: string;
  const made: { uri: string; name: string }[] = [];
  const track = (uri: string, name: string): void => void made.push({ uri, name });
  const results: Promise<void>[] = [];
  const targets = new Map<GuestTargetKind, GuestTarget>();

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-identity-"));
    for (const r of ROWS) if (!targets.has(r.kind)) targets.set(r.kind, await guestTarget(r.kind, work));
    results.push(
      ...inParallel(
        ROWS.map((r, i) => () => r.run(targets.get(r.kind)!, `${prefix}${i + 1}`, track)),
        4,
      ),
    );
  });
  after(async () => {
    for (const m of made.reverse()) {
      const b = backendFor(m.uri);
      if (await b.exists(m.name).catch(() => false)) await b.destroyAndUndefine(m.name).catch(() => undefined);
    }
    for (const t of targets.values())
      for (const f of fs.readdirSync(t.consoleDir))
        if (f.startsWith(prefix)) fs.rmSync(path.join(t.consoleDir, f), { force: true });
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  ROWS.forEach((r, i) => {
    it(`${GUEST_TARGET_LABELS[r.kind]}: ${r.title}`, () => results[i]);
  });
});
