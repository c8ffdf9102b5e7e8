/**
 * End to end with the real Pulumi CLI on both labs: examples/quickstart through up, preview,
 * refresh, rename and destroy; bad input at preview; a failure in the middle of up that the next
 * up converges. The guest-visible UUID is read over QMP. Previews are recorded to
 * `.e2e-work/previews/` (RECORD_PREVIEWS=1 also copies them into test/data/previews/).
 */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { VirshBackend } from "../../provider/backends/virsh/virsh-backend";
import { domainsWithPrefix, listFiles, removeDomains, RUN_PREFIX } from "../support/domains";
import { Lab, requireLab } from "../support/lab";
import { REPO_ROOT } from "../support/paths";
import { recordPreview } from "../support/previews";
import { PulumiStack } from "../support/pulumi";

const H = "5d5b0f1d-128b-4517-8e65-b258a8734c1d";

for (const labName of ["new", "host"] as const) {
  describe(`pulumi CLI end to end: examples/quickstart (${labName} lab) — one stack, its cases run in the order written`, function () {
    this.timeout(600000);
    let lab: Lab;
    let s: PulumiStack;
    let virsh: VirshBackend;
    const prefix = `${RUN_PREFIX}-e${labName[0]}-`;
    let filesBefore: string[];

    before(async () => {
      lab = await requireLab(labName);
      virsh = new VirshBackend(lab.uri);
      filesBefore = listFiles(lab.imageDir);
      s = new PulumiStack(path.join(REPO_ROOT, "examples", "quickstart"), `quickstart-${labName}`, "e2e");
      s.init({ "libvirt:uri": lab.uri, name: `${prefix}qs`, shutdownTimeoutSeconds: "0" });
    });
    after(async () => {
      s?.run("destroy", "--yes");
      if (lab) await removeDomains(lab.uri, prefix);
    });

    let firstUuid: string;
    it("preview before the first up shows a create", () => {
      const json = s.previewJson();
      const ops = (json.steps as { op: string; urn: string }[])
        .filter((x) => x.urn.includes("dynamic/libvirt-domain"))
        .map((x) => `${x.op} ${x.urn.split("::").slice(2).join("::")}`);
      expect(ops).to.deep.equal(["create pulumi-nodejs:dynamic/libvirt-domain:Domain::web"]);
      recordPreview(`${labName}-create`, json);
    });

    it("up creates the domain: the guest sees the hwuuid over QMP, libvirt keeps its own uuid", async () => {
      s.ok("up", "--yes");
      const out = s.outputs();
      firstUuid = out.uuid;
      expect(out.guestUuid).to.equal(H);
      expect(out.hwuuidMode).to.equal(labName === "new" ? "native" : "passthrough");
      expect(await virsh.queryGuestUuid(`${prefix}qs`)).to.equal(H);
      expect(await virsh.domuuid(`${prefix}qs`)).to.equal(firstUuid);
    });

    it("preview --expect-no-changes passes right after up", () => {
      s.ok("preview", "--expect-no-changes");
    });

    it("a memory change shows in preview and up applies it (restart pending)", async () => {
      s.setConfig("memory", "96 MiB");
      const p = s.ok("preview", "--diff");
      expect(p.stdout).to.match(/memory\s*:\s*"64 MiB" => "96 MiB"/);
      expect(p.stdout).to.contain("98304");
      recordPreview(`${labName}-update-memory`, s.previewJson());
      // examples/ci-preview runs against this stack: the report names the change and the restart.
      const ci = spawnSync("bash", [path.join(REPO_ROOT, "examples", "ci-preview", "ci-preview.sh"), "e2e"], {
        cwd: s.dir,
        env: { ...s.env(), LIBVIRT_DOMAIN_CLI: `node ${path.join(REPO_ROOT, "bin", "libvirt-domain.js")}` },
        encoding: "utf8",
      });
      expect(ci.status, ci.stderr).to.equal(0);
      expect(ci.stdout)
        .to.contain(`| \`${prefix}qs\` | update | needed |`)
        .and.contain("| `/domain/memory` | `65536 KiB` | `98304 KiB` | restart |");
      s.ok("up", "--yes");
      expect(s.outputs().pendingRestart).to.equal(true);
      expect(await virsh.dumpxmlInactive(`${prefix}qs`)).to.contain("<memory unit='KiB'>98304</memory>");
      expect(s.outputs().uuid).to.equal(firstUuid);
    });

    it("a change behind Pulumi's back shows on refresh and up repairs it", async () => {
      const name = `${prefix}qs`;
      const xml = (await virsh.dumpxmlInactive(name)).replace("<model type='virtio'/>", "<model type='e1000'/>");
      await virsh.define(xml, false);
      const r = s.ok("refresh", "--yes", "--diff");
      expect(r.stdout).to.contain("/domain/devices/interface[mac=52:54:00:5d:5b:01]/model/@type");
      // refresh updates the resource's state (stack outputs change on the next up): the next
      // preview must want to repair it.
      expect(s.run("preview", "--expect-no-changes").code, "preview sees the drift").to.not.equal(0);
      recordPreview(`${labName}-drift-repair`, s.previewJson());
      s.ok("up", "--yes");
      expect(s.outputs().drift).to.deep.equal([]);
      expect(await virsh.dumpxmlInactive(name)).to.contain("<model type='virtio'/>");
      s.ok("preview", "--expect-no-changes");
    });

    it("bad input fails in preview, naming the property; nothing changes", async () => {
      s.setConfig("hwuuid", "00000000-0000-0000-0000-000000000000");
      const r = s.run("preview");
      expect(r.code).to.not.equal(0);
      expect(r.stdout + r.stderr).to.contain("hwuuid: has all 16 bytes equal");
      s.ok("config", "rm", "hwuuid");
      expect(await virsh.queryGuestUuid(`${prefix}qs`)).to.equal(H);
    });

    it("a rename re-creates: new uuid, same guest UUID over QMP", async () => {
      s.setConfig("name", `${prefix}qs2`);
      recordPreview(`${labName}-rename`, s.previewJson());
      s.ok("up", "--yes");
      const out = s.outputs();
      expect(out.uuid).to.not.equal(firstUuid);
      expect(out.guestUuid).to.equal(H);
      expect(await virsh.queryGuestUuid(`${prefix}qs2`)).to.equal(H);
      expect(await virsh.exists(`${prefix}qs`)).to.equal(false);
    });

    it("destroy leaves no domain and no file the stack created", async () => {
      s.setConfig("hwuuid", H);
      recordPreview(`${labName}-no-changes`, JSON.parse(s.run("preview", "--json", "--diff").stdout));
      s.ok("destroy", "--yes");
      expect(await domainsWithPrefix(lab.uri, prefix)).to.deep.equal([]);
      expect(listFiles(lab.imageDir)).to.deep.equal(filesBefore);
    });
  });
}

