/**
 * A TPM through swtpm on the QEMU-direct backend (provider/qemu/tpm.ts, provider/backends/qemu/swtpm.ts),
 * with real QEMU (the host's 7.2 and the lab chroot's 11.x) and the host's swtpm, no libvirt: a
 * domain with a TPM 2.0 emulator is created through the Domain provider; QEMU says over QMP
 * (`query-tpm`) that it has the TPM on swtpm's socket; a stop stops swtpm and leaves the TPM state
 * (the guest's keys) where it was; a second start uses that state (a damaged state fails the start,
 * naming it, and leaves no swtpm behind); undefine removes the state it made, and keeps it with
 * `persistent_state='yes'`. libvirt 12.x is the oracle: the same definition started by its daemon
 * gives its QEMU the same TPM arguments and its swtpm the same options. swtpm missing fails the
 * tests (it is a part they need).
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as os from "node:os";
import { QemuDirectBackend } from "../../provider/backends/qemu/direct";
import { qmpOnce } from "../../provider/backends/qemu/qmp";
import { swtpmArgs } from "../../provider/backends/qemu/swtpm";
import { runVirsh } from "../../provider/backends/virsh/exec";
import * as impl from "../../provider/dynamic/impl";
import { buildQemuArgv } from "../../provider/qemu/argv";
import { DomainDef } from "../../provider/xml/domain";
import { RUN_PREFIX, checkAndCreate } from "../support/domains";
import { directQemuLabel, labEnv, makeDirectState, removeDirectState, requireLab } from "../support/lab";

const domainXml = (name: string, backend: string) =>
  `<domain type='qemu'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
    <os><type arch='x86_64' machine='pc'>hvm</type></os>
    <devices><tpm model='tpm-crb'>${backend}</tpm></devices></domain>`;

/** The command line of a process. */
const cmdline = (pid: number): string[] => fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").slice(0, -1);

/** The TPM arguments of a QEMU command line (chardev chrtpm, tpmdev, the TPM device), in order. */
function tpmArgs(a: readonly string[]): string[] {
  const out: string[] = [];
  a.forEach((x, i) => {
    const v = a[i + 1] ?? "";
    if ((x === "-chardev" && v.includes("id=chrtpm")) || x === "-tpmdev" || (x === "-device" && v.includes('"tpmdev"')))
      out.push(x, v);
  });
  return out;
}

