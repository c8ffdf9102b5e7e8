/**
 * Fault tolerance with the real Pulumi CLI: the libvirt daemon killed in the middle of a fleet
 * `pulumi up`; QEMU killed under a running domain; the disk filling while overlays are made; two
 * stacks racing on one host; 50+ bad inputs across Domain and DomainFleet at preview. After every
 * test the template images are byte-identical to before.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { VirshBackend } from "../../provider/backends/virsh/virsh-backend";
import { domainBadInputs, fleetBadInputs, fleetTemplates } from "../support/bad-inputs";
import { domainsWithPrefix, listFiles, removeDomains, RUN_PREFIX } from "../support/domains";
import { Lab, labScript, requireLab } from "../support/lab";
import { REPO_ROOT } from "../support/paths";
import { PulumiStack } from "../support/pulumi";
import { sha256File } from "../support/files";

async function makeTemplate(v: VirshBackend, name: string, image: string): Promise<void> {
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", image, "128M"]);
  execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -q -P 0x44 0 8M", image]);
  await v.define(`<domain type='qemu'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>
    <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${image}'/><target dev='vda' bus='virtio'/></disk>
    <interface type='user'><model type='virtio'/></interface><serial type='pty'/></devices></domain>`);
}

/** Resource ids of one type in the stack's state. */
function stateIds(s: PulumiStack, type: string): string[] {
  const state = JSON.parse(s.ok("stack", "export").stdout);
  return (state.deployment.resources ?? [])
    .filter((r: { type: string }) => r.type.includes(type))
    .map((r: { id: string }) => r.id);
}