describe("pulumi CLI end to end: a failure in the middle of up converges on the next up (new lab)", function () {
  this.timeout(600000);
  let lab: Lab;
  let s: PulumiStack;
  const prefix = `${RUN_PREFIX}-em-`;
  before(async () => {
    lab = await requireLab("new");
    s = new PulumiStack(path.join(REPO_ROOT, "test", "e2e", "programs", "two-domains"), "two-domains", "e2e");
    s.init({ "libvirt:uri": lab.uri, prefix });
  });
  after(async () => {
    s?.run("destroy", "--yes");
    if (lab) await removeDomains(lab.uri, prefix);
  });

  it("b fails (its name is taken by a domain we do not own), a stays; after the obstacle goes, up converges", async () => {
    const virsh = new VirshBackend(lab.uri);
    await virsh.define(
      `<domain type='qemu'><name>${prefix}b</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os></domain>`,
    );
    const r = s.run("up", "--yes");
    expect(r.code).to.not.equal(0);
    expect(r.stdout + r.stderr)
      .to.contain("already exists")
      .and.contain("adopt: true");
    expect(await virsh.exists(`${prefix}a`)).to.equal(true);
    expect(s.ok("stack", "export").stdout).to.contain(`${prefix}a`);
    await virsh.undefine(`${prefix}b`);
    s.ok("up", "--yes");
    expect((s.outputs().uuids as string[]).every((u) => /^[0-9a-f-]{36}$/.test(u))).to.equal(true);
    s.ok("preview", "--expect-no-changes");
    s.setConfig("dropB", "true");
    recordPreview("new-delete", s.previewJson());
    s.ok("destroy", "--yes");
    expect(await domainsWithPrefix(lab.uri, prefix)).to.deep.equal([]);
  });
});
