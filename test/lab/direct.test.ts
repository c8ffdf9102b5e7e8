/**
 * The QEMU-direct backend with real QEMU (the host's 7.2 and the lab chroot's 11.x), no libvirt:
 * QMP query-uuid, lifecycle, kill -9, state across provider processes, serialized updates, and
 * the identity arguments of the running QEMU beside libvirt 12.x's own command line.
 */
import { expect } from "chai";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { QemuDirectBackend } from "../../provider/backends/qemu/direct";
import { qmpOnce } from "../../provider/backends/qemu/qmp";
import { DirectLock } from "../../provider/backends/qemu/lock";
import { runVirsh } from "../../provider/backends/virsh/exec";
import * as impl from "../../provider/dynamic/impl";
import { checkAndCreate } from "../support/domains";
import { argValues, directQemuLabel, makeDirectState, removeDirectState, requireLab } from "../support/lab";
import { shellWords } from "../support/shell";
import { REPO_ROOT } from "../support/paths";

const H = "5d5b0f1d-128b-4517-8e65-b258a8734c1d";

/** Runs a provider call in a fresh node process (a restarted provider). */
function inFreshProcess(fn: string, args: unknown[]): Promise<unknown> {
  const script = `const impl = require(${JSON.stringify(path.join(REPO_ROOT, "dist", "provider", "dynamic", "impl.js"))});
    impl.provider[${JSON.stringify(fn)}](...${JSON.stringify(args)}).then((r) => process.stdout.write(JSON.stringify(r ?? null)), (e) => { console.error(e.message); process.exit(1); });`;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(err))));
  });
}

