/**
 * End to end with the real Pulumi CLI over a real qemu+ssh:// connection: examples/quickstart
 * pointed at the 12.x lab through the lab's OpenSSH server by stack config (`libvirt:uri`), up,
 * no change on preview and after refresh, destroy. The guest-visible UUID is read over QMP
 * through the same ssh URI.
 */
import { expect } from "chai";
import * as path from "node:path";
import { VirshBackend } from "../../provider/backends/virsh/virsh-backend";
import { domainsWithPrefix, removeDomains, RUN_PREFIX } from "../support/domains";
import { REPO_ROOT } from "../support/paths";
import { PulumiStack } from "../support/pulumi";
import { requireSshLab, type SshLab } from "../support/remote";

const H = "5d5b0f1d-128b-4517-8e65-b258a8734c1d";

describe("pulumi CLI end to end over qemu+ssh:// (examples/quickstart, libvirt 12.x behind the lab's sshd)", function () {
  this.timeout(600000);
  let lab: SshLab;
  let s: PulumiStack;
  let virsh: VirshBackend;
  const prefix = `${RUN_PREFIX}-es-`;

  before(async () => {
    lab = await requireSshLab();
    virsh = new VirshBackend(lab.uri);
    s = new PulumiStack(path.join(REPO_ROOT, "examples", "quickstart"), "quickstart-ssh", "e2e");
    s.init({ "libvirt:uri": lab.uri, name: `${prefix}qs`, shutdownTimeoutSeconds: "0" });
  });
  after(async () => {
    s?.run("destroy", "--yes");
    if (lab) await removeDomains(lab.uri, prefix);
  });

  it("up creates the domain over ssh: native hwuuid, the guest sees it over QMP, libvirt keeps its own uuid", async () => {
    s.ok("up", "--yes");
    const out = s.outputs();
    expect(out.guestUuid).to.equal(H);
    expect(out.hwuuidMode).to.equal("native");
    expect(await virsh.queryGuestUuid(`${prefix}qs`)).to.equal(H);
    expect(await virsh.domuuid(`${prefix}qs`)).to.equal(out.uuid);
  });

  it("preview --expect-no-changes passes after up and after a refresh", () => {
    s.ok("preview", "--expect-no-changes");
    s.ok("refresh", "--yes");
    s.ok("preview", "--expect-no-changes");
  });

  it("a memory change is applied over ssh, keeping the uuid", async () => {
    const before = s.outputs().uuid;
    s.setConfig("memory", "96 MiB");
    s.ok("up", "--yes");
    expect(s.outputs().uuid).to.equal(before);
    expect(await virsh.dumpxmlInactive(`${prefix}qs`)).to.contain("<memory unit='KiB'>98304</memory>");
  });

  it("destroy leaves no domain", async () => {
    s.ok("destroy", "--yes");
    expect(await domainsWithPrefix(lab.uri, prefix)).to.deep.equal([]);
  });
});
