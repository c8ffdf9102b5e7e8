/**
 * The DiskImage provider making its images as libvirt storage volumes over qemu+ssh:// (the 12.x
 * lab behind its sshd; the pool's directory exists only inside the chroot, so nothing may touch
 * the hypervisor's files directly): check, create, refresh, diff, delete only ours, never over
 * an existing volume. Steps that play a user on the hypervisor go through virsh too.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as disk from "../../provider/dynamic/disk";
import { runVirsh } from "../../provider/backends/virsh/exec";
import { VolumeStore } from "../../provider/backends/volumes";
import { LibvirtDomainError } from "../../provider/xml/errors";
import type { VolumeStamp } from "../../provider/xml/volume";
import { RUN_PREFIX } from "../support/domains";
import { requireLab } from "../support/lab";
import { inChroot, requireSshLab, type SshLab } from "../support/remote";

type Obj = Record<string, unknown>;

async function thrown(f: () => Promise<unknown>): Promise<Error> {
  try {
    await f();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected an error, got none");
}

describe("DiskImage as a storage volume over qemu+ssh:// (libvirt 12.x, pool directory only inside the chroot)", function () {
  this.timeout(180000);
  let lab: SshLab;
  let store: VolumeStore;
  const prefix = `${RUN_PREFIX}-dv-`;
  const base = `${prefix}base.qcow2`;
  const basePath = (): string => path.posix.join(lab.poolDir, base);
  const virsh = async (...args: string[]): Promise<string> => (await runVirsh(lab.uri, args)).stdout;
  const inputs = (o: Obj = {}): Obj => ({
    connection: { uri: lab.uri },
    source: basePath(),
    sourceFormat: "qcow2",
    mode: "overlay",
    replaceTrigger: "d1",
    ...o,
  });
  /** check + create, as `pulumi up` does. */
  async function up(i: Obj): Promise<{ id: string; outs: Obj }> {
    const c = await disk.check({}, i);
    expect(c.failures, "check failures").to.deep.equal([]);
    return disk.create(c.inputs);
  }

  before(async () => {
    lab = await requireSshLab();
    store = new VolumeStore(lab.uri);
    await virsh("vol-create-as", lab.pool, base, "16M", "--format", "qcow2");
  });
  after(async () => {
    if (!lab) return;
    const names = (await virsh("vol-list", "--pool", lab.pool)).split("\n").map((l) => l.trim().split(/\s+/)[0] ?? "");
    for (const n of names) if (n.startsWith(prefix)) await virsh("vol-delete", "--pool", lab.pool, "--vol", n);
  });

  it("create: an overlay volume in the template's pool, backed by the template's volume; nothing on this machine", async () => {
    const r = await up(inputs({ volume: `${prefix}m1.qcow2` }));
    const want = path.posix.join(lab.poolDir, `${prefix}m1.qcow2`);
    expect(r.id).to.equal(want);
    expect(r.outs.path).to.equal(want);
    const s = r.outs.volumeStamp as VolumeStamp;
    expect(s.pool).to.equal(lab.pool);
    expect(s.backingPath).to.equal(basePath());
    expect(s.format).to.equal("qcow2");
    expect(fs.existsSync(want), "the path on this machine").to.equal(false);
    expect(fs.existsSync(inChroot(lab, want)), "the volume, on the hypervisor").to.equal(true);
    const xml = await virsh("vol-dumpxml", "--pool", lab.pool, "--vol", `${prefix}m1.qcow2`);
    expect(xml).to.contain(`<path>${basePath()}</path>`);

    // refresh: still ours, same id; preview: no change
    const rd = await disk.read(r.id, r.outs);
    expect(rd.id).to.equal(r.id);
    const d = await disk.diff(r.id, r.outs, inputs({ volume: `${prefix}m1.qcow2` }));
    expect(d).to.deep.equal({ changes: false, replaces: [], deleteBeforeReplace: false });

    // delete: ours, so it goes; a second delete finds it gone
    await disk.remove(r.id, r.outs);
    expect(await store.volume(lab.pool, `${prefix}m1.qcow2`)).to.equal(undefined);
    await disk.remove(r.id, r.outs);
  });

  it("a copy: a cloned volume with no backing store, at the given path; deleted once its guest has written to it", async () => {
    const want = path.posix.join(lab.poolDir, `${prefix}c1.qcow2`);
    const r = await up(inputs({ mode: "copy", path: want }));
    const s = r.outs.volumeStamp as VolumeStamp;
    expect(s.path).to.equal(want);
    expect(s.backingPath).to.equal(undefined);
    // Its guest writes (through libvirt, as a running member's QEMU would).
    const data = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-dv-"));
    fs.writeFileSync(path.join(data, "d"), Buffer.alloc(512, 1));
    await new Promise((res) => setTimeout(res, 20));
    // Past the qcow2 header and its tables: the format stays qcow2, the content changes.
    await virsh(
      "vol-upload",
      "--pool",
      lab.pool,
      "--vol",
      `${prefix}c1.qcow2`,
      "--offset",
      String(4 * 1024 * 1024),
      "--file",
      path.join(data, "d"),
    );
    fs.rmSync(data, { recursive: true, force: true });
    expect((await store.judge(s)).verdict).to.equal("written");
    expect((await disk.read(r.id, r.outs)).id, "refresh keeps a written volume").to.equal(r.id);
    await disk.remove(r.id, r.outs);
    expect(await store.volume(lab.pool, `${prefix}c1.qcow2`)).to.equal(undefined);
  });

  it("never over an existing volume: create is refused naming the fix, and the volume there is untouched", async () => {
    const name = `${prefix}taken.qcow2`;
    await virsh("vol-create-as", lab.pool, name, "1M", "--format", "raw");
    const before = await virsh("vol-dumpxml", "--pool", lab.pool, "--vol", name);
    const c = await disk.check({}, inputs({ volume: name }));
    expect(c.failures).to.deep.equal([]);
    const e = await thrown(() => disk.create(c.inputs));
    expect(LibvirtDomainError.isInstance(e), e.message).to.equal(true);
    expect(e.message).to.contain("already exists").and.contain("fix: ");
    const after = await virsh("vol-dumpxml", "--pool", lab.pool, "--vol", name);
    expect(after.replace(/<atime>.*<\/atime>/, "")).to.equal(before.replace(/<atime>.*<\/atime>/, ""));
  });

  it("delete only ours: a volume put in place of ours (another shape) is left alone, delete fails naming it; refresh forgets ours", async () => {
    const name = `${prefix}swap.qcow2`;
    const r = await up(inputs({ volume: name }));
    await virsh("vol-delete", "--pool", lab.pool, "--vol", name); // someone else...
    await virsh("vol-create-as", lab.pool, name, "32M", "--format", "qcow2"); // ...puts theirs there
    expect((await disk.read(r.id, r.outs)).id, "refresh: ours is gone").to.equal("");
    const e = await thrown(() => disk.remove(r.id, r.outs));
    expect(e.message).to.contain("not the volume this provider made").and.contain("fix: ");
    expect(await store.volume(lab.pool, name), "theirs is still there").to.not.equal(undefined);
  });

  it("a volume removed behind our back: diff says changes, update makes it again", async () => {
    const name = `${prefix}gone.qcow2`;
    const i = inputs({ volume: name });
    const r = await up(i);
    await virsh("vol-delete", "--pool", lab.pool, "--vol", name);
    expect((await disk.diff(r.id, r.outs, i)).changes).to.equal(true);
    const u = await disk.update(r.id, r.outs, i);
    expect((u.outs.volumeStamp as VolumeStamp).name).to.equal(name);
    expect(await store.volume(lab.pool, name)).to.not.equal(undefined);
  });

  it("check: a source in no pool, a path that is not where the volume goes, a missing pool: per-property failures naming the fix", async () => {
    const newLab = await requireLab("new");
    const loose = path.posix.join(newLab.imageDir, `${prefix}loose.qcow2`); // a directory that is no pool's
    fs.writeFileSync(inChroot(lab, loose), ""); // a user on the hypervisor
    try {
      const c1 = await disk.check({}, inputs({ volume: `${prefix}x.qcow2`, source: loose }));
      expect(c1.failures.map((f) => f.property)).to.deep.equal(["source"]);
      expect(c1.failures[0]!.reason)
        .to.contain("in no storage pool")
        .and.contain(`pool-define-as NAME dir --target ${newLab.imageDir}`);
    } finally {
      fs.rmSync(inChroot(lab, loose), { force: true });
    }
    const c2 = await disk.check({}, inputs({ volume: `${prefix}x.qcow2`, path: "/elsewhere/x.qcow2" }));
    expect(c2.failures.map((f) => f.property)).to.deep.equal(["path"]);
    expect(c2.failures[0]!.reason)
      .to.contain(path.posix.join(lab.poolDir, `${prefix}x.qcow2`))
      .and.contain("fix: ");
    const c3 = await disk.check({}, inputs({ volume: `${prefix}x.qcow2`, pool: `${prefix}nopool` }));
    expect(c3.failures.map((f) => f.property)).to.deep.equal(["pool"]);
    expect(c3.failures[0]!.reason).to.contain("pool-define-as");
    const c4 = await disk.check({}, inputs({ volume: `${prefix}x.qcow2`, sourceFormat: "raw" }));
    expect(c4.failures.map((f) => f.property)).to.deep.equal(["sourceFormat"]);
  });
});

