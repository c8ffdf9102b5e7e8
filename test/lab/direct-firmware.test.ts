/**
 * Firmware autoselection on the QEMU-direct backend (provider/qemu/firmware.ts) with real QEMU
 * (the host's 7.2 and the lab chroot's 11.x) and the host's QEMU firmware descriptors (Debian's
 * ovmf: /usr/share/qemu/firmware), no libvirt:
 * - `<os firmware='efi'>` on `pc`: the descriptor without Secure Boot; QEMU has OVMF_CODE on
 *   pflash0 (read-only) and the domain's NVRAM, made from the descriptor's template, on pflash1
 *   (QMP: qom-get of the flash devices, query-named-block-nodes); the tiny guest boots through EFI;
 *   the NVRAM goes with the domain;
 * - `<os firmware='efi'>` with the secure-boot feature on q35: the Secure Boot build with enrolled
 *   keys, SMM on and the flash secure (QMP);
 * - a firmware no descriptor has is refused at check, naming the directories searched;
 * - SeaBIOS `<bios rebootTimeout>` and extra ACPI tables (`-acpitable`, a raw table and a SLIC one
 *   QEMU reads and checks at start): QEMU starts with them (neither is visible over QMP: their
 *   argv is checked against libvirt's in the corpus).
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as path from "node:path";
import { qmpOnce } from "../../provider/backends/qemu/qmp";
import * as impl from "../../provider/dynamic/impl";
import { readFirmwareDescriptors } from "../../provider/backends/qemu/firmware-descriptors";
import { checkAndCreate } from "../support/domains";
import { GuestConsole, guestDomainXml, guestImage } from "../support/guest";
import { directQemuLabel, makeDirectState, removeDirectState } from "../support/lab";

const CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd";

interface BlockNode {
  "node-name": string;
  drv: string;
  ro: boolean;
  file: string;
}

/** What QEMU has on its two flash devices: the node each is backed by, and whether writes need SMM. */
async function flashes(qmp: string) {
  const get = (p: string, property: string) => qmpOnce(qmp, "qom-get", { path: p, property });
  const nodes = (await qmpOnce(qmp, "query-named-block-nodes")) as BlockNode[];
  const node = (name: unknown) => {
    const n = nodes.find((x) => x["node-name"] === name);
    return n && { node: n["node-name"], drv: n.drv, ro: n.ro, file: n.file };
  };
  return {
    smm: await get("/machine", "smm"),
    flash0: {
      ...node(await get("/machine/system.flash0", "drive")),
      secure: await get("/machine/system.flash0", "secure"),
    },
    flash1: node(await get("/machine/system.flash1", "drive")),
  };
}

