/**
 * examples/fleet across both labs as two hosts, with the real Pulumi CLI: the 9.0 lab
 * (passthrough hwuuid) as host "host" and the 12.x lab (native `<hwuuid>`) as host "new", a
 * template of one name on each. Scale 2 -> 6 -> 3: members stay where they were placed, 3/3 at 6,
 * each guest sees its hwuuid over QMP. Then the 12.x lab's libvirtd is killed in the middle of an
 * up to 6 (`--continue-on-error`): the other host's member is created and recorded, the error names
 * the host and its URI; a preview while it is down warns naming it; after a restart the next
 * `up --refresh` converges. Then destroy leaves only the templates, their images unchanged.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { VirshBackend } from "../../provider/backends/virsh/virsh-backend";
import { domainsWithPrefix, removeDomains, RUN_PREFIX } from "../support/domains";
import { Lab, labScript, requireLab } from "../support/lab";
import { REPO_ROOT } from "../support/paths";
import { PulumiStack } from "../support/pulumi";
import { sha256File } from "../support/files";

interface Member {
  key: string;
  host: string;
  name: string;
  uuid: string;
  guestUuid: string;
}

describe("pulumi CLI end to end: examples/fleet across two hosts (9.0 and 12.x labs), 2 -> 6 -> 3, a host killed mid-up, destroy — one stack, its cases run in the order written", function () {
  this.timeout(900000);
  const prefix = `${RUN_PREFIX}-xh-`;
  const template = `${prefix}tmpl`;
  const labs: Record<string, Lab> = {};
  const v: Record<string, VirshBackend> = {};
  const images: Record<string, string> = {};
  const sums: Record<string, string> = {};
  let s: PulumiStack;
  /** Member key -> host, as first placed. */
  const placedOn: Record<string, string> = {};
  /** Member key -> libvirt uuid, as first created. */
  const uuidOf: Record<string, string> = {};

  before(async () => {
    labs.host = await requireLab("host");
    labs.new = await requireLab("new");
    for (const h of ["host", "new"]) {
      const lab = labs[h]!;
      v[h] = new VirshBackend(lab.uri);
      const image = path.join(lab.imageDir, `${prefix}tmpl-${h}.qcow2`);
      execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", image, "128M"]);
      execFileSync("qemu-io", ["-f", "qcow2", "-c", `write -q -P 0x${h === "host" ? "55" : "66"} 0 8M`, image]);
      images[h] = image;
      sums[h] = sha256File(image);
      await v[h].define(`<domain type='qemu'><name>${template}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
        <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${image}'/><target dev='vda' bus='virtio'/></disk>
        <interface type='user'><model type='virtio'/></interface><serial type='pty'/></devices></domain>`);
    }
    s = new PulumiStack(path.join(REPO_ROOT, "examples", "fleet"), "fleet-hosts", "e2e");
    s.init({
      template,
      hosts: JSON.stringify([
        { name: "host", uri: labs.host.uri },
        { name: "new", uri: labs.new.uri },
      ]),
      size: "2",
      namePattern: `${prefix}{key}`,
      shutdownTimeoutSeconds: "0",
    });
  });
  after(async () => {
    labScript("up", "new");
    s?.run("destroy", "--yes");
    for (const lab of Object.values(labs)) await removeDomains(lab.uri, prefix);
    const dir = labs.host?.imageDir;
    if (dir) for (const f of fs.readdirSync(dir)) if (f.startsWith(prefix)) fs.rmSync(path.join(dir, f));
  });

  function members(): Member[] {
    return s.outputs().members as Member[];
  }

  /** Member names on each host (templates left out). */
  async function onHosts(): Promise<Record<string, string[]>> {
    const out: Record<string, string[]> = {};
    for (const h of ["host", "new"])
      out[h] = (await domainsWithPrefix(labs[h]!.uri, prefix)).filter((n) => n !== template).sort();
    return out;
  }

  /** Every member is on its recorded host only, keeps its first host and uuid, and its guest sees its hwuuid. */
  async function checkMembers(ms: Member[]): Promise<void> {
    const hosts = await onHosts();
    for (const m of ms) {
      expect(m.host, `member ${m.key}'s host`).to.be.oneOf(["host", "new"]);
      const other = m.host === "host" ? "new" : "host";
      expect(hosts[m.host], `${m.name} on ${m.host}`).to.include(m.name);
      expect(hosts[other], `${m.name} not on ${other}`).to.not.include(m.name);
      placedOn[m.key] ??= m.host;
      uuidOf[m.key] ??= m.uuid;
      expect(m.host, `member ${m.key} stays where it was placed`).to.equal(placedOn[m.key]);
      expect(m.uuid, `member ${m.key} keeps its libvirt uuid`).to.equal(uuidOf[m.key]);
      expect(await v[m.host]!.queryGuestUuid(m.name), `${m.name}'s guest UUID over QMP`).to.equal(m.guestUuid);
      const xml = await v[m.host]!.dumpxmlInactive(m.name);
      // 12.x: native <hwuuid>; 9.0: passthrough (no <hwuuid> element).
      if (m.host === "new") expect(xml).to.contain(`<hwuuid>${m.guestUuid}</hwuuid>`);
      else {
        expect(xml).to.not.contain("<hwuuid>");
        expect(xml).to.contain(m.guestUuid);
      }
    }
    expect(Object.values(hosts).flat().sort()).to.deep.equal(ms.map((m) => m.name).sort());
    expect(new Set(ms.map((m) => m.guestUuid)).size).to.equal(ms.length);
  }

  it("up with 2 members: one on each host, each from its host's template", async () => {
    s.ok("up", "--yes");
    const ms = members();
    expect(ms.map((m) => [m.key, m.host])).to.deep.equal([
      ["1", "host"],
      ["2", "new"],
    ]);
    await checkMembers(ms);
    for (const h of ["host", "new"]) {
      const m = ms.find((x) => x.host === h)!;
      const xml = await v[h]!.dumpxmlInactive(m.name);
      expect(xml, `${m.name} backed by its host's template image`).to.contain(`${prefix}${m.key}-vda.qcow2`);
      const info = execFileSync(
        "qemu-img",
        ["info", "-U", "--output=json", path.join(labs.host!.imageDir, `${m.name}-vda.qcow2`)],
        {
          encoding: "utf8",
        },
      );
      expect((JSON.parse(info) as { "backing-filename": string })["backing-filename"]).to.equal(images[h]);
    }
  });

  it("scale to 6: the two stay where they were, the four new ones spread: 3/3", async () => {
    s.setConfig("size", "6");
    s.ok("up", "--yes");
    const ms = members();
    expect(ms.map((m) => m.key)).to.deep.equal(["1", "2", "3", "4", "5", "6"]);
    await checkMembers(ms);
    expect(ms.filter((m) => m.host === "host")).to.have.length(3);
    expect(ms.filter((m) => m.host === "new")).to.have.length(3);
  });

  it("scale to 3: members 4-6 go from whichever host held them; 1-3 stay, untouched", async () => {
    s.setConfig("size", "3");
    s.ok("up", "--yes");
    const ms = members();
    expect(ms.map((m) => m.key)).to.deep.equal(["1", "2", "3"]);
    await checkMembers(ms);
    s.ok("preview", "--expect-no-changes");
  });

  it("the 12.x lab's libvirtd killed mid-up to 6 (--continue-on-error): the other host's member is created and recorded, the error names the host; the next up converges", async () => {
    s.setConfig("size", "6");
    // From 1:host, 2:new, 3:host the rule places 4:new, 5:host, 6:new.
    const up = s.runAsync(["up", "--yes", "--continue-on-error"]);
    const first = [4, 5, 6].map((k) => path.join(labs.host!.imageDir, `${prefix}${k}-vda.qcow2`));
    const deadline = Date.now() + 120000;
    while (Date.now() < deadline && !first.some((f) => fs.existsSync(f))) await new Promise((r) => setTimeout(r, 10));
    labScript("crash", "new");
    try {
      const r = await up;
      const text = r.stdout + r.stderr;
      fs.writeFileSync(path.join(path.dirname(s.dir), "killed-up.log"), text);
      expect(r.code, text).to.not.equal(0);
      expect(text.includes(`host new (${labs.new!.uri})`), `the error names the host and its URI:\n${text}`).to.equal(
        true,
      );
      expect((await domainsWithPrefix(labs.host!.uri, `${prefix}5`)).length, "member 5 created on host").to.equal(1);
      const state = JSON.parse(s.ok("stack", "export").stdout) as {
        deployment: { resources?: { type: string; id?: string }[] };
      };
      const ids = (state.deployment.resources ?? []).filter((x) => x.type.includes("Domain")).map((x) => x.id);
      expect(ids, "member 5 recorded").to.include(`${prefix}5`);
      // While it is down, a preview warns naming it; its recorded members are held as they are
      // (not a failure that would stop the other host's members).
      const p = s.run("preview");
      expect(p.code, p.stdout + p.stderr).to.equal(0);
      expect(p.stdout + p.stderr).to.contain(`host new (${labs.new!.uri}) cannot be reached while planning`);
    } finally {
      labScript("up", "new");
    }
    // --refresh: the crash may have stopped the guests of that host; a refresh sees it, the up restarts them.
    s.ok("up", "--yes", "--refresh");
    const ms = members();
    expect(ms.map((m) => [m.key, m.host])).to.deep.equal([
      ["1", "host"],
      ["2", "new"],
      ["3", "host"],
      ["4", "new"],
      ["5", "host"],
      ["6", "new"],
    ]);
    for (const k of ["4", "5", "6"]) {
      delete placedOn[k];
      delete uuidOf[k];
    }
    await checkMembers(ms);
    s.ok("preview", "--expect-no-changes");
  });

  it("destroy removes every member on both hosts; the templates and their images are unchanged", async () => {
    s.ok("destroy", "--yes");
    expect(await onHosts()).to.deep.equal({ host: [], new: [] });
    for (const h of ["host", "new"]) {
      expect(await domainsWithPrefix(labs[h]!.uri, prefix)).to.deep.equal([template]);
      expect(sha256File(images[h]!), `${h} template image`).to.equal(sums[h]);
    }
    expect(
      fs
        .readdirSync(labs.host!.imageDir)
        .filter((f) => f.startsWith(prefix))
        .sort(),
    ).to.deep.equal([`${prefix}tmpl-host.qcow2`, `${prefix}tmpl-new.qcow2`]);
  });
});
