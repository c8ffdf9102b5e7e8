/**
 * Never delete or expose what is not ours, on real file systems, QEMU and libvirt (both labs):
 * - DomainDisk recognizes its image by device + inode + birth time (or, where the file system
 *   keeps no birth time, by a hidden hard link that pins the inode), so a user's file put at the
 *   same path, even under our reused inode, survives our delete;
 * - QEMU-direct undefine removes only the files the backend wrote;
 * - new images are never looser than their template;
 * - domains are addressed by the uuid we recorded, so a domain named like another domain's id
 *   or uuid is read, updated, taken back and deleted without touching the other;
 * - take-back, read and delete compare the whole owner identity in the mark (project, stack,
 *   resource and connection); a mark of the previous version (no connection) stays ours.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { QemuDirectBackend } from "../../provider/backends/qemu/direct";
import { VirshBackend } from "../../provider/backends/virsh/virsh-backend";
import * as disk from "../../provider/dynamic/disk";
import * as impl from "../../provider/dynamic/impl";
import { checkAndCreate, makeQcow2, removeDomains, RUN_PREFIX } from "../support/domains";
import { Lab, labQemu, requireLab } from "../support/lab";

/** The owner identity the SDK would give a Domain `web` of stack `test` in project `lab`. */
const OWNER = "lab/test/web";
const OWNER_NS = "urn:pulumi-libvirt-domain:owner:1";

function xmlAttr(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/'/g, "&apos;").replace(/</g, "&lt;");
}

/** A DomainDisk made as the engine makes it: check, then create. */
async function makeDisk(
  p: string,
  source: string,
  mode: "overlay" | "copy" = "overlay",
  sourceFormat = "qcow2",
): Promise<Record<string, unknown>> {
  const c = await disk.check({}, { path: p, source, sourceFormat, mode });
  expect(c.failures, "check failures").to.deep.equal([]);
  return (await disk.create(c.inputs)).outs;
}

/**
 * Twenty rounds of: we make the image; the user removes it (and `alsoRemoved` of ours, if any)
 * and writes their own file at the same path (ext4 hands the freed inode straight back);
 * refresh reads it; we delete it.
 */
async function replaceThenDelete(
  p: string,
  source: string,
  alsoRemoved: (outs: Record<string, unknown>) => string[] = () => [],
): Promise<{ reused: number; readAsOurs: number; userFileLost: number }> {
  let reused = 0;
  let readAsOurs = 0;
  let userFileLost = 0;
  for (let i = 0; i < 20; i++) {
    const outs = await makeDisk(p, source);
    const ours = fs.statSync(p).ino;
    fs.rmSync(p);
    for (const f of alsoRemoved(outs)) fs.rmSync(f);
    const userData = `the user's own file, round ${i + 1}\n`;
    fs.writeFileSync(p, userData);
    if (fs.statSync(p).ino === ours) reused++;
    if ((await disk.read(p, outs)).id !== "") readAsOurs++;
    try {
      await disk.remove(p, outs);
    } catch {
      // Refusing is fine too; only removing the user's file is not.
    }
    if (!fs.existsSync(p) || fs.readFileSync(p, "utf8") !== userData) userFileLost++;
    fs.rmSync(p, { force: true });
  }
  return { reused, readAsOurs, userFileLost };
}

