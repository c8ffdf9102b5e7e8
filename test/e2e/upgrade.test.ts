/**
 * Upgrading from the previous release: a stack made by version 0.1.0 (the package as released:
 * `test/data/releases/pulumi-libvirt-domain-0.1.0.tgz`, `npm pack` of commit fa7ec46, tagged `v0.1.0`) is upgraded to this checkout's package with no replacement. 0.1.0 gave the
 * resources the type tokens `pulumi-nodejs:dynamic/libvirt-domain:Resource` and
 * `...libvirt-domain-disk:Resource` and called the disk image `DomainDisk`; this version names
 * them `...libvirt-domain:Domain` and `...libvirt-domain:DiskImage` and keeps the old URNs with
 * aliases, and keeps `DomainDisk` as a deprecated alias so the program compiles unchanged.
 *
 * One TypeScript program (a DomainDisk overlay + a Domain booting it, on the host lab) runs
 * outside the repository through the real Pulumi CLI. The cases share that stack and run in the
 * order of their numbers.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { VirshBackend } from "../../provider/backends/virsh/virsh-backend";
import { domainsWithPrefix, removeDomains, RUN_PREFIX } from "../support/domains";
import { Lab, requireLab } from "../support/lab";
import { npm, userEnv } from "../support/npm";
import { REPO_ROOT } from "../support/paths";
import { PulumiStack } from "../support/pulumi";

/** The previous release's name (its git tag). */
const PREVIOUS_TAG = "v0.1.0";
/**
 * The previous release as users installed it: the tarball `npm pack` made of its commit (fa7ec46).
 * It is kept in the repository, not rebuilt from git, because a clone need not carry tags or the
 * whole history (CI's clone has no tags); its SHA-256 pins it.
 */
const PREVIOUS_TARBALL = path.join(REPO_ROOT, "test", "data", "releases", "pulumi-libvirt-domain-0.1.0.tgz");
const PREVIOUS_SHA256 = "e79496e2bc174ce37de7ef287affdaf9d1e9898153e63b3ddb7ee9dbfbf2ebb4";
/** The `@pulumi/pulumi` of the program (the repository's own). */
const PULUMI_VERSION = "3.248.0";
const HWUUID = "0c2a3f5e-7d61-4b8a-9e0f-2b4c6d8e0a13";

/** The types 0.1.0 wrote into the state, and the ones this version writes. */
const OLD_TYPES = [
  "pulumi-nodejs:dynamic/libvirt-domain-disk:Resource",
  "pulumi-nodejs:dynamic/libvirt-domain:Resource",
];
const NEW_TYPES = ["pulumi-nodejs:dynamic/libvirt-domain:DiskImage", "pulumi-nodejs:dynamic/libvirt-domain:Domain"];

/** `npm pack` of the package in `dir` into `dest` (its `prepack` builds); the tarball's path. */
function pack(dir: string, dest: string): string {
  fs.mkdirSync(dest, { recursive: true });
  const out = JSON.parse(npm(["pack", "--json", "--pack-destination", dest], dir)) as { filename: string }[];
  const [first] = out;
  if (!first) throw new Error(`npm pack in ${dir} reported no tarball`);
  return path.join(dest, first.filename);
}

/** The program: the 0.1.0 names (`DomainDisk`), unchanged across the upgrade. */
const PROGRAM = `import * as pulumi from "@pulumi/pulumi";
import { Domain, DomainDisk } from "pulumi-libvirt-domain";

const cfg = new pulumi.Config();
const disk = new DomainDisk("disk", {
  path: cfg.require("diskPath"),
  source: cfg.require("source"),
  sourceFormat: "qcow2",
  mode: "overlay",
});
const web = new Domain("web", {
  name: cfg.require("name"),
  hwuuid: "${HWUUID}",
  memory: "64 MiB",
  vcpus: 1,
  disks: [{ file: disk.path, format: "qcow2" }],
  interfaces: [{ type: "user", mac: "52:54:00:0c:2a:01", model: "virtio" }],
  shutdownTimeoutSeconds: 5,
});

export const uuid = web.uuid;
export const guestUuid = web.guestUuid;
export const diskInode = disk.inode;
`;

/** The state's resources of our types: type, URN and id. */
function ourResources(s: PulumiStack): { type: string; urn: string; id: string }[] {
  const state = JSON.parse(s.ok("stack", "export").stdout) as {
    deployment: { resources?: { type: string; urn: string; id: string }[] };
  };
  return (state.deployment.resources ?? []).filter((r) => r.type.includes("dynamic/libvirt-domain"));
}

