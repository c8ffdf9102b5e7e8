/**
 * Graphics passwords end to end with the real Pulumi CLI. A Domain whose template sets a VNC
 * password (in clear in the program): up, no perpetual change (preview --expect-no-changes, also
 * after a refresh, and no restart with restartOnChange), the XML in the state only as secrets, and
 * the password nowhere in clear: not in the CLI's output, `pulumi stack export`, `pulumi preview
 * --json`, the CI preview report, or any file of the state and Pulumi home. A fleet cloned from a
 * template with a password: the members keep it (libvirt and QEMU-direct), the state does not show
 * it. The previews are recorded like quickstart's (`RECORD_PREVIEWS=1` copies them into
 * test/data/previews/).
 */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { QemuDirectBackend } from "../../provider/backends/qemu/direct";
import { qmpOnce } from "../../provider/backends/qemu/qmp";
import { VirshBackend } from "../../provider/backends/virsh/virsh-backend";
import { runVirsh } from "../../provider/backends/virsh/exec";
import { removeDomains, RUN_PREFIX } from "../support/domains";
import { Lab, labQemu, requireLab } from "../support/lab";
import { REPO_ROOT } from "../support/paths";
import { recordPreview } from "../support/previews";
import { CliResult, PulumiStack } from "../support/pulumi";
import { rfbHandshake } from "../support/vnc";

/** Pulumi's secret sentinel (`specialSigKey`, `specialSecretSig`). */
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SIG = "1b47061264138c4ac30d75fd1eb44270";

