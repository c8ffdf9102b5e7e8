/**
 * The Domain provider against real libvirt: libvirt 12.x (native <hwuuid>) and 9.0 (the
 * passthrough fallback). The guest-visible UUID is read over QMP (`query-uuid`).
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import { VirshBackend } from "../../provider/backends/virsh/virsh-backend";
import * as impl from "../../provider/dynamic/impl";
import { checkAndCreate, removeDomains, RUN_PREFIX, makeQcow2 } from "../support/domains";
import { Lab, requireLab } from "../support/lab";

const H = "5d5b0f1d-128b-4517-8e65-b258a8734c1d";
const QEMU_NS = "xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'";

function template(
  body: string,
  devices = "<serial type='pty'/><console type='pty'/>",
  head = "<domain type='qemu'>",
): string {
  return `${head}<name>x</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>${body}<devices>${devices}</devices></domain>`;
}
const OS = "<os><type arch='x86_64' machine='pc'>hvm</type></os>";

describe("Domain provider on libvirt 12.x (native hwuuid)", function () {
  let lab: Lab;
  const prefix = `${RUN_PREFIX}-n-`;
  before(async () => {
    lab = await requireLab("new");
  });
  after(async () => removeDomains(lab.uri, prefix));

  it("create with a hwuuid: QMP query-uuid gives the hwuuid, domuuid the uuid; a rename re-creates with a new uuid, same guest UUID", async () => {
    const inputs = {
      name: `${prefix}web`,
      hwuuid: H.toUpperCase(),
      connection: { uri: lab.uri },
      shutdownTimeoutSeconds: 0,
    };
    const a = await checkAndCreate(inputs);
    const b = new VirshBackend(lab.uri);
    expect(a.outs.hwuuidMode).to.equal("native");
    expect(a.outs.state).to.equal("running");
    expect(await b.queryGuestUuid(a.id)).to.equal(H);
    expect(await b.domuuid(a.id)).to.equal(a.outs.uuid);
    expect(a.outs.uuid).to.not.equal(H);
    expect(a.outs.guestUuid).to.equal(H);

    const renamed = { ...inputs, name: `${prefix}web2` };
    const c = await impl.check(a.outs, renamed);
    const d = await impl.diff(a.id, a.outs, c.inputs);
    expect(d.replaces).to.include("name");
    expect(d.deleteBeforeReplace).to.equal(false);
    const r = await impl.create(c.inputs);
    await impl.remove(a.id, a.outs);
    expect(r.outs.uuid).to.not.equal(a.outs.uuid);
    expect(await b.queryGuestUuid(r.id)).to.equal(H);
    expect(await b.exists(a.id)).to.equal(false);
    await impl.remove(r.id, r.outs);
    expect(await b.exists(r.id)).to.equal(false);
  });

  it("update: memory change redefines keeping the uuid and sets pendingRestart; restartOnChange restarts", async () => {
    const inputs = {
      name: `${prefix}upd`,
      hwuuid: H,
      memory: "64 MiB",
      connection: { uri: lab.uri },
      shutdownTimeoutSeconds: 0,
    };
    const a = await checkAndCreate(inputs);
    const c = await impl.check(a.outs, { ...inputs, memory: "96 MiB" });
    expect((await impl.diff(a.id, a.outs, c.inputs)).changes).to.equal(true);
    const u = await impl.update(a.id, a.outs, c.inputs);
    expect(u.outs.uuid).to.equal(a.outs.uuid);
    expect(u.outs.pendingRestart).to.equal(true);
    expect(u.outs.xml).to.contain("<memory unit='KiB'>98304</memory>");
    const c2 = await impl.check(u.outs, { ...inputs, memory: "96 MiB", restartOnChange: true });
    const u2 = await impl.update(a.id, u.outs, c2.inputs);
    expect(u2.outs.pendingRestart).to.equal(false);
    expect(u2.outs.state).to.equal("running");
    const c3 = await impl.check(u2.outs, { ...inputs, memory: "96 MiB", restartOnChange: true });
    expect((await impl.diff(a.id, u2.outs, c3.inputs)).changes, "no perpetual diff after update").to.equal(false);
    await impl.remove(a.id, u2.outs);
  });

  it("a program that leaves out running: refresh adds nothing that shows as a change (no perpetual diff after refresh)", async () => {
    const inputs = { name: `${prefix}norun`, connection: { uri: lab.uri }, shutdownTimeoutSeconds: 0 };
    const a = await checkAndCreate(inputs);
    const r = await impl.read(a.id, a.outs);
    expect(r.props).to.not.have.property("running");
    const c = await impl.check(r.props, inputs);
    expect((await impl.diff(a.id, r.props, c.inputs)).changes, "no change after a refresh").to.equal(false);
    await impl.remove(a.id, a.outs);
  });

  it("sees an out-of-band stop and an out-of-band delete", async () => {
    const inputs = { name: `${prefix}oob`, connection: { uri: lab.uri }, shutdownTimeoutSeconds: 0 };
    const a = await checkAndCreate(inputs);
    const b = new VirshBackend(lab.uri);
    await b.destroy(a.id);
    const r = await impl.read(a.id, a.outs);
    expect(r.props.state).to.equal("shut off");
    expect(r.props.running).to.equal(false);
    const c = await impl.check(r.props, inputs);
    expect((await impl.diff(a.id, r.props, c.inputs)).changes, "wants it running again").to.equal(true);
    const u = await impl.update(a.id, r.props, c.inputs);
    expect(u.outs.state).to.equal("running");
    await b.destroy(a.id);
    await b.undefine(a.id);
    expect((await impl.read(a.id, u.outs)).id).to.equal("");
  });

  it("never deletes a domain it does not own", async () => {
    const b = new VirshBackend(lab.uri);
    const name = `${prefix}foreign`;
    await b.define(template(OS).replace("<name>x</name>", `<name>${name}</name>`));
    let err: Error | undefined;
    try {
      await impl.remove(name, { name, connection: { uri: lab.uri } });
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.contain("no pulumi-libvirt-domain ownership mark");
    expect(await b.exists(name)).to.equal(true);
    // adopt takes it over, keeping its uuid
    const uuid = await b.domuuid(name);
    const a = await checkAndCreate({
      name,
      adopt: true,
      hwuuid: H,
      connection: { uri: lab.uri },
      shutdownTimeoutSeconds: 0,
    });
    expect(a.outs.uuid).to.equal(uuid);
    expect(await b.queryGuestUuid(name)).to.equal(H);
    await impl.remove(name, a.outs);
    expect(await b.exists(name)).to.equal(false);
  });
});

describe("Domain provider on libvirt 9.0 (passthrough fallback)", function () {
  let lab: Lab;
  const prefix = `${RUN_PREFIX}-h-`;
  before(async () => {
    lab = await requireLab("host");
  });
  after(async () => removeDomains(lab.uri, prefix));

  it("auto picks passthrough; QMP query-uuid gives the hwuuid", async () => {
    const a = await checkAndCreate({
      name: `${prefix}pt`,
      hwuuid: H,
      connection: { uri: lab.uri },
      shutdownTimeoutSeconds: 0,
    });
    expect(a.outs.hwuuidMode).to.equal("passthrough");
    expect(a.outs.libvirtVersion).to.equal("9.0.0");
    const b = new VirshBackend(lab.uri);
    expect(await b.queryGuestUuid(a.id)).to.equal(H);
    expect(a.outs.guestUuid).to.equal(H);
    expect(await b.domuuid(a.id)).to.equal(a.outs.uuid);
    await impl.remove(a.id, a.outs);
  });

  it("native fails in check, naming the version found and the version needed", async () => {
    const c = await impl.check(
      {},
      { name: `${prefix}nat`, hwuuid: H, hwuuidMode: "native", connection: { uri: lab.uri } },
    );
    expect(c.failures).to.have.length(1);
    expect(c.failures[0]!.property).to.equal("hwuuidMode");
    expect(c.failures[0]!.reason).to.contain("libvirt 9.0.0").and.contain(">= 11.7.0");
  });
});

/** Twelve varied domains for the no-perpetual-diff check. */
function variedDomains(imageDir: string, mode: "native" | "passthrough"): Record<string, Record<string, unknown>> {
  const img = path.join(imageDir, "nodiff-root.qcow2");
  const sysUuid = mode === "native" ? `<entry name='uuid'>${H}</entry>` : "";
  return {
    minimal: {},
    hwuuid: { hwuuid: H },
    "memory-vcpus": { memory: "1 GiB", vcpus: 2 },
    "memory-decimal-units": {
      xml: template(OS).replace("<memory unit='MiB'>64</memory>", "<memory unit='MB'>100</memory>"),
    },
    disks: {
      disks: [
        { file: img, bus: "virtio", serial: "root-1", bootOrder: 1 },
        { file: path.join(imageDir, "nodiff.iso"), format: "raw", device: "cdrom", bus: "sata", readonly: true },
      ],
    },
    nics: {
      interfaces: [
        { type: "user", mac: "52:54:00:AA:BB:01", model: "virtio" },
        { type: "user", model: "e1000" },
      ],
    },
    sysinfo: {
      hwuuid: H,
      xml: template(
        `<sysinfo type='smbios'><system><entry name='manufacturer'>Example</entry>${sysUuid}</system></sysinfo><os><type arch='x86_64' machine='pc'>hvm</type><smbios mode='sysinfo'/></os>`,
      ),
    },
    topology: {
      vcpus: 4,
      xml: template(
        `${OS}<cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model><topology sockets='2' dies='1' cores='2' threads='1'/></cpu>`,
      ),
    },
    features: {
      xml: template(
        `${OS}<features><acpi/><apic/><pae/></features><clock offset='localtime'/><on_reboot>destroy</on_reboot>`,
      ),
    },
    graphics: {
      xml: template(
        OS,
        "<serial type='pty'/><graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/><video><model type='vga'/></video>",
      ),
    },
    metadata: {
      xml: template(
        `<title>Web &amp; co</title><description>line1\nline2</description><metadata><app:tag xmlns:app='http://example.org/app/1'>0001</app:tag></metadata>${OS}`,
      ),
    },
    "q35-qemu-args": {
      hwuuid: H,
      machine: "q35",
      xml: template(OS, "<serial type='pty'/>", `<domain type='qemu' ${QEMU_NS}>`).replace(
        "</domain>",
        "<qemu:commandline><qemu:arg value='-global'/><qemu:arg value='ICH9-LPC.disable_s3=1'/></qemu:commandline></domain>",
      ),
    },
  };
}