describe("DomainDisk deletes only its own image (ext4 lab image dir)", function () {
  this.timeout(300000);
  let dir: string;
  let tmpl: string;
  const prefix = `${RUN_PREFIX}-img-`;
  const ours = (f: string) => f.startsWith(prefix) || f.startsWith(`.${prefix}`);
  before(async () => {
    dir = (await requireLab("new")).imageDir;
    tmpl = path.join(dir, `${prefix}tmpl.qcow2`);
    makeQcow2(tmpl);
    fs.chmodSync(tmpl, 0o600);
  });
  after(() => {
    if (dir) for (const f of fs.readdirSync(dir)) if (ours(f)) fs.rmSync(path.join(dir, f), { force: true });
  });

  it("records device, inode and birth time; deletes its own untouched image and leaves nothing behind", async () => {
    const p = path.join(dir, `${prefix}own.qcow2`);
    const outs = await makeDisk(p, tmpl);
    const st = fs.statSync(p, { bigint: true });
    expect(st.birthtimeNs > 0n, "this file system keeps birth times").to.equal(true);
    expect({ device: outs.device, inode: outs.inode, birthtimeNs: outs.birthtimeNs }).to.deep.equal({
      device: String(st.dev),
      inode: String(st.ino),
      birthtimeNs: String(st.birthtimeNs),
    });
    expect((await disk.read(p, outs)).id).to.equal(p);
    await disk.remove(p, outs);
    expect(fs.readdirSync(dir).filter(ours)).to.deep.equal([`${prefix}tmpl.qcow2`]);
  });

  it("replace-then-delete, 20 times: the user's file at our path survives every delete, with our inode reused", async () => {
    const r = await replaceThenDelete(path.join(dir, `${prefix}member.qcow2`), tmpl);
    // `reused`: rounds where the user's file got our inode back, the case an inode check gets wrong.
    expect({ ...r, reused: r.reused > 0 }, `${r.reused} of 20 rounds reused our inode`).to.deep.equal({
      reused: true,
      readAsOurs: 0,
      userFileLost: 0,
    });
  });

  it("a state of the previous version (inode only): delete leaves a file it cannot prove is ours and says how to go on", async () => {
    const p = path.join(dir, `${prefix}legacy.qcow2`);
    const outs = await makeDisk(p, tmpl);
    const legacy = {
      path: p,
      source: tmpl,
      sourceFormat: "qcow2",
      mode: "overlay",
      inode: fs.statSync(p).ino,
      sizeBytes: outs.sizeBytes,
    };
    let err: Error | undefined;
    try {
      await disk.remove(p, legacy);
    } catch (e) {
      err = e as Error;
    }
    expect(fs.existsSync(p), "the file is left in place").to.equal(true);
    expect(err?.message).to.contain(p).and.contain("inode").and.match(/fix:/i);
    // Another file there (another inode): certainly not ours; left alone without an error.
    const other = `${p}.user`;
    fs.writeFileSync(other, "user");
    fs.renameSync(other, p);
    await disk.remove(p, legacy);
    expect(fs.readFileSync(p, "utf8")).to.equal("user");
    // Nothing there: nothing to do.
    fs.rmSync(p);
    await disk.remove(p, legacy);
  });

  it("new images get the template's mode, never looser: 0600 template -> 0600 overlay, copy and NVRAM copy (umask 022); read-write for the owner", async () => {
    const nvram = path.join(dir, `${prefix}VARS.fd`);
    fs.writeFileSync(nvram, Buffer.alloc(128 * 1024));
    fs.chmodSync(nvram, 0o600);
    const tmpl640 = path.join(dir, `${prefix}tmpl640.qcow2`);
    makeQcow2(tmpl640);
    fs.chmodSync(tmpl640, 0o640);
    const tmpl444 = path.join(dir, `${prefix}tmpl444.qcow2`);
    makeQcow2(tmpl444);
    fs.chmodSync(tmpl444, 0o444);
    const old = process.umask(0o022);
    try {
      const cases: [string, string, "overlay" | "copy", string, number][] = [
        [`${prefix}m-overlay.qcow2`, tmpl, "overlay", "qcow2", 0o600],
        [`${prefix}m-copy.qcow2`, tmpl, "copy", "qcow2", 0o600],
        [`${prefix}m_VARS.fd`, nvram, "copy", "raw", 0o600],
        [`${prefix}m640-overlay.qcow2`, tmpl640, "overlay", "qcow2", 0o640],
        // A read-only golden image: the overlay must stay writable by its owner (the guest writes it).
        [`${prefix}m444-overlay.qcow2`, tmpl444, "overlay", "qcow2", 0o644],
      ];
      for (const [name, source, mode, format, want] of cases) {
        const p = path.join(dir, name);
        const outs = await makeDisk(p, source, mode, format);
        expect((fs.statSync(p).mode & 0o777).toString(8), name).to.equal(want.toString(8));
        await disk.remove(p, outs);
      }
    } finally {
      process.umask(old);
    }
  });
});