for (const which of ["host", "new"] as const) {
  describe(`QEMU-direct firmware autoselection, QEMU ${directQemuLabel(which)}`, function () {
    this.timeout(300000);
    let uri: string;
    let state: string;
    before(() => {
      const host = readFirmwareDescriptors();
      const has = (f: string) => host.descriptors.some((d) => d.features.includes(f));
      if (!has("secure-boot") || !fs.existsSync(CODE) || !fs.existsSync(VARS))
        throw new Error(
          `the host's firmware descriptors (${host.searched.join(", ")}) have no Secure Boot OVMF or ${CODE} is missing: apt-get install ovmf (npm run lab -- up)`,
        );
      ({ uri, state } = makeDirectState(which, "firmware"));
    });
    after(async () => removeDirectState(uri, state));

    it("<os firmware='efi'> on pc: OVMF without Secure Boot on pflash0, the NVRAM made from its template on pflash1; the guest boots through EFI; delete removes the NVRAM", async () => {
      const name = "efiauto";
      const consolePath = path.join(state, `${name}.console`);
      const xml = guestDomainXml({ name, image: guestImage(), consolePath }).replace("<os>", "<os firmware='efi'>");
      expect(xml).to.contain("<os firmware='efi'>").and.not.contain("<loader");
      const a = await checkAndCreate({ name, xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      const nvram = path.join(state, name, `${name}_VARS.fd`);
      try {
        expect(a.outs.state).to.equal("running");
        expect(await flashes(path.join(state, name, "qmp.sock"))).to.deep.equal({
          smm: "auto",
          flash0: { node: "libvirt-pflash0-format", drv: "raw", ro: true, file: CODE, secure: false },
          flash1: { node: "libvirt-pflash1-storage", drv: "file", ro: false, file: nvram },
        });
        expect(fs.statSync(nvram).size, "the NVRAM, a copy of the template").to.equal(fs.statSync(VARS).size);
        const con = new GuestConsole(consolePath);
        await con.waitFor("ready", { timeoutMs: 240000 });
        const lines = con.lines();
        expect(
          lines.slice(0, lines.indexOf("ready")).find((l) => l.startsWith("efi ")),
          consolePath,
        ).to.equal("efi yes");
      } finally {
        await impl.remove(a.id, a.outs);
      }
      expect(fs.existsSync(nvram), "the NVRAM we made is removed").to.equal(false);
    });

    it("<os firmware='efi'> with secure-boot on q35: the Secure Boot build with enrolled keys, SMM on, the flash writable from SMM only", async () => {
      const name = "secboot";
      const xml = `<domain type='qemu'><name>${name}</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
        <os firmware='efi'><type arch='x86_64' machine='q35'>hvm</type>
          <firmware><feature enabled='yes' name='secure-boot'/></firmware></os>
        <features><acpi/></features><devices/></domain>`;
      const a = await checkAndCreate({ name, xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      try {
        expect(a.outs.state).to.equal("running");
        const f = await flashes(path.join(state, name, "qmp.sock"));
        expect(f.smm).to.equal("on");
        expect(f.flash0).to.deep.include({ ro: true, secure: true });
        expect(f.flash0.file).to.match(/^\/usr\/share\/OVMF\/OVMF_CODE_4M\.(ms|secboot)\.fd$/);
        expect(f.flash1?.file).to.equal(path.join(state, name, `${name}_VARS.fd`));
      } finally {
        await impl.remove(a.id, a.outs);
      }
    });

    it("SeaBIOS rebootTimeout and extra ACPI tables (raw, SLIC): QEMU takes them and runs", async () => {
      const table = path.join(state, "lvd.dat");
      // a minimal ACPI table: the 36-byte header with its length and checksum (QEMU checks both)
      const hdr = Buffer.alloc(36);
      hdr.write("TEST", 0, "latin1");
      hdr.writeUInt32LE(36, 4);
      hdr.writeUInt8(1, 8);
      hdr.write("LVDOEMLVDTABLE", 10, "latin1");
      hdr.writeUInt32LE(1, 24);
      hdr.write("LVD ", 28, "latin1");
      hdr.writeUInt32LE(1, 32);
      hdr.writeUInt8((256 - (hdr.reduce((a, b) => a + b, 0) % 256)) % 256, 9);
      fs.writeFileSync(table, hdr);
      const name = "biosacpi";
      const xml = `<domain type='qemu'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
        <os><type arch='x86_64' machine='pc'>hvm</type><bios rebootTimeout='128'/>
          <acpi><table type='raw'>${table}</table><table type='slic'>${table}</table></acpi></os>
        <features><acpi/></features><devices/></domain>`;
      const a = await checkAndCreate({ name, xml, connection: { uri }, shutdownTimeoutSeconds: 0 });
      try {
        expect(a.outs.state).to.equal("running");
        expect(await qmpOnce(path.join(state, name, "qmp.sock"), "query-status")).to.deep.include({
          status: "running",
        });
      } finally {
        await impl.remove(a.id, a.outs);
      }
    });

    it("a firmware no descriptor has (a secure loader on pc) is refused at check, naming what was asked and the directories searched", async () => {
      const xml = `<domain type='qemu'><name>nofw</name><memory unit='MiB'>64</memory>
        <os firmware='efi'><type arch='x86_64' machine='pc'>hvm</type><loader secure='yes'/></os>
        <features><acpi/></features><devices/></domain>`;
      const c = await impl.check({}, { name: "nofw", xml, connection: { uri } });
      expect(c.failures.map((f) => f.reason).join("\n"))
        .to.contain("Unable to find 'efi' firmware that is compatible with the current configuration")
        .and.contain("secure loader yes")
        .and.contain("/etc/qemu/firmware, /usr/share/qemu/firmware");
    });
  });
}