describe("DiskImage: a file image made before its fleet moved to volumes (libvirt 9.0, local)", function () {
  this.timeout(60000);
  const prefix = `${RUN_PREFIX}-df-`;
  let dir: string;
  after(() => {
    if (dir) for (const f of fs.readdirSync(dir)) if (f.startsWith(prefix)) fs.rmSync(path.join(dir, f));
  });

  it("is kept: the volume inputs alone are no change (no replacement of a member's disk on upgrade); delete removes the file", async () => {
    dir = (await requireLab("host")).imageDir;
    const source = path.join(dir, `${prefix}t.qcow2`);
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", source, "16M"]);
    const file = { path: path.join(dir, `${prefix}m.qcow2`), source, sourceFormat: "qcow2", mode: "overlay" };
    const c = await disk.check({}, file);
    expect(c.failures).to.deep.equal([]);
    const r = await disk.create(c.inputs);
    const news = { ...file, connection: { uri: "qemu:///system" }, pool: "images", volume: `${prefix}m.qcow2` };
    expect(await disk.diff(r.id, r.outs, news)).to.deep.equal({
      changes: false,
      replaces: [],
      deleteBeforeReplace: false,
    });
    await disk.remove(r.id, r.outs);
    expect(fs.existsSync(file.path)).to.equal(false);
  });
});