for (const labName of ["new", "host"] as const) {
  describe(`no perpetual diff, and drift found (${labName} lab)`, function () {
    let lab: Lab;
    const prefix = `${RUN_PREFIX}-d${labName[0]}-`;
    before(async () => {
      lab = await requireLab(labName);
      makeQcow2(path.join(lab.imageDir, "nodiff-root.qcow2"));
      fs.writeFileSync(path.join(lab.imageDir, "nodiff.iso"), Buffer.alloc(2048));
    });
    after(async () => removeDomains(lab.uri, prefix));

    const mode = labName === "new" ? "native" : "passthrough";
    const cases = variedDomains("/var/lib/pulumi-libvirt-domain-lab/images", mode);
    it(`has ${Object.keys(cases).length} varied domains`, () => expect(Object.keys(cases).length).to.be.at.least(12));
    for (const [name, extra] of Object.entries(cases)) {
      it(`${name}: diff(desired, libvirt's read-back) is empty`, async () => {
        const inputs = { name: `${prefix}${name}`, running: false, connection: { uri: lab.uri }, ...extra };
        const a = await checkAndCreate(inputs);
        expect(impl.xmlChanges(a.inputs.xml as string, a.outs.xml), "semantic changes").to.deep.equal([]);
        const r = await impl.read(a.id, a.outs);
        expect(r.props.drift).to.deep.equal([]);
        const c = await impl.check(r.props, inputs);
        expect((await impl.diff(a.id, r.props, c.inputs)).changes).to.equal(false);
        await impl.remove(a.id, r.props);
      });
    }

    it("reports changes made behind our back, with their paths", async () => {
      const inputs = {
        name: `${prefix}drift`,
        running: false,
        hwuuid: H,
        memory: "64 MiB",
        connection: { uri: lab.uri },
        disks: [{ file: "/var/lib/pulumi-libvirt-domain-lab/images/nodiff-root.qcow2" }],
        interfaces: [{ type: "user", mac: "52:54:00:12:34:56", model: "virtio" }],
      } as Record<string, unknown>;
      const a = await checkAndCreate(inputs);
      const b = new VirshBackend(lab.uri);
      let xml = await b.dumpxmlInactive(a.id);
      xml = xml
        .replace(/<memory unit='KiB'>65536<\/memory>/, "<memory unit='KiB'>131072</memory>")
        .replace(
          /<currentMemory unit='KiB'>65536<\/currentMemory>/,
          "<currentMemory unit='KiB'>131072</currentMemory>",
        );
      xml = xml.replace("<model type='virtio'/>", "<model type='e1000'/>");
      xml = xml.replace(/<disk type='file' device='disk'>[\s\S]*?<\/disk>/, "");
      xml =
        labName === "new"
          ? xml.replace(/<hwuuid>.*<\/hwuuid>/, "")
          : xml.replace(/<qemu:commandline>[\s\S]*<\/qemu:commandline>/, "");
      await b.define(xml, false);
      const r = await impl.read(a.id, a.outs);
      const drift = r.props.drift as string[];
      expect(drift).to.include("/domain/memory");
      expect(drift).to.include("/domain/devices/interface[mac=52:54:00:12:34:56]/model/@type");
      expect(drift).to.include("/domain/devices/disk[target=vda]");
      expect(drift).to.include(labName === "new" ? "/domain/hwuuid" : "/domain/qemu:commandline");
      const c = await impl.check(r.props, inputs);
      expect((await impl.diff(a.id, r.props, c.inputs)).changes).to.equal(true);
      const u = await impl.update(a.id, r.props, c.inputs);
      expect(u.outs.drift, "repaired").to.deep.equal([]);
      await impl.remove(a.id, u.outs);
    });
  });
}