describe("fault tolerance (real CLI, labs) — each case its own stack, in any order", function () {
  this.timeout(900000);
  const prefix = `${RUN_PREFIX}-ft-`;
  let host: Lab;
  let fresh: Lab;
  const templates: Record<string, string> = {};
  before(async () => {
    host = await requireLab("host");
    fresh = await requireLab("new");
  });
  afterEach(() => {
    for (const [file, sum] of Object.entries(templates))
      expect(sha256File(file), `template image ${file} unchanged`).to.equal(sum);
  });
  after(async () => {
    labScript("up", "all");
    for (const l of [host, fresh]) if (l) await removeDomains(l.uri, prefix);
    for (const f of fs.readdirSync(host.imageDir))
      if (f.startsWith(prefix)) fs.rmSync(path.join(host.imageDir, f), { force: true });
  });

  it("libvirtd killed in the middle of a fleet up: a clear error; after a restart the next up converges, leaving nothing the state does not know", async () => {
    const v = new VirshBackend(fresh.uri);
    const image = path.join(fresh.imageDir, `${prefix}kill-tmpl.qcow2`);
    await makeTemplate(v, `${prefix}kill-tmpl`, image);
    templates[image] = sha256File(image);
    const s = new PulumiStack(path.join(REPO_ROOT, "examples", "fleet"), "faults-kill", "e2e");
    s.init({
      "libvirt:uri": fresh.uri,
      template: `${prefix}kill-tmpl`,
      size: "8",
      namePattern: `${prefix}k{key}`,
      shutdownTimeoutSeconds: "0",
    });
    try {
      const up = s.runAsync(["up", "--yes"]);
      // Kill the daemon as soon as the first member is defined.
      const deadline = Date.now() + 120000;
      while (Date.now() < deadline && (await domainsWithPrefix(fresh.uri, `${prefix}k`).catch(() => [])).length === 0)
        await new Promise((r) => setTimeout(r, 20));
      labScript("crash", "new");
      const r = await up;
      expect(r.code, "up fails").to.not.equal(0);
      expect(r.stdout + r.stderr).to.match(
        /Failed to connect socket|End of file while reading data|Cannot recv data|failed to connect to the hypervisor|Connection reset/i,
      );
      labScript("up", "new");
      s.ok("up", "--yes");
      const inState = stateIds(s, "libvirt-domain:Domain")
        .filter((id) => id.startsWith(`${prefix}k`) && id !== `${prefix}kill-tmpl`)
        .sort();
      const onHost = (await domainsWithPrefix(fresh.uri, `${prefix}k`))
        .filter((n) => n !== `${prefix}kill-tmpl`)
        .sort();
      expect(onHost).to.have.length(8);
      expect(onHost).to.deep.equal(inState);
      const disks = stateIds(s, "libvirt-domain:DiskImage").sort();
      const files = fs
        .readdirSync(fresh.imageDir)
        .filter((f) => f.startsWith(`${prefix}k`) && f !== `${prefix}kill-tmpl.qcow2`)
        .map((f) => path.join(fresh.imageDir, f))
        .sort();
      expect(files).to.deep.equal(disks);
      s.ok("preview", "--expect-no-changes");
      s.ok("destroy", "--yes");
      expect(await domainsWithPrefix(fresh.uri, `${prefix}k`)).to.deep.equal([`${prefix}kill-tmpl`]);
    } finally {
      labScript("up", "new");
      s.run("destroy", "--yes");
    }
  });

  it("QEMU killed under a running domain: refresh shows it stopped, up starts it again", async () => {
    const s = new PulumiStack(path.join(REPO_ROOT, "examples", "quickstart"), "faults-qemu", "e2e");
    s.init({ "libvirt:uri": host.uri, name: `${prefix}q`, shutdownTimeoutSeconds: "0" });
    try {
      s.ok("up", "--yes");
      const pid = Number(fs.readFileSync(`/run/libvirt/qemu/${prefix}q.pid`, "utf8"));
      process.kill(pid, "SIGKILL");
      const v = new VirshBackend(host.uri);
      for (let i = 0; i < 100 && (await v.domstate(`${prefix}q`)) !== "shut off"; i++)
        await new Promise((r) => setTimeout(r, 100));
      const r = s.ok("refresh", "--yes", "--diff");
      expect(r.stdout).to.match(/state\s*:\s*"running" => "shut off"/);
      s.ok("up", "--yes");
      expect(await v.domstate(`${prefix}q`)).to.equal("running");
      expect(s.outputs().state).to.equal("running");
      s.ok("destroy", "--yes");
    } finally {
      s.run("destroy", "--yes");
    }
  });

  it("the disk fills while overlays are made: a clear error, no partial files", async () => {
    const v = new VirshBackend(host.uri);
    const image = path.join(host.imageDir, `${prefix}full-tmpl.qcow2`);
    await makeTemplate(v, `${prefix}full-tmpl`, image);
    templates[image] = sha256File(image);
    const small = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-full-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=640k", "tmpfs", small]);
    const s = new PulumiStack(path.join(REPO_ROOT, "examples", "fleet"), "faults-full", "e2e");
    s.init({
      "libvirt:uri": host.uri,
      template: `${prefix}full-tmpl`,
      size: "6",
      namePattern: `${prefix}f{key}`,
      imageDir: small,
      shutdownTimeoutSeconds: "0",
    });
    try {
      const r = s.run("up", "--yes");
      expect(r.code).to.not.equal(0);
      expect(r.stdout + r.stderr)
        .to.contain("No space left on device")
        .and.contain("has room");
      const left = fs.readdirSync(small);
      expect(
        left.filter((f) => f.includes(".partial")),
        "no partial files",
      ).to.deep.equal([]);
      expect(left.sort()).to.deep.equal(
        stateIds(s, "libvirt-domain:DiskImage")
          .map((p) => path.basename(p))
          .sort(),
      );
      s.ok("destroy", "--yes");
      expect(fs.readdirSync(small)).to.deep.equal([]);
    } finally {
      s.run("destroy", "--yes");
      execFileSync("umount", [small]);
      fs.rmdirSync(small);
    }
  });

  it("two stacks racing on one host: no name or file collision", async () => {
    const v = new VirshBackend(host.uri);
    const image = path.join(host.imageDir, `${prefix}race-tmpl.qcow2`);
    await makeTemplate(v, `${prefix}race-tmpl`, image);
    templates[image] = sha256File(image);
    const a = new PulumiStack(path.join(REPO_ROOT, "examples", "fleet"), "faults-race-a", `${prefix}a`);
    const b = new PulumiStack(path.join(REPO_ROOT, "examples", "fleet"), "faults-race-b", `${prefix}b`);
    for (const s of [a, b])
      s.init({ "libvirt:uri": host.uri, template: `${prefix}race-tmpl`, size: "3", shutdownTimeoutSeconds: "0" });
    try {
      const [ra, rb] = await Promise.all([a.runAsync(["up", "--yes"]), b.runAsync(["up", "--yes"])]);
      expect(ra.code, ra.stdout + ra.stderr).to.equal(0);
      expect(rb.code, rb.stdout + rb.stderr).to.equal(0);
      const ma = a.outputs().members as { name: string; guestUuid: string }[];
      const mb = b.outputs().members as { name: string; guestUuid: string }[];
      const names = [...ma, ...mb].map((m) => m.name);
      expect(new Set(names).size).to.equal(6);
      expect(new Set([...ma, ...mb].map((m) => m.guestUuid)).size).to.equal(6);
      const files = fs.readdirSync(host.imageDir).filter((f) => names.some((n) => f.startsWith(`${n}-`)));
      expect(files).to.have.length(6);
      for (const m of [...ma, ...mb]) expect(await v.queryGuestUuid(m.name)).to.equal(m.guestUuid);
      const [da, db] = await Promise.all([a.runAsync(["destroy", "--yes"]), b.runAsync(["destroy", "--yes"])]);
      expect([da.code, db.code]).to.deep.equal([0, 0]);
      expect(fs.readdirSync(host.imageDir).filter((f) => names.some((n) => f.startsWith(`${n}-`)))).to.deep.equal([]);
    } finally {
      a.run("destroy", "--yes");
      b.run("destroy", "--yes");
    }
  });

  it("50+ bad inputs across Domain and DomainFleet fail at preview, naming what is wrong; nothing is created", async () => {
    const v = new VirshBackend(fresh.uri);
    const tp = `${prefix}b`;
    const defs = fleetTemplates(tp, fresh.imageDir);
    const image = path.join(fresh.imageDir, `${tp}tmpl.qcow2`);
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", image, "64M"]);
    templates[image] = sha256File(image);
    for (const xml of Object.values(defs)) await v.define(xml);
    await v.start(`${tp}running`);
    const cases = [
      ...domainBadInputs(`${prefix}d`).map(([t, args, p, re]) => ({
        title: t,
        kind: "domain",
        args: { connection: { uri: fresh.uri }, ...args },
        p,
        re,
      })),
      ...fleetBadInputs(tp, fresh.uri).map(([t, args, p, re]) => ({ title: t, kind: "fleet", args, p, re })),
    ];
    expect(cases.length).to.be.at.least(50);
    const domainsBefore = (await v.listNames()).sort();
    const filesBefore = listFiles(fresh.imageDir);
    const s = new PulumiStack(path.join(REPO_ROOT, "test", "e2e", "programs", "bad-inputs"), "faults-bad", "c0");
    const failures: string[] = [];
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < cases.length; i = next++) {
        const c = cases[i]!;
        const stack = `c${i}`;
        s.ok("stack", "init", stack);
        s.ok("config", "set", "--stack", stack, "case", JSON.stringify({ kind: c.kind, args: c.args }));
        const r = await s.runAsync(["preview", "--stack", stack]);
        const text = r.stdout + r.stderr;
        if (r.code === 0 || !text.includes(c.p) || !c.re.test(text))
          failures.push(`${c.title}: exit ${r.code}, wanted ${c.p} and ${c.re}\n${text.slice(-600)}`);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    expect(failures, failures.join("\n\n")).to.deep.equal([]);
    expect((await v.listNames()).sort()).to.deep.equal(domainsBefore);
    expect(listFiles(fresh.imageDir)).to.deep.equal(filesBefore);
    await v.destroy(`${tp}running`);
  });
});