for (const which of ["host", "new"] as const) {
  describe(`QEMU-direct backend, QEMU ${directQemuLabel(which)}`, function () {
    this.timeout(120000);
    let uri: string;
    let state: string;
    before(() => {
      ({ uri, state } = makeDirectState(which, "direct"));
    });
    after(() => removeDirectState(uri, state));

    it("query-uuid returns the hwuuid, and the uuid when no hwuuid is set", async () => {
      const b = new QemuDirectBackend(uri);
      const a = await checkAndCreate({ name: "hw", hwuuid: H, connection: { uri }, shutdownTimeoutSeconds: 0 });
      expect(await b.queryGuestUuid("hw")).to.equal(H);
      const n = await checkAndCreate({ name: "nohw", connection: { uri }, shutdownTimeoutSeconds: 0 });
      expect(await b.queryGuestUuid("nohw")).to.equal(n.outs.uuid);
      expect(n.outs.guestUuid).to.equal(n.outs.uuid);
      await impl.remove("hw", a.outs);
      await impl.remove("nohw", n.outs);
    });

    it("lifecycle: define+start, stop, start, update, undefine leaves nothing", async () => {
      const b = new QemuDirectBackend(uri);
      const inputs = { name: "life", hwuuid: H, connection: { uri }, shutdownTimeoutSeconds: 1, memory: "64 MiB" };
      const a = await checkAndCreate(inputs);
      expect(a.outs.state).to.equal("running");
      const off = await impl.update("life", a.outs, (await impl.check(a.outs, { ...inputs, running: false })).inputs);
      expect(off.outs.state).to.equal("shut off");
      const on = await impl.update("life", off.outs, (await impl.check(off.outs, inputs)).inputs);
      expect(on.outs.state).to.equal("running");
      expect(on.outs.uuid).to.equal(a.outs.uuid);
      const mem = await impl.update(
        "life",
        on.outs,
        (await impl.check(on.outs, { ...inputs, memory: "96 MiB", restartOnChange: true })).inputs,
      );
      expect(mem.outs.xml).to.contain("<memory unit='KiB'>98304</memory>");
      expect(mem.outs.pendingRestart).to.equal(false);
      expect(await b.queryGuestUuid("life")).to.equal(H);
      await impl.remove("life", mem.outs);
      expect(fs.readdirSync(state).filter((f) => !f.startsWith("."))).to.deep.equal([]);
    });

    it("kill -9 of QEMU reads as shut off, and up starts it again", async () => {
      const inputs = { name: "killed", connection: { uri }, shutdownTimeoutSeconds: 0 };
      const a = await checkAndCreate(inputs);
      const pid = Number(fs.readFileSync(path.join(state, "killed", "qemu.pid"), "utf8"));
      process.kill(pid, "SIGKILL");
      await new Promise((r) => setTimeout(r, 300));
      const r = await impl.read("killed", a.outs);
      expect(r.props.state).to.equal("shut off");
      const c = await impl.check(r.props, inputs);
      expect((await impl.diff("killed", r.props, c.inputs)).changes).to.equal(true);
      const u = await impl.update("killed", r.props, c.inputs);
      expect(u.outs.state).to.equal("running");
      await impl.remove("killed", u.outs);
    });

    it("<genid> reaches the guest: QMP query-vm-generation-id returns it (issue 12)", async () => {
      const G = "43dc0cf8-809b-4adb-9bea-a9abb5f3d90d";
      const xml = `<domain type='qemu'><name>genid</name><genid>${G.toUpperCase()}</genid><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <os><type arch='x86_64' machine='pc'>hvm</type></os><devices/></domain>`;
      const a = await checkAndCreate({ name: "genid", xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      const r = (await qmpOnce(path.join(state, "genid", "qmp.sock"), "query-vm-generation-id")) as { guid: string };
      expect(r.guid.toLowerCase()).to.equal(G);
      await impl.remove("genid", a.outs);
    });

    it("the state survives a restart of the provider process", async () => {
      const inputs = { name: "persist", hwuuid: H, connection: { uri }, shutdownTimeoutSeconds: 0 };
      const c = await impl.check({}, inputs);
      const created = (await inFreshProcess("create", [c.inputs])) as { id: string; outs: Record<string, unknown> };
      const read = (await inFreshProcess("read", ["persist", created.outs])) as {
        id: string;
        props: Record<string, unknown>;
      };
      expect(read.id).to.equal("persist");
      expect(read.props.state).to.equal("running");
      expect(read.props.uuid).to.equal(created.outs.uuid);
      expect(await new QemuDirectBackend(uri).queryGuestUuid("persist")).to.equal(H);
      await inFreshProcess("delete", ["persist", read.props]);
      expect(await new QemuDirectBackend(uri).exists("persist")).to.equal(false);
    });

    it("two concurrent updates of one domain are serialized", async () => {
      const inputs = {
        name: "race",
        connection: { uri },
        shutdownTimeoutSeconds: 0,
        restartOnChange: true,
        memory: "64 MiB",
      };
      const a = await checkAndCreate(inputs);
      const c96 = await impl.check(a.outs, { ...inputs, memory: "96 MiB" });
      const c128 = await impl.check(a.outs, { ...inputs, memory: "128 MiB" });
      // While another process holds the domain's lock, an update waits.
      const lock = new DirectLock(path.join(state, ".race.lock"));
      await lock.acquire();
      let done = false;
      const waiting = inFreshProcess("update", ["race", a.outs, c96.inputs]).then((r) => {
        done = true;
        return r;
      });
      await new Promise((r) => setTimeout(r, 1500));
      expect(done, "the update waited for the lock").to.equal(false);
      await lock.release();
      await waiting;
      // Two updates at once, from two processes: both finish, one after the other.
      const [x, y] = (await Promise.all([
        inFreshProcess("update", ["race", a.outs, c96.inputs]),
        inFreshProcess("update", ["race", a.outs, c128.inputs]),
      ])) as [{ outs: Record<string, unknown> }, { outs: Record<string, unknown> }];
      expect([x.outs.state, y.outs.state]).to.deep.equal(["running", "running"]);
      const final = await new QemuDirectBackend(uri).dumpxmlInactive("race");
      expect(final).to.match(/<memory unit='KiB'>(98304|131072)<\/memory>/);
      expect(final.match(/<memory /g)).to.have.length(1);
      await impl.remove("race", { ...a.outs });
    });

    it("the running QEMU's -uuid and -smbios equal what libvirt 12.x passes for the same XML", async () => {
      const lab = await requireLab("new");
      const xml = `<domain type='qemu'><name>ident</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <sysinfo type='smbios'><system><entry name='manufacturer'>Example, Inc.</entry><entry name='serial'>SN-1</entry><entry name='uuid'>${H}</entry></system></sysinfo>
        <os><type arch='x86_64' machine='pc'>hvm</type><smbios mode='sysinfo'/></os><devices><serial type='pty'/></devices></domain>`;
      const a = await checkAndCreate({ name: "ident", hwuuid: H, xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      const pid = Number(fs.readFileSync(path.join(state, "ident", "qemu.pid"), "utf8"));
      const ours = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      const file = path.join(state, "ident-native.xml");
      fs.writeFileSync(file, a.outs.xml);
      const theirs = shellWords((await runVirsh(lab.uri, ["domxml-to-native", "qemu-argv", file])).stdout.trim());
      for (const flag of ["-uuid", "-smbios"])
        expect(argValues(ours, flag), flag).to.deep.equal(argValues(theirs, flag));
      expect(argValues(ours, "-uuid")).to.deep.equal([H]);
      await impl.remove("ident", a.outs);
    });
  });
}
