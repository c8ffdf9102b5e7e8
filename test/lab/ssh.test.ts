/**
 * The Domain provider over a real qemu+ssh:// connection: the 12.x lab reached through the
 * lab's OpenSSH server (key-only, pinned host key) and libvirt's ssh transport. Create, read,
 * update and delete; the hwuuid reaches QEMU natively (QMP `query-uuid` through
 * `virsh qemu-monitor-command` over the same ssh URI).
 */
import { expect } from "chai";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { VirshBackend } from "../../provider/backends/virsh/virsh-backend";
import { runVirsh } from "../../provider/backends/virsh/exec";
import * as impl from "../../provider/dynamic/impl";
import { checkAndCreate, removeDomains, RUN_PREFIX } from "../support/domains";
import { requireSshLab, type SshLab } from "../support/remote";

const H = "5d5b0f1d-128b-4517-8e65-b258a8734c1d";

describe("Domain provider over qemu+ssh:// (libvirt 12.x behind the lab's sshd)", function () {
  this.timeout(300000);
  let lab: SshLab;
  const prefix = `${RUN_PREFIX}-s-`;
  before(async () => {
    lab = await requireSshLab();
  });
  after(async () => {
    if (lab) await removeDomains(lab.uri, prefix);
  });

  it("the connection is ssh to the 12.x daemon, and a host key other than the pinned one is refused", async () => {
    expect(lab.uri).to.match(/^qemu\+ssh:\/\/root@127\.0\.0\.1:\d+\/system\?/);
    expect(lab.uri).to.not.match(/no_verify=1/);
    const v = await runVirsh(lab.uri, ["version", "--daemon"]);
    expect(v.stdout).to.match(/Running against daemon: 12\./);
    // The same server through an ssh whose known_hosts pins another key for it: refused.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-ssh-test-"));
    try {
      const keyfile = new URL(lab.uri.replace(/^qemu\+ssh/, "http")).searchParams.get("keyfile")!;
      execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "other")]);
      const port = /:(\d+)\/system/.exec(lab.uri)![1]!;
      const other = fs.readFileSync(path.join(dir, "other.pub"), "utf8").split(" ").slice(0, 2).join(" ");
      fs.writeFileSync(path.join(dir, "known_hosts"), `[127.0.0.1]:${port} ${other}\n`);
      fs.writeFileSync(
        path.join(dir, "ssh_config"),
        `Host *\n  IdentityFile ${keyfile}\n  IdentitiesOnly yes\n  UserKnownHostsFile ${dir}/known_hosts\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n`,
      );
      fs.writeFileSync(path.join(dir, "ssh"), `#!/bin/sh\nexec ssh -F '${dir}/ssh_config' "$@"\n`, { mode: 0o755 });
      const wrongPin = lab.uri.replace(/command=[^&]*/, `command=${dir}/ssh`);
      const r = spawnSync("virsh", ["-c", wrongPin, "version"], { encoding: "utf8", timeout: 30000 });
      expect(r.status, "virsh through an ssh that pins another host key").to.not.equal(0);
      expect(r.stderr).to.contain("Host key verification failed");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("create, read, update, delete: native hwuuid, QMP query-uuid over ssh gives it, libvirt keeps its own uuid", async () => {
    const inputs = {
      name: `${prefix}web`,
      hwuuid: H,
      memory: "64 MiB",
      connection: { uri: lab.uri },
      shutdownTimeoutSeconds: 0,
    };
    const a = await checkAndCreate(inputs);
    const b = new VirshBackend(lab.uri);
    expect(a.outs.hwuuidMode).to.equal("native");
    expect(a.outs.libvirtVersion).to.match(/^12\./);
    expect(a.outs.state).to.equal("running");
    expect(a.outs.guestUuid).to.equal(H);
    expect(await b.queryGuestUuid(a.id)).to.equal(H);
    expect(await b.domuuid(a.id)).to.equal(a.outs.uuid);
    expect(a.outs.uuid).to.not.equal(H);
    expect(a.outs.xml).to.contain(`<hwuuid>${H}</hwuuid>`);

    const r = await impl.read(a.id, a.outs);
    expect(r.id).to.equal(a.id);
    expect(r.props.drift).to.deep.equal([]);
    const c0 = await impl.check(r.props, inputs);
    expect((await impl.diff(a.id, r.props, c0.inputs)).changes, "no change right after create").to.equal(false);

    const c = await impl.check(r.props, { ...inputs, memory: "96 MiB", restartOnChange: true });
    const d = await impl.diff(a.id, r.props, c.inputs);
    expect(d.changes).to.equal(true);
    expect(d.replaces ?? []).to.deep.equal([]);
    const u = await impl.update(a.id, r.props, c.inputs);
    expect(u.outs.uuid, "an update keeps the uuid").to.equal(a.outs.uuid);
    expect(u.outs.xml).to.contain("<memory unit='KiB'>98304</memory>");
    expect(u.outs.state).to.equal("running");
    expect(await b.queryGuestUuid(a.id), "the guest UUID after the restart").to.equal(H);

    await impl.remove(a.id, u.outs);
    expect(await b.exists(a.id)).to.equal(false);
    expect((await impl.read(a.id, u.outs)).id, "read after delete: gone").to.equal("");
  });
});