/** The pids of the processes whose command line names `text`, by program name (`program` itself, or a prefix of it). */
function processesNaming(program: string, text: string, prefix = true): number[] {
  return fs
    .readdirSync("/proc")
    .filter((p) => /^[0-9]+$/.test(p))
    .filter((p) => {
      try {
        const argv = fs.readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0");
        const name = path.basename(argv[0] ?? "");
        return (prefix ? name.startsWith(program) : name === program) && argv.some((a) => a.includes(text));
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** The pids of the swtpm processes whose command line names `text`. */
const swtpmsNaming = (text: string): number[] => processesNaming("swtpm", text, false);

for (const which of ["host", "new"] as const) {
  describe(`QEMU-direct TPM through swtpm, QEMU ${directQemuLabel(which)}`, function () {
    this.timeout(120000);
    let uri: string;
    let state: string;
    before(() => {
      // a part the tests need: missing, they fail here (Debian package swtpm, installed by scripts/lab.sh up)
      execFileSync("swtpm", ["--version"]);
      ({ uri, state } = makeDirectState(which, "tpm"));
    });
    after(() => removeDirectState(uri, state));

    it("a TPM 2.0 emulator: QEMU has it on swtpm's socket; stop keeps the state, a second start uses it; undefine removes it", async () => {
      const name = "tpm2";
      const dir = path.join(state, name);
      const sock = path.join(dir, "swtpm.sock");
      const tpmState = path.join(dir, "swtpm", "tpm2");
      const a = await checkAndCreate({
        name,
        xml: domainXml(name, "<backend type='emulator' version='2.0'/>"),
        connection: { uri },
        shutdownTimeoutSeconds: 0,
      });
      const b = new QemuDirectBackend(uri);
      const queryTpm = async (): Promise<unknown> => qmpOnce(path.join(dir, "qmp.sock"), "query-tpm");
      expect(await queryTpm()).to.deep.equal([
        { model: "tpm-crb", id: "tpm-tpm0", options: { type: "emulator", data: { chardev: "chrtpm" } } },
      ]);
      // QEMU's TPM chardev is a unix socket (7.2 names no path in query-chardev), on swtpm's socket
      const chardevs = (await qmpOnce(path.join(dir, "qmp.sock"), "query-chardev")) as {
        label: string;
        filename: string;
      }[];
      expect(chardevs.find((c) => c.label === "chrtpm")?.filename).to.match(/^unix:/);
      const qemuPid = fs.readFileSync(path.join(dir, "qemu.pid"), "utf8").trim();
      expect(fs.readFileSync(`/proc/${qemuPid}/cmdline`, "utf8").split("\0")).to.include(
        `socket,id=chrtpm,path=${sock}`,
      );
      const [swtpm, ...more] = swtpmsNaming(sock);
      expect(more, "one swtpm for the domain").to.deep.equal([]);
      const swtpmArgv = fs.readFileSync(`/proc/${swtpm}/cmdline`, "utf8").split("\0");
      expect(swtpmArgv).to.include("--tpm2");
      expect(swtpmArgv).to.include(`dir=${tpmState},mode=0600`);

      // the TPM was made once, as libvirt makes it (swtpm_setup: EK, certificates; the oracle below)
      const manufactured = () =>
        fs
          .readFileSync(path.join(dir, "swtpm.log"), "utf8")
          .split("\n")
          .filter((l) => l.startsWith("Starting vTPM manufacturing")).length;
      expect(manufactured()).to.equal(1);
      // stop: swtpm goes with QEMU, the state stays
      await b.destroy(name);
      expect(await b.domstate(name)).to.equal("shut off");
      expect(swtpmsNaming(sock), "swtpm stopped with QEMU").to.deep.equal([]);
      const dirId = fs.statSync(tpmState).ino;
      expect(fs.readdirSync(tpmState)).to.include("tpm2-00.permall");
      const permall = fs.readFileSync(path.join(tpmState, "tpm2-00.permall"));
      expect(permall.length).to.be.greaterThan(0);

      // a second start runs swtpm on the same state
      await b.start(name);
      expect(await queryTpm()).to.have.length(1);
      expect(fs.statSync(tpmState).ino, "the same state directory").to.equal(dirId);
      expect(manufactured(), "the TPM is not made anew").to.equal(1);
      expect(fs.readFileSync(`/proc/${swtpmsNaming(sock)[0]}/cmdline`, "utf8")).to.contain(`dir=${tpmState},`);
      // QEMU killed behind the backend's back: swtpm goes too (--terminate), the domain reads as shut off
      process.kill(Number(fs.readFileSync(path.join(dir, "qemu.pid"), "utf8")), "SIGKILL");
      const end = Date.now() + 10000;
      while (swtpmsNaming(sock).length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
      expect(swtpmsNaming(sock), "swtpm exits once its QEMU is gone").to.deep.equal([]);
      expect(await b.domstate(name)).to.equal("shut off");
      await b.start(name);
      expect(await queryTpm()).to.have.length(1);
      await b.destroy(name);

      // the state is read, not made anew: a damaged one fails the start, and no swtpm is left behind
      fs.writeFileSync(path.join(tpmState, "tpm2-00.permall"), "not a TPM state");
      let message = "";
      try {
        await b.start(name);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message, "a damaged TPM state fails the start").to.match(/tpm-emulator/);
      expect(message, "naming swtpm's log and the state").to.contain(
        `fix: read swtpm's log ${path.join(dir, "swtpm.log")}`,
      );
      expect(message).to.contain(tpmState);
      expect(await b.domstate(name)).to.equal("shut off");
      expect(swtpmsNaming(sock), "no swtpm left after the failed start").to.deep.equal([]);
      fs.writeFileSync(path.join(tpmState, "tpm2-00.permall"), permall);
      await b.start(name);
      expect(await queryTpm()).to.have.length(1);

      // undefine (Pulumi's delete): the state the backend made goes with the domain
      await impl.remove(name, a.outs);
      expect(swtpmsNaming(sock)).to.deep.equal([]);
      expect(fs.existsSync(dir), "nothing left of the domain").to.equal(false);
    });

    it("persistent_state='yes': undefine keeps the TPM state", async () => {
      const name = "kept";
      const a = await checkAndCreate({
        name,
        xml: domainXml(name, "<backend type='emulator' version='2.0' persistent_state='yes'/>"),
        connection: { uri },
        shutdownTimeoutSeconds: 0,
      });
      await impl.remove(name, a.outs);
      expect(fs.readdirSync(path.join(state, name))).to.deep.equal(["swtpm"]);
      expect(fs.readdirSync(path.join(state, name, "swtpm", "tpm2"))).to.include("tpm2-00.permall");
    });
  });
}

describe("libvirt 12.x's own TPM for the same definition (the oracle)", function () {
  this.timeout(120000);
  let uri: string;
  let state: string;
  before(() => ({ uri, state } = makeDirectState("host", "tpm-oracle")));
  after(() => removeDirectState(uri, state));

  it("its QEMU has the TPM arguments the builder writes on its swtpm's socket; its swtpm has the options the backend gives swtpm; its TPM is made as the backend makes it", async () => {
    execFileSync("swtpm", ["--version"]);
    const lab = await requireLab("new");
    const name = `${RUN_PREFIX}-tpm-oracle`;
    const uuid = "5d5b0f1d-128b-4517-8e65-b258a8734c7e";
    const backend =
      "<backend type='emulator' version='2.0'><active_pcr_banks><sha256/><sha384/></active_pcr_banks></backend>";
    const xml = domainXml(name, backend).replace("<memory", `<uuid>${uuid}</uuid><memory`);
    const file = path.join(os.tmpdir(), `${name}.xml`);
    fs.writeFileSync(file, xml);
    try {
      await runVirsh(lab.uri, ["create", file]);
      const [qemu] = processesNaming("qemu-system", `guest=${name},`);
      expect(qemu, "libvirt's QEMU").to.be.a("number");
      const theirs = cmdline(qemu!);
      const sock = /path=([^,]+)$/.exec(tpmArgs(theirs)[1] ?? "")?.[1];
      expect(sock, "libvirt's swtpm socket").to.be.a("string");
      expect(tpmArgs(theirs)).to.deep.equal(
        tpmArgs(buildQemuArgv(DomainDef.parse(xml), { swtpmSocketPath: sock }).argv),
      );
      // libvirt's swtpm, on that socket: the options the backend gives swtpm for the same state and log,
      // less what only the backend passes (--pid, --daemon: libvirt daemonizes swtpm itself)
      const [swtpm] = swtpmsNaming(`path=${sock!},`);
      expect(swtpm, "libvirt's swtpm").to.be.a("number");
      const [, ...theirSwtpm] = cmdline(swtpm!);
      const stateDir = /^dir=(.*)\/tpm2,/.exec(theirSwtpm[theirSwtpm.indexOf("--tpmstate") + 1] ?? "")?.[1];
      const log = /^file=(.*)$/.exec(theirSwtpm[theirSwtpm.indexOf("--log") + 1] ?? "")?.[1];
      expect(stateDir, "libvirt's TPM state directory").to.equal(`/var/lib/libvirt/swtpm/${uuid}`);
      const spec = buildQemuArgv(DomainDef.parse(xml), { swtpmSocketPath: sock, tpmStateDir: stateDir }).swtpm[0]!;
      const ourSwtpm = swtpmArgs(spec, { pid: "/PID", log: log!, stamps: "/STAMPS" });
      expect(theirSwtpm).to.deep.equal(
        ourSwtpm.filter((a, i) => a !== "--daemon" && a !== "--pid" && ourSwtpm[i - 1] !== "--pid"),
      );
      const q = (await runVirsh(lab.uri, ["qemu-monitor-command", name, '{"execute":"query-tpm"}'])).stdout;
      expect((JSON.parse(q) as { return: unknown }).return).to.deep.equal([
        { model: "tpm-crb", id: "tpm-tpm0", options: { type: "emulator", data: { chardev: "chrtpm" } } },
      ]);
      // the TPM libvirt made (swtpm_setup, in its swtpm log) and the one the backend makes for the
      // same definition: the same keys, certificates, NVRAM areas and PCR banks
      const made = (text: string) => text.split("\n").filter((l) => l.startsWith("Successfully"));
      const root = labEnv().LAB_CHROOT ?? "/nonexistent";
      const theirsMade = made(fs.readFileSync(path.join(root, log!), "utf8"));
      expect(theirsMade).to.include("Successfully activated PCR banks sha256,sha384 among sha1,sha256,sha384,sha512.");
      const ours = new QemuDirectBackend(uri);
      await ours.define(xml);
      await ours.start(name);
      expect(made(fs.readFileSync(path.join(state, name, "swtpm.log"), "utf8"))).to.deep.equal(theirsMade);
      await ours.destroyAndUndefine(name);
    } finally {
      await runVirsh(lab.uri, ["destroy", name]).catch(() => undefined);
      fs.rmSync(file, { force: true });
      // what libvirt leaves of a transient domain's TPM in the chroot: its swtpm log (the state it removes itself)
      const root = labEnv().LAB_CHROOT ?? "/nonexistent";
      fs.rmSync(path.join(root, "var/lib/libvirt/swtpm", uuid), { recursive: true, force: true });
      fs.rmSync(path.join(root, "var/log/swtpm/libvirt/qemu", `${name}-swtpm.log`), { force: true });
    }
  });
});