describe(`upgrade from ${PREVIOUS_TAG} (real CLI, host lab) — one stack, its cases run in the order written (1-5)`, function () {
  this.timeout(1800000);
  let tmp: string;
  let lab: Lab;
  let v: VirshBackend;
  let s: PulumiStack;
  let newTarball: string;
  const prefix = `${RUN_PREFIX}-upg-`;
  const name = `${prefix}web`;
  let before0: { uuid: string; guestUuid: string; diskInode: string };
  let urnsBefore: string[];

  before(async function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pld-upgrade-"));
    lab = await requireLab("host");
    v = new VirshBackend(lab.uri);
    // The previous version as released: fails (never skips) when the tarball is missing or altered.
    const oldTarball = PREVIOUS_TARBALL;
    const sha = crypto.createHash("sha256").update(fs.readFileSync(oldTarball)).digest("hex");
    if (sha !== PREVIOUS_SHA256)
      throw new Error(
        `${oldTarball} has SHA-256 ${sha}, not ${PREVIOUS_SHA256}: restore it (git checkout -- ${path.relative(REPO_ROOT, oldTarball)})`,
      );
    newTarball = pack(REPO_ROOT, path.join(tmp, "new"));

    const source = path.join(lab.imageDir, `${prefix}base.qcow2`);
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", source, "64M"]);
    s = new PulumiStack(null, "upgrade", `${prefix}stack`, { workRoot: tmp, baseEnv: userEnv(), typeCheck: true });
    fs.writeFileSync(path.join(s.dir, "Pulumi.yaml"), "name: upgrade\nruntime: nodejs\n");
    fs.writeFileSync(path.join(s.dir, "index.ts"), PROGRAM);
    npm(["init", "-y"], s.dir);
    // As the README's install section says, with the 0.1.0 tarball for the registry name.
    npm(["install", `@pulumi/pulumi@${PULUMI_VERSION}`, oldTarball], s.dir);
    npm(["install", "--save-dev", "typescript@5", "@types/node@20"], s.dir);
    npm(["pkg", "set", "main=index.ts"], s.dir);
    s.init({
      "libvirt:uri": lab.uri,
      name,
      source,
      diskPath: path.join(lab.imageDir, `${prefix}web.qcow2`),
    });
  });
  after(async () => {
    if (lab) {
      if (s) s.run("destroy", "--yes");
      await removeDomains(lab.uri, prefix);
      for (const f of fs.readdirSync(lab.imageDir)) if (f.startsWith(prefix)) fs.rmSync(path.join(lab.imageDir, f));
    }
    if (tmp && !process.env.KEEP_E2E_WORK) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it(`1. ${PREVIOUS_TAG}: pulumi up makes the disk image and the domain, under 0.1.0's type tokens`, async () => {
    s.ok("up", "--yes", "--skip-preview");
    const out = s.outputs();
    before0 = { uuid: out.uuid, guestUuid: out.guestUuid, diskInode: out.diskInode };
    expect(before0.guestUuid).to.equal(HWUUID);
    expect(await v.domuuid(name)).to.equal(before0.uuid);
    const ours = ourResources(s);
    expect(ours.map((r) => r.type).sort()).to.deep.equal(OLD_TYPES);
    urnsBefore = ours.map((r) => r.urn).sort();
  });

  it("2. the current package replaces it in the program's node_modules (same program, same names)", () => {
    npm(["install", newTarball], s.dir);
    const disk = fs.readFileSync(
      path.join(s.dir, "node_modules", "pulumi-libvirt-domain", "dist", "sdk", "disk.js"),
      "utf8",
    );
    expect(disk, "the installed package is this checkout's").to.contain("DiskImage");
  });

  it("3. pulumi preview --json: nothing to create, replace, delete or update: the stack and both resources are `same`", () => {
    const r = s.run("preview", "--json", "--diff");
    expect(r.code, `${r.stdout}\n${r.stderr}`).to.equal(0);
    const json = JSON.parse(r.stdout) as {
      steps?: { op: string; urn: string }[];
      changeSummary?: Record<string, number>;
    };
    expect(
      (json.steps ?? []).filter((x) => x.op !== "same").map((x) => `${x.op} ${x.urn}`),
      "steps that are not `same`",
    ).to.deep.equal([]);
    // The stack, the DomainDisk and the Domain.
    expect(json.changeSummary, JSON.stringify(json.steps)).to.deep.equal({ same: 3 });
  });

  it("4. pulumi up keeps the domain and the image (same libvirt UUID, same inode); the state now holds the new type tokens", async () => {
    s.ok("up", "--yes", "--skip-preview");
    const out = s.outputs();
    expect({ uuid: out.uuid, guestUuid: out.guestUuid, diskInode: out.diskInode }).to.deep.equal(before0);
    expect(await v.domuuid(name)).to.equal(before0.uuid);
    const ours = ourResources(s);
    expect(ours.map((r) => r.type).sort()).to.deep.equal(NEW_TYPES);
    expect(ours.map((r) => r.urn).sort()).to.not.deep.equal(urnsBefore);
    s.ok("preview", "--expect-no-changes");
  });

  it("5. pulumi refresh finds nothing changed, pulumi destroy removes the domain and the image", async () => {
    s.ok("refresh", "--yes", "--expect-no-changes");
    s.ok("destroy", "--yes");
    expect(await domainsWithPrefix(lab.uri, name)).to.deep.equal([]);
    expect(fs.existsSync(path.join(lab.imageDir, `${prefix}web.qcow2`))).to.equal(false);
  });
});