/** The forms a password can take in text: as given, and XML-escaped. */
function forms(pw: string): string[] {
  return [pw, pw.replace(/&/g, "&amp;").replace(/'/g, "&apos;")];
}

/** Fails when any of the passwords shows in `text`. */
function expectNoPassword(what: string, text: string, passwords: string[]): void {
  for (const pw of passwords)
    for (const f of forms(pw)) expect(text.includes(f), `${what} contains the password`).to.equal(false);
}

function out(r: CliResult): string {
  return r.stdout + r.stderr;
}

/** Every file under the stack's work directory (state, Pulumi home, preview files, the project) holding a password. */
function filesHolding(s: PulumiStack, passwords: string[]): string[] {
  const work = path.dirname(s.dir);
  const hits: string[] = [];
  for (const rel of fs.readdirSync(work, { recursive: true }) as string[]) {
    const file = path.join(work, rel);
    if (!fs.statSync(file).isFile()) continue;
    const t = fs.readFileSync(file, "latin1");
    if (passwords.some((pw) => forms(pw).some((f) => t.includes(f)))) hits.push(rel);
  }
  return hits;
}

function isStateSecret(v: unknown): boolean {
  return (
    typeof v === "object" &&
    v !== null &&
    (v as Record<string, unknown>)[SIG_KEY] === SIG &&
    typeof (v as Record<string, unknown>).ciphertext === "string"
  );
}

/** The Domain resources of `pulumi stack export`. */
function exportedDomains(
  s: PulumiStack,
): { urn: string; inputs: Record<string, unknown>; outputs: Record<string, unknown> }[] {
  const text = s.ok("stack", "export").stdout;
  return JSON.parse(text).deployment.resources.filter((r: { type: string }) =>
    r.type.includes("libvirt-domain:Domain"),
  );
}

for (const labName of ["new", "host"] as const) {
  describe(`pulumi CLI end to end: a Domain with a VNC password (${labName} lab) — one stack, its cases run in the order written`, function () {
    this.timeout(600000);
    const PW = "V&n'c7pw";
    const PW2 = "n3w-Pw!x";
    let lab: Lab;
    let s: PulumiStack;
    const prefix = `${RUN_PREFIX}-p${labName[0]}-`;
    const name = `${prefix}vnc`;

    before(async () => {
      lab = await requireLab(labName);
      s = new PulumiStack(
        path.join(REPO_ROOT, "test", "e2e", "programs", "graphics-password"),
        `graphics-password-${labName}`,
        "e2e",
      );
      s.init({ "libvirt:uri": lab.uri, name });
      // The program reads it in clear (see its comment); the XML must be secret anyway.
      process.env.VNC_PASSWORD = PW;
    });
    after(async () => {
      s?.run("destroy", "--yes");
      delete process.env.VNC_PASSWORD;
      if (lab) await removeDomains(lab.uri, prefix);
    });

    let domid: string;
    it("up: libvirt keeps the password (--security-info), VNC asks for it; the CLI prints it nowhere", async () => {
      expectNoPassword("pulumi up", out(s.ok("up", "--yes")), [PW]);
      expect((await runVirsh(lab.uri, ["dumpxml", "--inactive", "--security-info", name])).stdout).to.contain(
        `passwd='${forms(PW)[1]}'`,
      );
      const vnc = JSON.parse(
        (await runVirsh(lab.uri, ["qemu-monitor-command", name, JSON.stringify({ execute: "query-vnc" })])).stdout,
      ).return;
      expect(vnc.auth).to.equal("vnc");
      domid = (await runVirsh(lab.uri, ["domid", name])).stdout.trim();
    });

    it("no perpetual change: preview --expect-no-changes passes after up and after a refresh; the guest was never restarted", async () => {
      expectNoPassword("pulumi preview", out(s.ok("preview", "--expect-no-changes", "--diff")), [PW]);
      expectNoPassword("pulumi refresh", out(s.ok("refresh", "--yes", "--diff")), [PW]);
      s.ok("preview", "--expect-no-changes");
      expectNoPassword("pulumi up (nothing to do)", out(s.ok("up", "--yes", "--expect-no-changes")), [PW]);
      expect(
        (await runVirsh(lab.uri, ["domid", name])).stdout.trim(),
        "domain id (a restart gives a new one)",
      ).to.equal(domid);
    });

    it("the state holds the XML only as secrets: stack export shows ciphertext, stack output shows [secret]", () => {
      const [d] = exportedDomains(s);
      if (!d) throw new Error("pulumi stack export holds no libvirt-domain:Domain");
      expect(isStateSecret(d.inputs.xml), "inputs.xml").to.equal(true);
      expect(isStateSecret(d.outputs.xml), "outputs.xml").to.equal(true);
      expect(isStateSecret(d.outputs.desiredXml), "outputs.desiredXml").to.equal(true);
      expectNoPassword("pulumi stack export", s.ok("stack", "export").stdout, [PW]);
      expect(s.outputs().xml).to.equal("[secret]");
    });

    it("a memory change: preview --json shows the XML as [secret]; the CI report says its changes are hidden; no password anywhere", async () => {
      s.setConfig("memory", "96 MiB");
      const json = s.previewJson();
      expectNoPassword("pulumi preview --json", JSON.stringify(json), [PW]);
      const step = json.steps.find((x: { urn: string }) => x.urn.includes("libvirt-domain:Domain"));
      expect(step.op).to.equal("update");
      expect(step.newState.inputs.xml).to.equal("[secret]");
      recordPreview(`${labName}-secret-update`, json);
      const ci = spawnSync("bash", [path.join(REPO_ROOT, "examples", "ci-preview", "ci-preview.sh"), "e2e"], {
        cwd: s.dir,
        env: { ...s.env(), LIBVIRT_DOMAIN_CLI: `node ${path.join(REPO_ROOT, "bin", "libvirt-domain.js")}` },
        encoding: "utf8",
      });
      expect(ci.status, ci.stderr).to.equal(0);
      expect(ci.stdout)
        .to.contain(`| \`${name}\` | update | needed |`)
        .and.contain("The XML changes of this domain are hidden: its XML holds secrets");
      expect(ci.stdout).to.contain('| `memory` | `"64 MiB"` | `"96 MiB"` |');
      expectNoPassword("the CI preview report", ci.stdout + ci.stderr, [PW]);
      expectNoPassword("pulumi up", out(s.ok("up", "--yes")), [PW]);
      expect((await runVirsh(lab.uri, ["dumpxml", "--inactive", name])).stdout).to.contain(
        "<memory unit='KiB'>98304</memory>",
      );
      s.ok("preview", "--expect-no-changes");
    });

    it("a new password is applied (restartOnChange restarts with it) and shows nowhere either", async () => {
      process.env.VNC_PASSWORD = PW2;
      expectNoPassword("pulumi preview --diff", out(s.run("preview", "--diff")), [PW, PW2]);
      expectNoPassword("pulumi up", out(s.ok("up", "--yes")), [PW, PW2]);
      expect((await runVirsh(lab.uri, ["dumpxml", "--inactive", "--security-info", name])).stdout).to.contain(
        `passwd='${PW2}'`,
      );
      expect(
        (await runVirsh(lab.uri, ["dumpxml", "--security-info", name])).stdout,
        "the running guest has it",
      ).to.contain(`passwd='${PW2}'`);
      s.ok("preview", "--expect-no-changes");
      expectNoPassword("pulumi stack export", s.ok("stack", "export").stdout, [PW, PW2]);
    });

    it("destroy; no file of the state, the Pulumi home or the CI step holds a password", async () => {
      s.ok("destroy", "--yes");
      expect(await new VirshBackend(lab.uri).exists(name)).to.equal(false);
      expect(filesHolding(s, [PW, PW2])).to.deep.equal([]);
    });
  });
}

const TEMPLATE_PW = "Tm&pl8pw";

function templateXml(name: string): string {
  return `<domain type='qemu'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>
    <devices><serial type='pty'/><graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1' passwd='${forms(TEMPLATE_PW)[1]}'/><video><model type='vga'/></video></devices></domain>`;
}

for (const where of ["host", "direct"] as const) {
  describe(`pulumi CLI end to end: a fleet from a template with a VNC password (${where === "host" ? "libvirt 9.0" : "QEMU-direct, QEMU 11.x"}) — one stack, its cases run in the order written`, function () {
    this.timeout(600000);
    let s: PulumiStack;
    let uri: string;
    let stateDir: string | undefined;
    const prefix = `${RUN_PREFIX}-q${where[0]}-`;
    const template = `${prefix}tmpl`;
    const members = [`${prefix}1`, `${prefix}2`];

    before(async () => {
      if (where === "host") {
        uri = (await requireLab("host")).uri;
        await new VirshBackend(uri).define(templateXml(template));
      } else {
        stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-e2e-fleetpw-"));
        uri = `qemu-direct://${stateDir}?emulator=${encodeURIComponent(labQemu("new"))}`;
        await new QemuDirectBackend(uri).define(templateXml(template));
      }
      s = new PulumiStack(path.join(REPO_ROOT, "examples", "fleet"), `fleet-password-${where}`, "e2e");
      s.init({ "libvirt:uri": uri, template, size: "2", namePattern: `${prefix}{key}`, shutdownTimeoutSeconds: "0" });
    });
    after(async () => {
      s?.run("destroy", "--yes");
      if (where === "host") {
        if (uri) await removeDomains(uri, prefix);
      } else if (stateDir) {
        const b = new QemuDirectBackend(uri);
        for (const n of await b.listNames()) await b.destroy(n).catch(() => undefined);
        fs.rmSync(stateDir, { recursive: true, force: true });
      }
    });

    it("up: each member keeps the template's password and VNC asks for it", async () => {
      expectNoPassword("pulumi up", out(s.ok("up", "--yes")), [TEMPLATE_PW]);
      for (const m of members) {
        if (where === "host") {
          expect((await runVirsh(uri, ["dumpxml", "--inactive", "--security-info", m])).stdout, m).to.contain(
            `passwd='${forms(TEMPLATE_PW)[1]}'`,
          );
          const vnc = JSON.parse(
            (await runVirsh(uri, ["qemu-monitor-command", m, JSON.stringify({ execute: "query-vnc" })])).stdout,
          ).return;
          expect(vnc.auth, m).to.equal("vnc");
        } else {
          const vnc = (await qmpOnce(path.join(stateDir!, m, "qmp.sock"), "query-vnc")) as {
            auth: string;
            host: string;
            service: string;
          };
          expect(vnc.auth, m).to.equal("vnc");
          expect(
            (await rfbHandshake(vnc.host, Number(vnc.service), TEMPLATE_PW)).authResult,
            `${m}: the template's password logs in`,
          ).to.equal(0);
        }
      }
    });

    it("no perpetual change, and the state holds the members' XML only as secrets", () => {
      s.ok("preview", "--expect-no-changes");
      const domains = exportedDomains(s);
      expect(domains.length).to.equal(2);
      for (const d of domains) {
        expect(isStateSecret(d.inputs.xml), `${d.urn} inputs.xml`).to.equal(true);
        expect(isStateSecret(d.outputs.xml) && isStateSecret(d.outputs.desiredXml), `${d.urn} outputs`).to.equal(true);
      }
      expectNoPassword("pulumi stack export", s.ok("stack", "export").stdout, [TEMPLATE_PW]);
      expectNoPassword("pulumi preview --json", JSON.stringify(s.previewJson()), [TEMPLATE_PW]);
    });

    it("destroy removes the members; no file of the state or the Pulumi home holds the password", async () => {
      s.ok("destroy", "--yes");
      expect(filesHolding(s, [TEMPLATE_PW])).to.deep.equal([]);
    });
  });
}
