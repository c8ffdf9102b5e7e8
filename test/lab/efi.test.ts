/**
 * UEFI firmware (Debian's `ovmf`: OVMF_CODE_4M.fd read-only on pflash0, a per-domain copy of
 * OVMF_VARS_4M.fd on pflash1) with `<genid>`, on both libvirt labs and on QEMU-direct (QEMU 7.2
 * and 11.x): the tiny guest boots through EFI (direct kernel boot: OVMF loads the kernel from
 * fw_cfg and runs its EFI stub) and reports `efi yes`, the hwuuid as its product_uuid and the
 * vmgenid; QMP `query-vm-generation-id` agrees. The NVRAM is made per domain from the template
 * variables (by libvirt, or by the QEMU-direct backend, which removes it again only while it is
 * the file it made), and a fleet of 2 from an EFI template gives each member its own NVRAM and
 * its own genid; the OVMF template variables are never written.
 */
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { qmpOnce } from "../../provider/backends/qemu/qmp";
import { runVirsh } from "../../provider/backends/virsh/exec";
import * as impl from "../../provider/dynamic/impl";
import { planFleet } from "../../provider/fleet/plan";
import { buildQemuArgv } from "../../provider/qemu/argv";
import { DomainDef } from "../../provider/xml/domain";
import { checkAndCreate, RUN_PREFIX } from "../support/domains";
import { readCase } from "../support/golden";
import { shellWords } from "../support/shell";
import { GuestConsole, guestDomainXml, guestImage, GuestImage } from "../support/guest";
import { argValues, labQemu, requireLab } from "../support/lab";
import { sha256File } from "../support/files";

/** OVMF as Debian 12 and 13 both ship it (the 4 MiB build, without Secure Boot). */
const OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/** The chroot of the 12.x lab (its libvirt reads /usr/share/OVMF there), from `scripts/lab.sh env`. */
function labChroot(): string {
  const root = process.env.LAB_CHROOT ?? "/var/lib/pulumi-libvirt-domain-lab/chroot";
  if (!fs.existsSync(path.join(root, OVMF_VARS)))
    throw new Error(`${path.join(root, OVMF_VARS)} is missing: the 12.x lab has no ovmf; run: npm run lab -- up`);
  return root;
}

/** The tiny guest's domain with UEFI firmware and a `<genid>`; `nvram` is the NVRAM file, or "" for the backend's own. */
function efiGuestXml(o: {
  name: string;
  image: GuestImage;
  consolePath: string;
  genid: string;
  nvram: string;
}): string {
  const xml = guestDomainXml({ name: o.name, image: o.image, consolePath: o.consolePath });
  const nvram = o.nvram ? `<nvram template='${OVMF_VARS}'>${o.nvram}</nvram>` : `<nvram template='${OVMF_VARS}'/>`;
  const withFirmware = xml.replace(
    "<type arch='x86_64' machine='pc'>hvm</type>",
    `<type arch='x86_64' machine='pc'>hvm</type><loader readonly='yes' type='pflash'>${OVMF_CODE}</loader>${nvram}`,
  );
  const out = withFirmware.replace("</name>", `</name>\n  <genid>${o.genid}</genid>`);
  expect(out, "the guest XML took the firmware and the genid").to.contain("<loader").and.contain("<genid>");
  return out;
}

/** The vmgenid QEMU holds (QMP `query-vm-generation-id`), through libvirt or the QMP socket. */
async function queryGenid(uri: string, name: string, qmpSocket?: string): Promise<string> {
  if (qmpSocket) return ((await qmpOnce(qmpSocket, "query-vm-generation-id")) as { guid: string }).guid;
  const r = await runVirsh(uri, ["qemu-monitor-command", name, '{"execute":"query-vm-generation-id"}']);
  return (JSON.parse(r.stdout) as { return: { guid: string } }).return.guid;
}

/** Whether the guest wrote `efi yes` (or `efi no`) before `ready`. */
async function efiLine(con: GuestConsole): Promise<string> {
  await con.waitFor("ready", { timeoutMs: 300000 });
  const lines = con.lines();
  return lines.slice(0, lines.indexOf("ready")).find((l) => l.startsWith("efi ")) ?? "(no efi line)";
}

/**
 * The guest's own word on an EFI boot: it says `efi yes` on its console, its DMI product UUID is
 * `hwuuid`, and both the guest and QEMU (QMP) hold `genid`.
 */
async function expectEfiGuest(
  consolePath: string,
  ids: { hwuuid: string; genid: string },
  qemuGenid: () => Promise<string>,
): Promise<void> {
  const con = new GuestConsole(consolePath);
  expect(await efiLine(con), `console ${consolePath}`).to.equal("efi yes");
  const r = await con.report();
  expect(r.productUuid).to.equal(ids.hwuuid);
  expect(r.vmgenid).to.equal(ids.genid);
  expect(await qemuGenid()).to.equal(ids.genid);
}