describe("seeding a host: an image from this machine uploaded through libvirt's volume stream (12.x over qemu+ssh://)", function () {
  this.timeout(180000);
  const prefix = `${RUN_PREFIX}-du-`;
  let lab: SshLab;
  let tmp: string;
  before(async () => {
    lab = await requireSshLab();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-du-"));
  });
  after(async () => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    if (!lab) return;
    const names = (await runVirsh(lab.uri, ["vol-list", "--pool", lab.pool])).stdout
      .split("\n")
      .map((l) => l.trim().split(/\s+/)[0] ?? "");
    for (const n of names)
      if (n.startsWith(prefix)) await runVirsh(lab.uri, ["vol-delete", "--pool", lab.pool, "--vol", n]);
  });

  it("uploads a qcow2 once with progress; the volume holds the same guest data; never over an existing one; no scratch left", async () => {
    const local = path.join(tmp, "t.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", local, "64M"]);
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -q -P 0x5a 1M 3M", local]);
    const store = new VolumeStore(lab.uri);
    const seen: number[] = [];
    const s = await store.uploadVolume({ pool: lab.pool, name: `${prefix}seed.qcow2` }, local, {
      format: "qcow2",
      onProgress: (sent, total) => {
        expect(total).to.equal(fs.statSync(local).size);
        seen.push(sent);
      },
    });
    expect(seen.at(-1)).to.equal(fs.statSync(local).size);
    expect(s.format).to.equal("qcow2");
    expect(s.capacityBytes).to.equal(String(64 * 1024 * 1024));
    expect((await store.judge(s)).verdict).to.equal("ours");
    // The guest data, read back through libvirt's download stream, is the image's.
    const back = path.join(tmp, "back.qcow2");
    await runVirsh(lab.uri, ["vol-download", "--pool", lab.pool, "--vol", s.name, "--file", back]);
    execFileSync("qemu-img", ["compare", "-q", local, back]);
    const again = await thrown(() =>
      store.uploadVolume({ pool: lab.pool, name: `${prefix}seed.qcow2` }, local, { format: "qcow2" }),
    );
    expect(again.message).to.contain("already exists").and.contain("fix: ");
    const left = (await runVirsh(lab.uri, ["vol-list", "--pool", lab.pool])).stdout;
    expect(left).to.not.contain(".lvd-part-");
  });
});