describe("DomainDisk on a file system without birth times (ext4 with 128-byte inodes, loop-mounted)", function () {
  this.timeout(300000);
  let work: string;
  let mnt: string;
  let tmpl: string;
  before(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-nobirth-"));
    mnt = path.join(work, "mnt");
    fs.mkdirSync(mnt);
    const img = path.join(work, "fs.img");
    fs.writeFileSync(img, "");
    fs.truncateSync(img, 64 * 1024 * 1024);
    execFileSync("mkfs.ext4", ["-q", "-F", "-I", "128", img], { stdio: ["ignore", "ignore", "ignore"] });
    execFileSync("mount", ["-o", "loop", img, mnt]);
    tmpl = path.join(mnt, "tmpl.qcow2");
    makeQcow2(tmpl);
    expect(fs.statSync(tmpl, { bigint: true }).birthtimeNs, "no birth time here").to.equal(0n);
  });
  after(() => {
    if (mnt) execFileSync("umount", [mnt]);
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it("replace-then-delete, 20 times: our pin keeps our inode from being reused, and the user's file survives", async () => {
    const r = await replaceThenDelete(path.join(mnt, "member.qcow2"), tmpl);
    expect(r, "reused: rounds where the user's file got our inode back").to.deep.equal({
      reused: 0,
      readAsOurs: 0,
      userFileLost: 0,
    });
  });

  it("replace-then-delete, 20 times, the user removing our pin too: our inode is reused, and the user's file still survives", async () => {
    const r = await replaceThenDelete(path.join(mnt, "member.qcow2"), tmpl, (outs) =>
      typeof outs.pin === "string" ? [outs.pin] : [],
    );
    expect({ ...r, reused: r.reused > 0 }, `${r.reused} of 20 rounds reused our inode`).to.deep.equal({
      reused: true,
      readAsOurs: 0,
      userFileLost: 0,
    });
  });

  it("records birth time 0 and a pin; our own image is deleted with its pin, nothing left", async () => {
    const p = path.join(mnt, "member.qcow2");
    const outs = await makeDisk(p, tmpl);
    expect(outs.birthtimeNs).to.equal("0");
    expect(outs.pin, "a hidden hard link pins our inode").to.be.a("string");
    expect(fs.statSync(outs.pin as string).ino).to.equal(fs.statSync(p).ino);
    await disk.remove(p, outs);
    expect(fs.readdirSync(mnt).filter((f) => f !== "lost+found")).to.deep.equal(["tmpl.qcow2"]);
  });
});

describe("QEMU-direct undefine removes only what the backend wrote (QEMU 7.2)", function () {
  this.timeout(120000);
  let state: string;
  let uri: string;
  before(() => {
    state = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-direct-ours-"));
    uri = `qemu-direct://${state}?emulator=${encodeURIComponent(labQemu("host"))}`;
  });
  after(async () => {
    const b = new QemuDirectBackend(uri);
    for (const n of await b.listNames()) await b.destroy(n).catch(() => undefined);
    fs.rmSync(state, { recursive: true, force: true });
  });

  it("a user's disk in STATE_DIR/NAME survives delete; the backend's own files go", async () => {
    const a = await checkAndCreate({ name: "keep", connection: { uri }, shutdownTimeoutSeconds: 0, ownerId: OWNER });
    const dir = path.join(state, "keep");
    expect(fs.readdirSync(dir).sort()).to.include.members(["domain.xml", "qemu.log", "qemu.pid", "qmp.sock"]);
    const userDisk = path.join(dir, "user-disk.qcow2");
    makeQcow2(userDisk);
    await impl.remove("keep", a.outs);
    expect(await new QemuDirectBackend(uri).exists("keep")).to.equal(false);
    expect(fs.readdirSync(dir)).to.deep.equal(["user-disk.qcow2"]);
  });
});

/** Another spelling of the lab's URI that reaches the same daemon. */
function aliasUri(lab: Lab): string {
  return lab.name === "host"
    ? "qemu+unix:///system?socket=/run/libvirt/libvirt-sock"
    : lab.uri.replace("socket=/", "socket=//");
}

/** A domain defined behind the provider's back, with an ownership mark we choose (or none). */
function markedXml(name: string, uuid: string, mark: { resource?: string; connection?: string } | undefined): string {
  const attrs = mark
    ? ` adopted='no'${mark.resource !== undefined ? ` resource='${xmlAttr(mark.resource)}'` : ""}${mark.connection !== undefined ? ` connection='${xmlAttr(mark.connection)}'` : ""}`
    : "";
  const md = mark ? `<metadata><lvd:owner xmlns:lvd='${OWNER_NS}'${attrs}/></metadata>` : "";
  return `<domain type='qemu'><name>${xmlAttr(name)}</name><uuid>${uuid}</uuid>${md}<memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices><serial type='pty'/></devices></domain>`;
}

async function uuidsOn(v: VirshBackend): Promise<string[]> {
  return (await v.run(["list", "--all", "--uuid"]))
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
}

for (const labName of ["new", "host"] as const) {
  describe(`a domain named like another domain's id or uuid is addressed by its own uuid (${labName} lab)`, function () {
    this.timeout(300000);
    let lab: Lab;
    let v: VirshBackend;
    const prefix = `${RUN_PREFIX}-o${labName[0]}-`;
    const other = { name: `${prefix}other`, uuid: "", id: "" };
    const made: string[] = [];
    before(async () => {
      lab = await requireLab(labName);
      v = new VirshBackend(lab.uri);
      other.uuid = randomUUID();
      await v.define(markedXml(other.name, other.uuid, undefined));
      await v.start(other.name);
      other.id = (await v.run(["domid", other.name])).trim();
      expect(other.id).to.match(/^[0-9]+$/);
    });
    after(async () => {
      if (!v) return;
      for (const u of made) {
        await v.destroy(u).catch(() => undefined);
        await v.undefine(u).catch(() => undefined);
      }
      await removeDomains(lab.uri, prefix);
    });

    for (const kind of ["id", "uuid"] as const) {
      it(`named the running domain's ${kind}: create, read, update, take-back and delete touch only ours`, async () => {
        const name = kind === "id" ? other.id : other.uuid;
        const otherXml = await v.run(["dumpxml", "--inactive", other.name]);
        const inputs = {
          name,
          memory: "64 MiB",
          connection: { uri: lab.uri },
          shutdownTimeoutSeconds: 1,
          ownerId: OWNER,
        };
        const a = await checkAndCreate(inputs);
        made.push(a.outs.uuid);
        expect(a.outs.uuid).to.not.equal(other.uuid);
        const r = await impl.read(name, a.outs);
        expect(r.id, "read finds ours").to.equal(name);
        expect(r.props.uuid).to.equal(a.outs.uuid);
        const c = await impl.check(r.props, { ...inputs, memory: "96 MiB" });
        const u = await impl.update(name, r.props, c.inputs);
        expect(u.outs.uuid).to.equal(a.outs.uuid);
        expect(u.outs.xml).to.contain("<memory unit='KiB'>98304</memory>");
        // An interrupted create (defined, never recorded): the next create takes ours back.
        const again = await impl.create(c.inputs);
        expect(again.outs.uuid, "taken back").to.equal(a.outs.uuid);
        await impl.remove(name, again.outs);
        expect(await uuidsOn(v)).to.not.include(a.outs.uuid);
        expect(await v.run(["dumpxml", "--inactive", other.name]), "the other domain's definition").to.equal(otherXml);
        expect(await v.domstate(other.name)).to.equal("running");
      });
    }
  });

  describe(`the ownership mark carries the whole owner identity (${labName} lab)`, function () {
    this.timeout(300000);
    let lab: Lab;
    let v: VirshBackend;
    const prefix = `${RUN_PREFIX}-m${labName[0]}-`;
    before(async () => {
      lab = await requireLab(labName);
      v = new VirshBackend(lab.uri);
    });
    after(async () => {
      if (lab) await removeDomains(lab.uri, prefix);
    });
    const foreign = (lab: Lab) => [
      { what: "another stack", props: { ownerId: "lab/prod/web" } },
      { what: "another resource", props: { ownerId: "lab/test/db" } },
      { what: "another connection", props: { connection: { uri: aliasUri(lab) } } },
    ];

    it("the mark names the resource and the connection", async () => {
      const a = await checkAndCreate({
        name: `${prefix}mark`,
        connection: { uri: lab.uri },
        running: false,
        ownerId: OWNER,
      });
      // Ours, single-quoted; libvirt writes metadata back with double quotes.
      expect(a.outs.desiredXml)
        .to.contain(`resource='${OWNER}'`)
        .and.contain(`connection='${xmlAttr(lab.uri)}'`);
      expect(a.outs.xml)
        .to.match(new RegExp(`resource=["']${OWNER}["']`))
        .and.contain(`connection="${lab.uri}"`);
      await impl.remove(a.id, a.outs);
    });

    it("delete refuses a domain marked by another stack, resource or connection, with and without a graceful wait", async () => {
      const a = await checkAndCreate({
        name: `${prefix}del`,
        connection: { uri: lab.uri },
        running: false,
        shutdownTimeoutSeconds: 0,
        ownerId: OWNER,
      });
      for (const f of foreign(lab)) {
        for (const shutdownTimeoutSeconds of [0, 1]) {
          let err: Error | undefined;
          try {
            await impl.remove(a.id, { ...a.outs, ...f.props, shutdownTimeoutSeconds });
          } catch (e) {
            err = e as Error;
          }
          expect(await uuidsOn(v), `${f.what}, timeout ${shutdownTimeoutSeconds}: still there`).to.include(a.outs.uuid);
          expect(err?.message, `${f.what}, timeout ${shutdownTimeoutSeconds}`).to.match(/^refusing to delete domain/);
        }
      }
      await impl.remove(a.id, a.outs);
      expect(await uuidsOn(v)).to.not.include(a.outs.uuid);
    });

    it("read takes a domain marked by another stack, resource or connection for gone", async () => {
      const a = await checkAndCreate({
        name: `${prefix}read`,
        connection: { uri: lab.uri },
        running: false,
        ownerId: OWNER,
      });
      expect((await impl.read(a.id, a.outs)).id).to.equal(a.id);
      for (const f of foreign(lab)) expect((await impl.read(a.id, { ...a.outs, ...f.props })).id, f.what).to.equal("");
      await impl.remove(a.id, a.outs);
    });

    it("take-back of an interrupted create refuses a mark of another connection (or stack), and takes back its own", async () => {
      const name = `${prefix}tb`;
      const inputs = (await impl.check({}, { name, connection: { uri: lab.uri }, running: false, ownerId: OWNER }))
        .inputs;
      for (const mark of [
        { resource: OWNER, connection: aliasUri(lab) },
        { resource: "lab/prod/web", connection: lab.uri },
      ]) {
        const uuid = randomUUID();
        await v.define(markedXml(name, uuid, mark));
        const before = await v.run(["dumpxml", "--inactive", uuid]);
        let err: Error | undefined;
        try {
          await impl.create(inputs);
        } catch (e) {
          err = e as Error;
        }
        expect(err?.message, JSON.stringify(mark)).to.match(/already exists/);
        expect(await v.run(["dumpxml", "--inactive", uuid]), "untouched").to.equal(before);
        await v.undefine(uuid);
      }
      const uuid = randomUUID();
      await v.define(markedXml(name, uuid, { resource: OWNER, connection: lab.uri }));
      const r = await impl.create(inputs);
      expect(r.outs.uuid, "taken back").to.equal(uuid);
      await impl.remove(name, r.outs);
    });

    it("a domain marked by the previous version (no connection in the mark) stays readable, updatable and deletable by its own stack only", async () => {
      const name = `${prefix}legacy`;
      const inputs = { name, connection: { uri: lab.uri }, running: false, shutdownTimeoutSeconds: 0, ownerId: OWNER };
      const c = await impl.check({}, inputs);
      const uuid = randomUUID();
      // What the previous version defined and recorded: the mark names the resource only.
      const legacyXml = (c.inputs.xml as string)
        .replace(/ connection='[^']*'/, "")
        .replace("<name>", `<uuid>${uuid}</uuid><name>`);
      expect(legacyXml).to.not.contain("connection=");
      await v.define(legacyXml);
      const state = { ...c.inputs, xml: legacyXml, desiredXml: legacyXml, uuid };
      const r = await impl.read(name, state);
      expect(r.id).to.equal(name);
      expect((await impl.read(name, { ...state, ownerId: "lab/prod/web" })).id, "another stack").to.equal("");
      let err: Error | undefined;
      try {
        await impl.remove(name, { ...state, ownerId: "lab/prod/web" });
      } catch (e) {
        err = e as Error;
      }
      expect(err?.message).to.match(/^refusing to delete domain/);
      const u = await impl.update(name, r.props, c.inputs);
      expect(u.outs.xml, "the update writes the full mark").to.contain(`connection="${lab.uri}"`);
      await impl.remove(name, u.outs);
      expect(await uuidsOn(v)).to.not.include(uuid);
    });
  });
}

describe("addressing by uuid and proving ownership cost no extra virsh process (new lab)", function () {
  this.timeout(120000);
  let lab: Lab;
  let dir: string;
  let log: string;
  const prefix = `${RUN_PREFIX}-pc-`;
  const saved = process.env.VIRSH;
  before(async () => {
    lab = await requireLab("new");
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-count-"));
    log = path.join(dir, "calls");
    // Counts the virsh processes the provider starts, then runs the real virsh.
    fs.writeFileSync(path.join(dir, "virsh"), `#!/bin/sh\necho "$*" >> '${log}'\nexec virsh "$@"\n`, { mode: 0o755 });
  });
  after(async () => {
    process.env.VIRSH = saved;
    if (saved === undefined) delete process.env.VIRSH;
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (lab) await removeDomains(lab.uri, prefix);
  });

  it("create: 1 process; 5 concurrent reads (a refresh): 1; delete without a graceful wait, ownership proven: 1", async () => {
    const names = [1, 2, 3, 4, 5].map((i) => `${prefix}${i}`);
    const checked = await Promise.all(
      names.map(
        async (name) =>
          (await impl.check({}, { name, connection: { uri: lab.uri }, shutdownTimeoutSeconds: 0, ownerId: OWNER }))
            .inputs,
      ),
    );
    const calls = () => (fs.existsSync(log) ? fs.readFileSync(log, "utf8").split("\n").filter(Boolean).length : 0);
    process.env.VIRSH = path.join(dir, "virsh");
    const outs: Record<string, impl.DomainOutputs> = {};
    const outsOf = (n: string): impl.DomainOutputs => {
      const o = outs[n];
      if (!o) throw new Error(`no outputs recorded for ${n}`);
      return o;
    };
    for (const i of checked) {
      const before = calls();
      outs[i.name as string] = (await impl.create(i)).outs;
      expect(calls() - before, "create").to.equal(1);
    }
    let before = calls();
    const reads = await Promise.all(names.map((n) => impl.read(n, outsOf(n))));
    expect(reads.map((r) => r.id)).to.deep.equal(names);
    expect(calls() - before, "5 reads").to.equal(1);
    for (const n of names) {
      before = calls();
      await impl.remove(n, outsOf(n));
      expect(calls() - before, "delete").to.equal(1);
    }
    expect(await uuidsOn(new VirshBackend(lab.uri))).to.not.include.members(names.map((n) => outsOf(n).uuid));
  });
});
