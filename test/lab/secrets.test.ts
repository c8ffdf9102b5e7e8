/**
 * Graphics passwords against the real parts. On libvirt 9.0 and 12.x: a Domain whose XML sets
 * `<graphics type='vnc' passwd=...>` shows no change after create (libvirt reports the password
 * only with --security-info), so `restartOnChange` never restarts it (same uuid, domain id, QEMU
 * pid and start time), and the engine-facing provider returns its XML as secrets. On QEMU-direct
 * with QEMU 7.2 and 11.x: VNC starts with authentication (QMP query-vnc says `vnc`; an RFB
 * handshake offers VNC authentication only, takes the password and refuses another one), and the
 * password is neither on QEMU's command line nor left in a file.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import { qmpOnce } from "../../provider/backends/qemu/qmp";
import { VirshBackend } from "../../provider/backends/virsh/virsh-backend";
import { runVirsh } from "../../provider/backends/virsh/exec";
import * as impl from "../../provider/dynamic/impl";
import { checkAndCreate, removeDomains, RUN_PREFIX } from "../support/domains";
import { directQemuLabel, Lab, makeDirectState, removeDirectState, requireLab } from "../support/lab";
import { rfbHandshake } from "../support/vnc";
import { qemuProcess } from "../support/qemu-pid";

/** At most 8 characters (VNC authentication uses 8), with characters XML must escape. */
const PW = "S&c'r3t!";
const PW_ESCAPED = "S&amp;c&apos;r3t!";
/** Pulumi's secret sentinel on the wire (`specialSigKey`, `specialSecretSig`). */
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SIG = "1b47061264138c4ac30d75fd1eb44270";

function isSecret(v: unknown): v is { value: unknown } {
  return typeof v === "object" && v !== null && (v as Record<string, unknown>)[SIG_KEY] === SIG;
}
function reveal<T extends Record<string, unknown>>(o: T): T {
  const r: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) r[k] = isSecret(v) ? v.value : v;
  return r as T;
}

const vncXml = (passwd = PW_ESCAPED) => `<domain type='qemu'><name>x</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os><devices><serial type='pty'/>
  <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1' passwd='${passwd}'/><video><model type='vga'/></video></devices></domain>`;

const cookieXml = `<domain type='qemu'><name>x</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
  <disk type='network' device='cdrom'><driver name='qemu' type='raw'/><source protocol='https' name='/x.iso'><host name='example.org' port='443'/>
  <cookies><cookie name='sess'>c00kie-v4lue</cookie></cookies></source><target dev='hdc' bus='ide'/><readonly/></disk><serial type='pty'/></devices></domain>`;

for (const labName of ["new", "host"] as const) {
  describe(`graphics password on libvirt ${labName === "new" ? "12.x" : "9.0"}: no perpetual change, no restart, secret XML`, function () {
    this.timeout(180000);
    let lab: Lab;
    let virsh: VirshBackend;
    const prefix = `${RUN_PREFIX}-s${labName[0]}-`;
    before(async () => {
      lab = await requireLab(labName);
      virsh = new VirshBackend(lab.uri);
    });
    after(async () => removeDomains(lab.uri, prefix));

    it("a running domain with a VNC password and restartOnChange: refresh and up find nothing to do; uuid, domain id and QEMU process stay", async () => {
      const name = `${prefix}vnc`;
      // running is given: a refresh records running: true, and an input left out that the state has
      // reads as a change (a separate issue, not about passwords).
      const inputs = {
        name,
        xml: vncXml(),
        running: true,
        restartOnChange: true,
        connection: { uri: lab.uri },
        shutdownTimeoutSeconds: 0,
      };
      const a = await checkAndCreate(inputs);
      // libvirt keeps the password; only --security-info shows it.
      expect((await runVirsh(lab.uri, ["dumpxml", "--inactive", name])).stdout).to.not.contain("passwd=");
      expect((await runVirsh(lab.uri, ["dumpxml", "--inactive", "--security-info", name])).stdout).to.contain(
        `passwd='${PW_ESCAPED}'`,
      );
      const vnc = JSON.parse(
        (await runVirsh(lab.uri, ["qemu-monitor-command", name, JSON.stringify({ execute: "query-vnc" })])).stdout,
      ).return;
      expect(vnc.auth, "libvirt starts VNC with the password").to.equal("vnc");
      const before = { id: (await runVirsh(lab.uri, ["domid", name])).stdout.trim(), qemu: qemuProcess(name) };
      expect(before.qemu, "QEMU of the domain").to.not.equal(undefined);

      expect(impl.xmlChanges(a.inputs.xml as string, a.outs.xml), "desired vs libvirt's read-back").to.deep.equal([]);
      // pulumi refresh, then pulumi up, as the engine drives them.
      const r = await impl.read(a.id, a.outs);
      expect(r.props.drift, "drift after refresh").to.deep.equal([]);
      let state = r.props;
      for (let up = 1; up <= 2; up++) {
        const c = await impl.check(state, inputs);
        const d = await impl.diff(a.id, state, c.inputs);
        if (d.changes) state = (await impl.update(a.id, state, c.inputs)).outs;
        expect(d.changes, `up #${up} finds a change`).to.equal(false);
      }
      const after = { id: (await runVirsh(lab.uri, ["domid", name])).stdout.trim(), qemu: qemuProcess(name) };
      expect(after, "not restarted").to.deep.equal(before);
      expect(await virsh.domuuid(name)).to.equal(a.outs.uuid);
      await impl.remove(a.id, state);
    });

    it("a network disk's cookie (security info too) shows no perpetual change", async () => {
      const inputs = {
        name: `${prefix}cookie`,
        xml: cookieXml,
        running: false,
        connection: { uri: lab.uri },
        shutdownTimeoutSeconds: 0,
      };
      const a = await checkAndCreate(inputs);
      const r = await impl.read(a.id, a.outs);
      expect(r.props.drift).to.deep.equal([]);
      const c = await impl.check(r.props, inputs);
      expect((await impl.diff(a.id, r.props, c.inputs)).changes).to.equal(false);
      await impl.remove(a.id, r.props);
    });

    it("the engine-facing provider returns xml and desiredXml as secrets (check, create, read, update)", async () => {
      const p = impl.provider;
      const name = `${prefix}sec`;
      const inputs = { name, xml: vncXml(), running: false, connection: { uri: lab.uri }, shutdownTimeoutSeconds: 0 };
      const c = await p.check({}, inputs);
      expect(c.failures ?? []).to.deep.equal([]);
      expect(isSecret(c.inputs.xml), "checked xml").to.equal(true);
      // The engine sends secrets back as plaintext.
      const created = await p.create(reveal(c.inputs));
      for (const k of ["xml", "desiredXml"]) {
        const v = created.outs[k];
        expect(isSecret(v), `create output ${k}`).to.equal(true);
        expect((v as { value: string }).value).to.contain(`passwd='${PW_ESCAPED}'`);
      }
      const outs = reveal(created.outs);
      const read = await p.read(name, outs);
      expect(isSecret(read.props.xml) && isSecret(read.props.desiredXml), "read outputs").to.equal(true);
      const c2 = await p.check(reveal(read.props), { ...inputs, xml: vncXml("other-pw") });
      const u = await p.update(name, reveal(read.props), reveal(c2.inputs));
      expect(isSecret(u.outs.xml) && isSecret(u.outs.desiredXml), "update outputs").to.equal(true);
      expect(
        (await runVirsh(lab.uri, ["dumpxml", "--inactive", "--security-info", name])).stdout,
        "the new password is applied",
      ).to.contain("passwd='other-pw'");
      await p.delete(name, reveal(u.outs));
    });
  });
}