const labels = {
  host: "libvirt 9.0 + QEMU 7.2",
  new: "libvirt 12.x + QEMU 11.x",
} as const;

describe("UEFI firmware with <genid>", function () {
  this.timeout(900000);
  let work: string;
  before(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-efi-"));
    if (!fs.existsSync(OVMF_CODE) || !fs.existsSync(OVMF_VARS))
      throw new Error(`${OVMF_CODE} or ${OVMF_VARS} is missing: the host has no ovmf; run: npm run lab -- up`);
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it("the firmware and vmgenid arguments of the golden EFI cases are libvirt 12.x's own (virsh domxml-to-native)", async () => {
    const lab = await requireLab("new");
    labChroot();
    for (const name of ["efi-genid", "efi-nvram-generated"]) {
      const file = path.join(work, `${name}.xml`);
      fs.writeFileSync(file, readCase(name));
      const theirs = shellWords((await runVirsh(lab.uri, ["domxml-to-native", "qemu-argv", file])).stdout.trim());
      const mine = buildQemuArgv(DomainDef.parse(readCase(name))).argv;
      const firmware = (argv: string[]) => ({
        blockdev: argValues(argv, "-blockdev").filter((b) => b.includes("pflash")),
        machine: (argValues(argv, "-machine")[0] ?? "").split(",").filter((o) => o.startsWith("pflash")),
        vmgenid: argValues(argv, "-device").filter((d) => d.includes("vmgenid")),
      });
      expect(firmware(mine), name).to.deep.equal(firmware(theirs));
      expect(firmware(mine).blockdev, name).to.have.length(3);
    }
  });

  for (const which of ["host", "new"] as const) {
    it(`through ${labels[which]}: the guest boots through EFI, reads the hwuuid and the vmgenid; libvirt makes the NVRAM from the template and undefine removes it`, async () => {
      const lab = await requireLab(which);
      const vars = which === "host" ? OVMF_VARS : path.join(labChroot(), OVMF_VARS);
      const varsHash = sha256File(vars);
      const img = guestImage(lab.imageDir);
      const name = `${RUN_PREFIX}-efi-${which}`;
      const run = path.join(lab.imageDir, "lvd-guest", "run");
      fs.mkdirSync(run, { recursive: true });
      const consolePath = path.join(run, `${name}.console`);
      const nvram = path.join(run, `${name}_VARS.fd`);
      fs.rmSync(consolePath, { force: true });
      fs.rmSync(nvram, { force: true });
      const hwuuid = randomUUID();
      const genid = randomUUID();
      const xml = efiGuestXml({ name, image: img, consolePath, genid, nvram });
      const a = await checkAndCreate({ name, xml, hwuuid, connection: { uri: lab.uri }, shutdownTimeoutSeconds: 0 });
      try {
        expect(a.outs.state).to.equal("running");
        await expectEfiGuest(consolePath, { hwuuid, genid }, () => queryGenid(lab.uri, name));
        expect(fs.statSync(nvram).size, "the NVRAM libvirt made").to.equal(fs.statSync(vars).size);
        const rd = await impl.read(a.id, a.outs);
        const d = await impl.diff(a.id, rd.props, a.inputs);
        expect(d.changes, `no drift after refresh: ${JSON.stringify(d)}`).to.equal(false);
        expect(sha256File(vars), "the template variables").to.equal(varsHash);
      } finally {
        await impl.remove(a.id, a.outs);
      }
      expect(fs.existsSync(nvram), "undefine --nvram removed the NVRAM").to.equal(false);
      expect(sha256File(vars), "the template variables").to.equal(varsHash);
      fs.rmSync(consolePath, { force: true });
    });
  }

  for (const which of ["host", "new"] as const) {
    it(`through ${labels[which]}: <os firmware='efi'> autoselection picks OVMF from the ovmf package's firmware descriptors and the guest boots through EFI`, async () => {
      const lab = await requireLab(which);
      if (which === "new") labChroot();
      const img = guestImage(lab.imageDir);
      const name = `${RUN_PREFIX}-efiauto-${which}`;
      const run = path.join(lab.imageDir, "lvd-guest", "run");
      fs.mkdirSync(run, { recursive: true });
      const consolePath = path.join(run, `${name}.console`);
      fs.rmSync(consolePath, { force: true });
      const genid = randomUUID();
      const xml = guestDomainXml({ name, image: img, consolePath })
        .replace("<os>", "<os firmware='efi'>")
        .replace("</name>", `</name>\n  <genid>${genid}</genid>`);
      const file = path.join(work, `${name}.xml`);
      fs.writeFileSync(file, xml);
      await runVirsh(lab.uri, ["define", "--validate", file]);
      try {
        await runVirsh(lab.uri, ["start", name]);
        const live = (await runVirsh(lab.uri, ["dumpxml", name])).stdout;
        expect(live, "the loader libvirt picked").to.match(
          /<loader[^>]*type='pflash'[^>]*>\/usr\/share\/OVMF\/OVMF_CODE/,
        );
        expect(live, "the NVRAM libvirt made").to.match(/<nvram[^>]*template='\/usr\/share\/OVMF\/OVMF_VARS/);
        const con = new GuestConsole(consolePath);
        expect(await efiLine(con), `console ${consolePath}`).to.equal("efi yes");
        expect((await con.report()).vmgenid).to.equal(genid);
      } finally {
        await runVirsh(lab.uri, ["destroy", name], { allowFailure: true });
        await runVirsh(lab.uri, ["undefine", "--nvram", name], { allowFailure: true });
        fs.rmSync(consolePath, { force: true });
      }
    });
  }

  for (const which of ["host", "new"] as const) {
    const label = which === "host" ? "QEMU 7.2 (host)" : "QEMU 11.x (lab chroot)";
    describe(`QEMU-direct, ${label}`, () => {
      let uri: string;
      let state: string;
      before(() => {
        state = fs.mkdtempSync(path.join(work, `direct-${which}-`));
        uri = `qemu-direct://${state}?emulator=${encodeURIComponent(labQemu(which))}`;
      });

      it("the guest boots through EFI, reads the hwuuid and the vmgenid; the NVRAM is made from the template in the domain's directory and removed with the domain", async () => {
        const varsHash = sha256File(OVMF_VARS);
        const name = "efi";
        const consolePath = path.join(work, `direct-${which}.console`);
        const hwuuid = randomUUID();
        const genid = randomUUID();
        const xml = efiGuestXml({ name, image: guestImage(), consolePath, genid, nvram: "" });
        const a = await checkAndCreate({ name, xml, hwuuid, connection: { uri }, shutdownTimeoutSeconds: 0 });
        const nvram = path.join(state, name, `${name}_VARS.fd`);
        try {
          expect(a.outs.state).to.equal("running");
          await expectEfiGuest(consolePath, { hwuuid, genid }, () =>
            queryGenid(uri, name, path.join(state, name, "qmp.sock")),
          );
          const rd = await impl.read(a.id, a.outs);
          const d = await impl.diff(a.id, rd.props, a.inputs);
          expect(d.changes, `no drift after refresh: ${JSON.stringify(d)}`).to.equal(false);
          const st = fs.statSync(nvram);
          expect(st.size, "the NVRAM, a copy of the template").to.equal(fs.statSync(OVMF_VARS).size);
          expect(st.mode & 0o777, "the template's mode, read-write for the owner").to.equal(0o644);
          const stamps = JSON.parse(fs.readFileSync(path.join(state, name, "nvram.json"), "utf8")) as {
            path: string;
            inode: string;
          }[];
          expect(stamps.map((s) => [s.path, s.inode])).to.deep.equal([[nvram, String(st.ino)]]);
        } finally {
          await impl.remove(a.id, a.outs);
        }
        expect(fs.existsSync(nvram), "the NVRAM we made is removed").to.equal(false);
        expect(fs.existsSync(path.join(state, name)), "the domain directory is gone").to.equal(false);
        expect(sha256File(OVMF_VARS), "the template variables").to.equal(varsHash);
      });

      it("an NVRAM file that is not ours is used, never overwritten, and stays at delete; ours replaced by another file stays too", async () => {
        const own = path.join(state, "user_VARS.fd");
        fs.copyFileSync(OVMF_VARS, own);
        const marker = Buffer.from("a file the user made");
        const ownIno = fs.statSync(own).ino;
        const image = guestImage();
        const mk = (name: string, nvram: string) =>
          checkAndCreate({
            name,
            xml: efiGuestXml({
              name,
              image,
              consolePath: path.join(work, `${which}-${name}.console`),
              genid: randomUUID(),
              nvram,
            }),
            connection: { uri },
            shutdownTimeoutSeconds: 0,
          });
        const a = await mk("efi-user", own);
        await impl.remove(a.id, a.outs);
        expect(fs.statSync(own).ino, "the user's NVRAM, still there").to.equal(ownIno);
        expect(fs.existsSync(path.join(state, "efi-user", "nvram.json")), "nothing recorded for it").to.equal(false);

        const b = await mk("efi-swap", "");
        const ours = path.join(state, "efi-swap", "efi-swap_VARS.fd");
        expect(fs.existsSync(ours)).to.equal(true);
        await impl.update("efi-swap", b.outs, (await impl.check(b.outs, { ...b.inputs, running: false })).inputs);
        fs.rmSync(ours);
        fs.writeFileSync(ours, marker); // another file at our path, most likely with our old inode
        await impl.remove(b.id, b.outs);
        expect(fs.readFileSync(ours), "the file put at our path after ours was removed").to.deep.equal(marker);
        fs.rmSync(path.join(state, "efi-swap"), { recursive: true, force: true });
        fs.rmSync(own, { force: true });
      });
    });
  }

  for (const which of ["new", "direct"] as const) {
    const label = which === "new" ? labels.new : "QEMU-direct, QEMU 11.x";
    it(`a fleet of 2 from an EFI template (${label}): each member has its own NVRAM file and its own genid; the template's files are untouched`, async () => {
      const image = which === "new" ? guestImage((await requireLab("new")).imageDir) : guestImage();
      const uri =
        which === "new"
          ? (await requireLab("new")).uri
          : `qemu-direct://${fs.mkdtempSync(path.join(work, "fleet-"))}?emulator=${encodeURIComponent(labQemu("new"))}`;
      const vars = which === "new" ? path.join(labChroot(), OVMF_VARS) : OVMF_VARS;
      const varsHash = sha256File(vars);
      const dir =
        which === "new"
          ? path.join((await requireLab("new")).imageDir, "lvd-guest", "run")
          : fs.mkdtempSync(path.join(work, "fleet-nvram-"));
      fs.mkdirSync(dir, { recursive: true });
      const prefix = `${RUN_PREFIX}-ef${which === "new" ? "n" : "d"}`;
      // The template's own NVRAM: a file whose bytes must not change (a member never gets it).
      const tmplNvram = path.join(dir, `${prefix}-tmpl_VARS.fd`);
      fs.copyFileSync(OVMF_VARS, tmplNvram);
      const tmplHash = sha256File(tmplNvram);
      const tmplGenid = randomUUID();
      const templateXml = efiGuestXml({
        name: `${prefix}-tmpl`,
        image,
        consolePath: path.join(dir, `${prefix}-tmpl.console`),
        genid: tmplGenid,
        nvram: tmplNvram,
      });
      const plan = planFleet({
        fleetName: "ef",
        project: "p",
        stack: "s",
        templateXml,
        keys: ["1", "2"],
        hwuuidPolicy: { kind: "derive" },
        namePattern: `${prefix}-{key}`,
      });
      expect(plan.refusals).to.deep.equal([]);
      const made: { id: string; outs: impl.DomainOutputs }[] = [];
      try {
        for (const m of plan.members) {
          expect(m.nvram, "nothing copied: the backend makes the member's NVRAM from the template variables").to.equal(
            undefined,
          );
          made.push(
            await checkAndCreate({
              name: m.name,
              xml: m.xml,
              hwuuid: m.hwuuid,
              connection: { uri },
              shutdownTimeoutSeconds: 0,
            }),
          );
        }
        const nvrams = plan.members.map((m) => /<nvram[^>]*>([^<]+)<\/nvram>/.exec(m.xml)?.[1] ?? "");
        expect(nvrams).to.deep.equal([path.join(dir, `${prefix}-1_VARS.fd`), path.join(dir, `${prefix}-2_VARS.fd`)]);
        for (const p of nvrams) expect(fs.statSync(p).size, p).to.equal(fs.statSync(vars).size);
        const inodes = new Set([tmplNvram, ...nvrams].map((p) => fs.statSync(p).ino));
        expect(inodes.size, "three distinct files").to.equal(3);
        const genids: string[] = [];
        for (const m of plan.members) {
          const sock = which === "direct" ? path.join(new URL(uri).pathname, m.name, "qmp.sock") : undefined;
          genids.push(await queryGenid(uri, m.name, sock));
        }
        expect(new Set([tmplGenid, ...genids]).size, `genids ${genids.join(", ")} and the template's`).to.equal(3);
        for (const g of genids) expect(g).to.match(/^[0-9a-f-]{36}$/);
      } finally {
        for (const m of made) await impl.remove(m.id, m.outs);
      }
      for (const p of plan.members.map((m) => path.join(dir, `${m.name}_VARS.fd`)))
        expect(fs.existsSync(p), `${p} removed with its member`).to.equal(false);
      expect(sha256File(tmplNvram), "the template's NVRAM").to.equal(tmplHash);
      expect(sha256File(vars), "the template variables").to.equal(varsHash);
      fs.rmSync(tmplNvram);
    });
  }
});