describe("DiskImage mode seed: an image of the 9.0 lab (a volume of a transient pool) streamed to the 12.x lab over qemu+ssh://", function () {
  this.timeout(180000);
  const prefix = `${RUN_PREFIX}-ds-`;
  const hostPool = `${prefix}pool`;
  let lab: SshLab;
  let hostUri: string;
  let hostDir: string;
  const image = `${prefix}img.qcow2`;
  const inputs = (o: Obj = {}): Obj => ({
    connection: { uri: lab.uri },
    pool: lab.pool,
    volume: `${prefix}seed.qcow2`,
    source: path.join(hostDir, image),
    sourceFormat: "qcow2",
    mode: "seed",
    from: { uri: hostUri },
    ...o,
  });
  const seedDirs = (): string[] => fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith("lvd-seed-"));
  before(async () => {
    const host = await requireLab("host");
    hostUri = host.uri;
    lab = await requireSshLab();
    hostDir = path.join(host.imageDir, `${prefix}pool`);
    fs.mkdirSync(hostDir, { recursive: true });
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", path.join(hostDir, image), "64M"]);
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -q -P 0x5a 1M 3M", path.join(hostDir, image)]);
    await runVirsh(hostUri, ["pool-create-as", hostPool, "dir", "--target", hostDir]);
  });
  after(async () => {
    if (hostUri) await runVirsh(hostUri, ["pool-destroy", hostPool]).catch(() => undefined);
    if (hostDir) fs.rmSync(hostDir, { recursive: true, force: true });
    if (!lab) return;
    const names = (await runVirsh(lab.uri, ["vol-list", "--pool", lab.pool])).stdout
      .split("\n")
      .map((l) => l.trim().split(/\s+/)[0] ?? "");
    for (const n of names)
      if (n.startsWith(prefix)) await runVirsh(lab.uri, ["vol-delete", "--pool", lab.pool, "--vol", n]);
  });

  it("check: a source that is no volume on from, a wrong format, a missing pool: per-property failures naming the fix", async () => {
    const c = await disk.check(
      {},
      inputs({ source: path.join(hostDir, "nope.qcow2"), sourceFormat: "raw", pool: `${prefix}nopool` }),
    );
    expect(c.failures.map((f) => f.property)).to.deep.equal(["source", "pool"]);
    for (const f of c.failures) expect(f.reason).to.contain("fix: ");
    const fmt = await disk.check({}, inputs({ sourceFormat: "raw" }));
    expect(fmt.failures.map((f) => f.property)).to.deep.equal(["sourceFormat"]);
  });

  it("create streams it once (progress in bytes and percent), the temp file is removed, the guest data is the same; never over an existing volume; delete removes it", async () => {
    const before = seedDirs();
    const c = await disk.check({}, inputs());
    expect(c.failures).to.deep.equal([]);
    const lines: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = (s: string | Uint8Array): boolean => {
      lines.push(String(s));
      return true;
    };
    let r: { id: string; outs: Obj };
    try {
      r = await disk.create(c.inputs);
    } finally {
      process.stderr.write = write;
    }
    expect(lines.join("")).to.match(/seed download of .* of \d+ bytes \(100%\)/);
    expect(lines.join("")).to.match(/seed upload to .* (\d+) of \1 bytes \(100%\)/);
    expect(seedDirs()).to.deep.equal(before);
    expect(r.id).to.equal(path.posix.join(lab.poolDir, `${prefix}seed.qcow2`));
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-ds-"));
    try {
      const back = path.join(tmp, "back.qcow2");
      await runVirsh(lab.uri, ["vol-download", "--pool", lab.pool, "--vol", `${prefix}seed.qcow2`, "--file", back]);
      execFileSync("qemu-img", ["compare", "-q", path.join(hostDir, image), back]);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    // The same seed again (its old inputs): no failure; a new one over it: refused naming the fix.
    expect((await disk.check(c.inputs, c.inputs)).failures).to.deep.equal([]);
    const again = await disk.check({}, inputs());
    expect(again.failures.map((f) => f.property)).to.deep.equal(["volume"]);
    expect(again.failures[0]?.reason).to.contain("never overwrites").and.contain("fix: ");
    await disk.remove(r.id, r.outs);
    expect((await new VolumeStore(lab.uri).volume(lab.pool, `${prefix}seed.qcow2`)) === undefined).to.equal(true);
  });
});
