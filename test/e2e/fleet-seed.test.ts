/**
 * examples/fleet over two hosts where one lacks the template's image, with the real Pulumi CLI:
 * the 9.0 lab (host "host", the template's image a volume of a transient pool of this test) and
 * the 12.x lab over qemu+ssh:// (host "ssh": a template domain of that name whose disk names a
 * volume its pool pld-pool does not have). Without seedImages, preview fails naming the host, the
 * image and the fix; with it, up seeds the image once (progress in the output), the ssh host's
 * member boots from an overlay of the seed (its guest sees its hwuuid over QMP), a second preview
 * and up change nothing, and destroy removes the seed and the members and leaves both templates.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { runVirsh } from "../../provider/backends/virsh/exec";
import { VirshBackend } from "../../provider/backends/virsh/virsh-backend";
import { domainsWithPrefix, removeDomains, RUN_PREFIX } from "../support/domains";
import { type Lab, requireLab } from "../support/lab";
import { REPO_ROOT } from "../support/paths";
import { PulumiStack } from "../support/pulumi";
import { requireSshLab, type SshLab } from "../support/remote";

interface Member {
  key: string;
  host: string;
  name: string;
  uuid: string;
  guestUuid: string;
}

describe("pulumi CLI end to end: examples/fleet seeds a host that lacks the template's image (9.0 lab -> 12.x lab over qemu+ssh://) — one stack, in order", function () {
  this.timeout(600000);
  const prefix = `${RUN_PREFIX}-sd-`;
  const template = `${prefix}tmpl`;
  const image = `${template}.qcow2`;
  const hostPool = `${prefix}pool`;
  let host: Lab;
  let ssh: SshLab;
  let hostDir: string;
  let s: PulumiStack;
  const sshVirsh = async (...args: string[]): Promise<string> => (await runVirsh(ssh.uri, args)).stdout;
  /** The ssh lab's volumes this test may have made (its prefix, and seeds). */
  const sshVolumes = async (): Promise<string[]> =>
    (await sshVirsh("vol-list", "--pool", ssh.pool))
      .split("\n")
      .map((l) => l.trim().split(/\s+/)[0] ?? "")
      .filter((n) => n.startsWith(prefix) || (n.startsWith("lvd-seed-") && n.endsWith(`-${image}`)))
      .sort();

  before(async () => {
    host = await requireLab("host");
    ssh = await requireSshLab();
    // The host lab: the template's image a volume of a transient pool (gone with pool-destroy).
    hostDir = path.join(host.imageDir, `${prefix}pool`);
    fs.mkdirSync(hostDir, { recursive: true });
    const file = path.join(hostDir, image);
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", file, "64M"]);
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -q -P 0x5a 0 2M", file]);
    await runVirsh(host.uri, ["pool-create-as", hostPool, "dir", "--target", hostDir]);
    const domain = (
      dir: string,
    ): string => `<domain type='qemu'><name>${template}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
        <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${path.posix.join(dir, image)}'/><target dev='vda' bus='virtio'/></disk>
        <interface type='user'><model type='virtio'/></interface></devices></domain>`;
    await new VirshBackend(host.uri).define(domain(hostDir));
    // The ssh lab: a template of that name, its disk in pld-pool, where no such volume is.
    await new VirshBackend(ssh.uri).define(domain(ssh.poolDir));
    expect(await sshVolumes()).to.deep.equal([]);
    s = new PulumiStack(path.join(REPO_ROOT, "examples", "fleet"), "fleet-seed", "e2e");
    s.init({
      template,
      hosts: JSON.stringify([
        { name: "host", uri: host.uri },
        { name: "ssh", uri: ssh.uri },
      ]),
      placement: JSON.stringify({ "1": "host", "2": "ssh" }),
      size: "2",
      namePattern: `${prefix}{key}`,
      shutdownTimeoutSeconds: "0",
    });
  });
  after(async () => {
    s?.run("destroy", "--yes");
    if (host) {
      await removeDomains(host.uri, prefix);
      await runVirsh(host.uri, ["pool-destroy", hostPool]).catch(() => undefined);
      if (hostDir) fs.rmSync(hostDir, { recursive: true, force: true });
    }
    if (ssh) {
      await removeDomains(ssh.uri, prefix);
      for (const n of await sshVolumes()) await sshVirsh("vol-delete", "--pool", ssh.pool, "--vol", n);
    }
  });

  it("without seedImages: preview fails naming the host, the image and the fix", () => {
    const r = s.run("preview");
    expect(r.code).to.not.equal(0);
    const out = r.stdout + r.stderr;
    expect(out)
      .to.contain(`host ssh (${ssh.uri}) lacks the template image ${path.posix.join(ssh.poolDir, image)}`)
      .and.contain("fix: seedImages: true");
  });

  it("with seedImages: up seeds the image once (progress shown); the ssh member boots from an overlay of the seed and sees its hwuuid", async () => {
    s.setConfig("seedImages", "true");
    const r = s.ok("up", "--yes");
    const out = r.stdout + r.stderr;
    expect(out).to.match(/seed download of .* \d+ of \d+ bytes \(100%\)/);
    expect(out).to.match(/seed upload to .* \d+ of \d+ bytes \(100%\)/);
    const vols = await sshVolumes();
    expect(vols).to.have.length(2);
    const seed = vols.find((n) => n.startsWith("lvd-seed-"))!;
    expect(vols).to.deep.equal([`${prefix}2-vda.qcow2`, seed].sort());
    const ov = await sshVirsh("vol-dumpxml", "--pool", ssh.pool, "--vol", `${prefix}2-vda.qcow2`);
    expect(ov).to.contain(`<path>${path.posix.join(ssh.poolDir, seed)}</path>`);
    const ms = s.outputs().members as Member[];
    expect(ms.map((m) => [m.key, m.host])).to.deep.equal([
      ["1", "host"],
      ["2", "ssh"],
    ]);
    const m2 = ms.find((m) => m.key === "2")!;
    expect(await new VirshBackend(ssh.uri).queryGuestUuid(m2.name)).to.equal(m2.guestUuid);
    const m1 = ms.find((m) => m.key === "1")!;
    expect(await new VirshBackend(host.uri).queryGuestUuid(m1.name)).to.equal(m1.guestUuid);
  });

  it("a second preview and up change nothing (the seed is not made again)", async () => {
    const key = await sshVirsh(
      "vol-key",
      "--pool",
      ssh.pool,
      (await sshVolumes()).find((n) => n.startsWith("lvd-seed-"))!,
    );
    s.ok("preview", "--expect-no-changes");
    const r = s.ok("up", "--yes", "--expect-no-changes");
    expect(r.stdout + r.stderr).to.not.match(/seed upload/);
    expect(
      await sshVirsh(
        "vol-key",
        "--pool",
        ssh.pool,
        (await sshVolumes()).find((n) => n.startsWith("lvd-seed-"))!,
      ),
    ).to.equal(key);
  });

  it("destroy removes the seed and the members, and leaves both templates", async () => {
    s.ok("destroy", "--yes");
    expect(await sshVolumes()).to.deep.equal([]);
    expect(await domainsWithPrefix(ssh.uri, prefix)).to.deep.equal([template]);
    expect(await domainsWithPrefix(host.uri, prefix)).to.deep.equal([template]);
    expect(fs.readdirSync(hostDir)).to.deep.equal([image]);
  });
});