for (const which of ["host", "new"] as const) {
  describe(`QEMU-direct VNC password, QEMU ${directQemuLabel(which)}`, function () {
    this.timeout(120000);
    let uri: string;
    let state: string;
    before(() => {
      ({ uri, state } = makeDirectState(which, "vncpw"));
    });
    after(() => removeDirectState(uri, state));

    it("VNC starts with authentication: query-vnc says vnc, RFB offers VNC authentication only, the password is accepted and another refused", async () => {
      const a = await checkAndCreate({ name: "vncpw", xml: vncXml(), connection: { uri }, shutdownTimeoutSeconds: 0 });
      expect(a.outs.state).to.equal("running");
      const vnc = (await qmpOnce(path.join(state, "vncpw", "qmp.sock"), "query-vnc")) as {
        auth: string;
        host: string;
        service: string;
      };
      expect(vnc.auth).to.equal("vnc");
      const port = Number(vnc.service);
      const offered = await rfbHandshake(vnc.host, port);
      expect(offered.securityTypes, "security types offered").to.deep.equal([2]);
      expect((await rfbHandshake(vnc.host, port, PW)).authResult, "the password logs in").to.equal(0);
      expect((await rfbHandshake(vnc.host, port, "wrong-pw")).authResult, "another password is refused").to.equal(1);
      await impl.remove("vncpw", a.outs);
    });

    it("the password is not on QEMU's command line, and no file holds it once QEMU runs (only domain.xml, 0600)", async () => {
      const a = await checkAndCreate({
        name: "cmdline",
        xml: vncXml(),
        running: true,
        connection: { uri },
        shutdownTimeoutSeconds: 0,
      });
      const pid = Number(fs.readFileSync(path.join(state, "cmdline", "qemu.pid"), "utf8"));
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
      expect(cmdline).to.contain("password-secret=vnc0-secret");
      expect(cmdline).to.not.contain(PW);
      expect(cmdline).to.not.contain(PW_ESCAPED);
      const dir = path.join(state, "cmdline");
      const holding = fs.readdirSync(dir).filter((f) => {
        const file = path.join(dir, f);
        if (!fs.statSync(file).isFile()) return false;
        const t = fs.readFileSync(file, "latin1");
        return t.includes(PW) || t.includes(PW_ESCAPED);
      });
      expect(holding, "files holding the password").to.deep.equal(["domain.xml"]);
      expect(fs.statSync(path.join(dir, "domain.xml")).mode & 0o777).to.equal(0o600);
      expect(
        fs.readdirSync(dir).filter((f) => /secret/.test(f)),
        "secret files left",
      ).to.deep.equal([]);
      // No perpetual change either: the stored XML is the definition itself.
      const r = await impl.read("cmdline", a.outs);
      expect(r.props.drift).to.deep.equal([]);
      const c = await impl.check(r.props, {
        name: "cmdline",
        xml: vncXml(),
        running: true,
        connection: { uri },
        shutdownTimeoutSeconds: 0,
      });
      expect((await impl.diff("cmdline", r.props, c.inputs)).changes).to.equal(false);
      await impl.remove("cmdline", a.outs);
    });

    it("an empty password allows no login (as libvirt, which expires it at once)", async () => {
      const a = await checkAndCreate({
        name: "nologin",
        xml: vncXml(""),
        connection: { uri },
        shutdownTimeoutSeconds: 0,
      });
      const vnc = (await qmpOnce(path.join(state, "nologin", "qmp.sock"), "query-vnc")) as {
        auth: string;
        host: string;
        service: string;
      };
      expect(vnc.auth).to.equal("vnc");
      expect((await rfbHandshake(vnc.host, Number(vnc.service), "")).authResult).to.equal(1);
      await impl.remove("nologin", a.outs);
    });
  });
}
