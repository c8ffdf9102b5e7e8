/**
 * examples/fleet with the real Pulumi CLI on both labs: up with 3 members, scale to 5, then to 2,
 * then destroy. Scaling touches only the members that come or go; each guest sees its derived
 * hwuuid over QMP; the template (domain and image) is never modified; destroy leaves nothing.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { VirshBackend } from "../../provider/backends/virsh/virsh-backend";
import { domainsWithPrefix, removeDomains, RUN_PREFIX } from "../support/domains";
import { Lab, requireLab } from "../support/lab";
import { REPO_ROOT } from "../support/paths";
import { PulumiStack } from "../support/pulumi";
import { sha256File } from "../support/files";

for (const labName of ["new", "host"] as const) {
  describe(`pulumi CLI end to end: examples/fleet, 3 -> 5 -> 2 -> destroy (${labName} lab) — one stack, its cases run in the order written`, function () {
    this.timeout(900000);
    let lab: Lab;
    let s: PulumiStack;
    let v: VirshBackend;
    const prefix = `${RUN_PREFIX}-x${labName[0]}-`;
    const template = `${prefix}tmpl`;
    let image: string;
    let checksum: string;
    let templateXml: string;

    before(async () => {
      lab = await requireLab(labName);
      v = new VirshBackend(lab.uri);
      image = path.join(lab.imageDir, `${template}.qcow2`);
      execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", image, "256M"]);
      execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -q -P 0x33 0 32M", image]);
      checksum = sha256File(image);
      await v.define(`<domain type='qemu'><name>${template}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
        <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${image}'/><target dev='vda' bus='virtio'/></disk>
        <interface type='user'><mac address='52:54:00:00:bb:01'/><model type='virtio'/></interface><serial type='pty'/></devices></domain>`);
      templateXml = await v.dumpxmlInactive(template);
      s = new PulumiStack(path.join(REPO_ROOT, "examples", "fleet"), `fleet-${labName}`, "e2e");
      s.init({
        "libvirt:uri": lab.uri,
        template,
        size: "3",
        namePattern: `${prefix}{key}`,
        shutdownTimeoutSeconds: "0",
      });
    });
    after(async () => {
      s?.run("destroy", "--yes");
      if (!lab) return;
      await removeDomains(lab.uri, prefix);
      for (const f of fs.readdirSync(lab.imageDir)) if (f.startsWith(prefix)) fs.rmSync(path.join(lab.imageDir, f));
    });

    const uuids: Record<string, string> = {};
    function members(): { name: string; uuid: string; guestUuid: string }[] {
      return s.outputs().members;
    }

    it("up with 3 members: each guest sees its own derived hwuuid", async () => {
      s.ok("up", "--yes");
      const ms = members();
      expect(ms.map((m) => m.name)).to.deep.equal([1, 2, 3].map((k) => `${prefix}${k}`));
      for (const m of ms) {
        expect(await v.queryGuestUuid(m.name)).to.equal(m.guestUuid);
        expect(await v.domuuid(m.name)).to.equal(m.uuid);
        uuids[m.name] = m.uuid;
      }
      expect(new Set(ms.map((m) => m.guestUuid)).size).to.equal(3);
      expect(
        fs.readdirSync(lab.imageDir).filter((f) => f.startsWith(prefix) && f.endsWith("-vda.qcow2")).length,
      ).to.equal(3);
    });

    it("scale to 5 adds two members and leaves the three alone", async () => {
      s.setConfig("size", "5");
      s.ok("up", "--yes");
      const ms = members();
      expect(ms.length).to.equal(5);
      for (const m of ms.slice(0, 3)) expect(m.uuid, m.name).to.equal(uuids[m.name]);
      for (const m of ms) expect(await v.queryGuestUuid(m.name)).to.equal(m.guestUuid);
    });

    it("scale to 2 removes members 3-5 and their overlays only", async () => {
      s.setConfig("size", "2");
      s.ok("up", "--yes");
      const ms = members();
      expect(ms.map((m) => m.uuid)).to.deep.equal([uuids[`${prefix}1`], uuids[`${prefix}2`]]);
      expect((await domainsWithPrefix(lab.uri, prefix)).sort()).to.deep.equal(
        [`${prefix}1`, `${prefix}2`, template].sort(),
      );
      expect(
        fs
          .readdirSync(lab.imageDir)
          .filter((f) => f.startsWith(prefix))
          .sort(),
      ).to.deep.equal([`${prefix}1-vda.qcow2`, `${prefix}2-vda.qcow2`, `${template}.qcow2`]);
      s.ok("preview", "--expect-no-changes");
    });

    it("destroy removes every member and overlay; the template is unchanged", async () => {
      s.ok("destroy", "--yes");
      expect(await domainsWithPrefix(lab.uri, prefix)).to.deep.equal([template]);
      expect(fs.readdirSync(lab.imageDir).filter((f) => f.startsWith(prefix))).to.deep.equal([`${template}.qcow2`]);
      expect(sha256File(image)).to.equal(checksum);
      expect(await v.dumpxmlInactive(template)).to.equal(templateXml);
    });

    it("a running template is refused at preview with the fix (once no member holds its image)", async () => {
      await v.start(template);
      try {
        const r = s.run("preview");
        expect(r.code).to.not.equal(0);
        expect(r.stdout + r.stderr)
          .to.contain("is running; it must be shut off")
          .and.contain(`shutdown ${template}`);
      } finally {
        await v.destroy(template);
      }
    });
  });
}
