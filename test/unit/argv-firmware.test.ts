/**
 * Firmware on the QEMU command line (provider/qemu/firmware.ts, argv.ts buildFirmware):
 * `<os firmware='efi'|'bios'>` selects from QEMU firmware descriptors as libvirt's
 * qemuFirmwareFillDomain does (order, features, SMM, formats, NVRAM), secure loaders, stateless
 * pflash, qcow2 images and typed NVRAM sources are built as libvirt builds them; what no
 * descriptor fits is refused naming the features asked and the directories searched.
 */
import { expect } from "chai";
import { buildQemuArgv, QemuArgvOptions } from "../../provider/qemu/argv";
import {
  FirmwareDescriptors,
  orderDescriptorFiles,
  parseFirmwareDescriptor,
  FirmwareDescriptor,
} from "../../provider/qemu/firmware";
import { DomainDef } from "../../provider/xml/domain";
import { DomainXmlError } from "../../provider/xml/errors";
import { values } from "../support/argv";

/** A descriptor as Debian's ovmf ships them (no "mode": split). */
function ovmf(file: string, code: string, vars: string, machines: string[], features: string[]): FirmwareDescriptor {
  const d = parseFirmwareDescriptor(
    file,
    JSON.stringify({
      description: file,
      "interface-types": ["uefi"],
      mapping: {
        device: "flash",
        executable: { filename: code, format: "raw" },
        "nvram-template": { filename: vars, format: "raw" },
      },
      targets: [{ architecture: "x86_64", machines }],
      features,
      tags: [],
    }),
  );
  if (!d) throw new Error(`${file} does not parse`);
  return d;
}

const SB = ["acpi-s3", "amd-sev", "requires-smm", "secure-boot", "verbose-dynamic"];
/** Debian 12's three descriptors, in their order, plus a SeaBIOS one and a qcow2 build. */
const HOST: FirmwareDescriptors = {
  searched: ["/etc/qemu/firmware", "/usr/share/qemu/firmware"],
  descriptors: [
    ovmf(
      "/usr/share/qemu/firmware/40-edk2-x86_64-secure-enrolled.json",
      "/usr/share/OVMF/OVMF_CODE_4M.ms.fd",
      "/usr/share/OVMF/OVMF_VARS_4M.ms.fd",
      ["pc-q35-*"],
      [...SB, "enrolled-keys"],
    ),
    ovmf(
      "/usr/share/qemu/firmware/50-edk2-x86_64-secure.json",
      "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
      "/usr/share/OVMF/OVMF_VARS_4M.fd",
      ["pc-q35-*"],
      SB,
    ),
    ovmf(
      "/usr/share/qemu/firmware/60-edk2-x86_64.json",
      "/usr/share/OVMF/OVMF_CODE_4M.fd",
      "/usr/share/OVMF/OVMF_VARS_4M.fd",
      ["pc-i440fx-*", "pc-q35-*"],
      ["acpi-s3", "amd-sev", "verbose-dynamic"],
    ),
    parseFirmwareDescriptor(
      "/usr/share/qemu/firmware/70-qcow2.json",
      JSON.stringify({
        "interface-types": ["uefi"],
        mapping: {
          device: "flash",
          mode: "split",
          executable: { filename: "/fw/CODE.qcow2", format: "qcow2" },
          "nvram-template": { filename: "/fw/VARS.qcow2", format: "qcow2" },
        },
        targets: [{ architecture: "x86_64", machines: ["pc-i440fx-*", "pc-q35-*"] }],
        features: [],
      }),
    )!,
    parseFirmwareDescriptor(
      "/usr/share/qemu/firmware/80-bios.json",
      JSON.stringify({
        "interface-types": ["bios"],
        mapping: { device: "memory", filename: "/usr/share/seabios/bios-256k.bin" },
        targets: [{ architecture: "x86_64", machines: ["pc-*"] }],
        features: ["acpi-s3", "acpi-s4"],
      }),
    )!,
  ],
};

/** A domain named `d`; `os` goes after `<type>`, `features` inside `<features>` (ACPI on). */
const dom = (o: { firmware?: string; machine?: string; os?: string; features?: string } = {}) =>
  DomainDef.parse(
    `<domain type='qemu'><name>d</name><uuid>11111111-2222-3333-4444-555555555555</uuid>` +
      `<memory unit='MiB'>64</memory>` +
      `<os${o.firmware ? ` firmware='${o.firmware}'` : ""}><type arch='x86_64' machine='${o.machine ?? "pc-q35-8.0"}'>hvm</type>${o.os ?? ""}</os>` +
      `<features><acpi/>${o.features ?? ""}</features><devices/></domain>`,
  );

const build = (d: DomainDef, o: QemuArgvOptions = { firmware: HOST }) => buildQemuArgv(d, o);
const blockdevs = (a: string[]) => values(a, "-blockdev").map((v) => JSON.parse(v) as Record<string, unknown>);
const refusalOf = (f: () => unknown): DomainXmlError => {
  try {
    f();
  } catch (e) {
    if (DomainXmlError.isInstance(e)) return e;
    throw e;
  }
  throw new Error("accepted");
};

describe("QEMU command line: firmware autoselection and NVRAM", () => {
  it("descriptor files: an earlier directory overrides a name, an empty file masks it, dot files are skipped, sorted by name", () => {
    expect(
      orderDescriptorFiles([
        {
          dir: "/etc/qemu/firmware/",
          files: [
            { name: "60-x.json", size: 10 },
            { name: "50-masked.json", size: 0 },
          ],
        },
        {
          dir: "/usr/share/qemu/firmware",
          files: [
            { name: "60-x.json", size: 10 },
            { name: "50-masked.json", size: 10 },
            { name: "40-a.json", size: 10 },
            { name: ".hidden.json", size: 10 },
          ],
        },
      ]),
    ).to.deep.equal(["/usr/share/qemu/firmware/40-a.json", "/etc/qemu/firmware/60-x.json"]);
  });

  it("descriptors parse as libvirt's: no mode is split, unknown features are dropped, what libvirt skips is undefined", () => {
    const d = HOST.descriptors[0]!;
    expect(d.mapping).to.deep.include({ device: "flash", mode: "split" });
    const odd = parseFirmwareDescriptor(
      "x",
      JSON.stringify({
        "interface-types": ["bios"],
        mapping: { device: "memory", filename: "/b" },
        targets: [],
        features: ["acpi-s3", "future-feature"],
      }),
    );
    expect(odd?.features).to.deep.equal(["acpi-s3"]);
    expect(parseFirmwareDescriptor("x", '{"firmware": {"invalid": true}}')).to.equal(undefined);
    expect(parseFirmwareDescriptor("x", "not json")).to.equal(undefined);
    expect(
      parseFirmwareDescriptor(
        "x",
        JSON.stringify({
          "interface-types": ["efi"],
          mapping: { device: "memory", filename: "/b" },
          targets: [],
          features: [],
        }),
      ),
    ).to.equal(undefined);
  });

  it("firmware='efi' on q35 takes the first fitting descriptor: Secure Boot with enrolled keys, SMM on, a secure pflash, the NVRAM from its template", () => {
    const cmd = build(dom({ firmware: "efi" }), { firmware: HOST, nvramDir: "/state/d" });
    expect(blockdevs(cmd.argv)).to.deep.equal([
      {
        driver: "file",
        filename: "/usr/share/OVMF/OVMF_CODE_4M.ms.fd",
        "node-name": "libvirt-pflash0-storage",
        "auto-read-only": true,
        discard: "unmap",
      },
      { "node-name": "libvirt-pflash0-format", "read-only": true, driver: "raw", file: "libvirt-pflash0-storage" },
      { driver: "file", filename: "/state/d/d_VARS.fd", "node-name": "libvirt-pflash1-storage", "read-only": false },
    ]);
    expect(values(cmd.argv, "-machine")[0]).to.equal(
      "pc-q35-8.0,usb=off,smm=on,dump-guest-core=off,pflash0=libvirt-pflash0-format,pflash1=libvirt-pflash1-storage,acpi=on",
    );
    // after -cpu, as libvirt writes it
    const g = cmd.argv.indexOf("driver=cfi.pflash01,property=secure,value=on");
    expect(g).to.be.greaterThan(cmd.argv.indexOf("-cpu"));
    expect(cmd.argv[g - 1]).to.equal("-global");
    expect(cmd.firmwareNvram).to.deep.equal({
      path: "/state/d/d_VARS.fd",
      template: "/usr/share/OVMF/OVMF_VARS_4M.ms.fd",
      format: "raw",
      templateFormat: "raw",
    });
  });

  it("features, SMM and the machine steer the choice as in libvirt", () => {
    const code = (d: DomainDef) => blockdevs(build(d).argv)[0]!.filename;
    const fw = (f: string) => `<firmware>${f}</firmware>`;
    expect(code(dom({ firmware: "efi", os: fw("<feature enabled='no' name='enrolled-keys'/>") }))).to.equal(
      "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
    );
    expect(code(dom({ firmware: "efi", os: fw("<feature enabled='no' name='secure-boot'/>") }))).to.equal(
      "/usr/share/OVMF/OVMF_CODE_4M.fd",
    );
    const smmOff = build(dom({ firmware: "efi", features: "<smm state='off'/>" })).argv;
    expect(blockdevs(smmOff)[0]!.filename).to.equal("/usr/share/OVMF/OVMF_CODE_4M.fd");
    expect(values(smmOff, "-machine")[0]).to.contain("smm=off");
    expect(smmOff).to.not.include("driver=cfi.pflash01,property=secure,value=on");
    expect(code(dom({ firmware: "efi", os: "<loader secure='no'/>" }))).to.equal("/usr/share/OVMF/OVMF_CODE_4M.fd");
    expect(code(dom({ firmware: "efi", machine: "pc-i440fx-8.0" }))).to.equal("/usr/share/OVMF/OVMF_CODE_4M.fd");
    expect(code(dom({ firmware: "efi", machine: "q35" }))).to.equal("/usr/share/OVMF/OVMF_CODE_4M.ms.fd");
    // a written path or template must be the descriptor's
    expect(code(dom({ firmware: "efi", os: "<loader>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>" }))).to.equal(
      "/usr/share/OVMF/OVMF_CODE_4M.fd",
    );
  });

  it("firmware='bios' takes a memory descriptor: -bios", () => {
    const a = build(dom({ firmware: "bios" })).argv;
    expect(values(a, "-bios")).to.deep.equal(["/usr/share/seabios/bios-256k.bin"]);
    expect(values(a, "-blockdev")).to.deep.equal([]);
  });

  it("qcow2 builds (format='qcow2' on the loader or the NVRAM): qcow2 format nodes on pflash0 and pflash1, NAME_VARS.qcow2", () => {
    for (const os of ["<loader format='qcow2'/>", "<nvram format='qcow2'/>"]) {
      const cmd = build(dom({ firmware: "efi", os }));
      expect(blockdevs(cmd.argv)).to.deep.equal([
        {
          driver: "file",
          filename: "/fw/CODE.qcow2",
          "node-name": "libvirt-pflash0-storage",
          "auto-read-only": true,
          discard: "unmap",
        },
        {
          "node-name": "libvirt-pflash0-format",
          "read-only": true,
          driver: "qcow2",
          file: "libvirt-pflash0-storage",
          backing: null,
        },
        {
          driver: "file",
          filename: "/var/lib/libvirt/qemu/nvram/d_VARS.qcow2",
          "node-name": "libvirt-pflash1-storage",
          "auto-read-only": true,
          discard: "unmap",
        },
        {
          "node-name": "libvirt-pflash1-format",
          "read-only": false,
          driver: "qcow2",
          file: "libvirt-pflash1-storage",
          backing: null,
        },
      ]);
      expect(values(cmd.argv, "-machine")[0]).to.contain(
        "pflash0=libvirt-pflash0-format,pflash1=libvirt-pflash1-format",
      );
    }
  });

  it("typed NVRAM sources: a file, a block device, an NBD export (no template: nobody makes a network NVRAM)", () => {
    const pflash1 = (nvram: string) => {
      const cmd = build(dom({ firmware: "efi", machine: "pc-i440fx-8.0", os: nvram }));
      return { node: blockdevs(cmd.argv)[2], nvram: cmd.firmwareNvram };
    };
    expect(pflash1("<nvram type='file'><source file='/v/d_VARS.fd'/></nvram>")).to.deep.equal({
      node: { driver: "file", filename: "/v/d_VARS.fd", "node-name": "libvirt-pflash1-storage", "read-only": false },
      nvram: {
        path: "/v/d_VARS.fd",
        template: "/usr/share/OVMF/OVMF_VARS_4M.fd",
        format: "raw",
        templateFormat: "raw",
      },
    });
    expect(pflash1("<nvram type='block'><source dev='/dev/vg/vars'/></nvram>")).to.deep.equal({
      node: {
        driver: "host_device",
        filename: "/dev/vg/vars",
        "node-name": "libvirt-pflash1-storage",
        "read-only": false,
      },
      nvram: undefined, // a block device is used as it is
    });
    expect(
      pflash1(
        "<nvram type='network'><source protocol='nbd' name='bar'><host name='example.org' port='6000'/></source></nvram>",
      ),
    ).to.deep.equal({
      node: {
        driver: "nbd",
        server: { type: "inet", host: "example.org", port: "6000" },
        export: "bar",
        "node-name": "libvirt-pflash1-storage",
        "read-only": false,
      },
      nvram: undefined,
    });
  });

  it("manual firmware: a secure pflash needs q35 and SMM (libvirt's checks); stateless has no pflash1; a descriptor's loader gets SMM", () => {
    const loader = (attrs: string) =>
      `<loader readonly='yes' type='pflash'${attrs}>/usr/share/OVMF/OVMF_CODE_4M.secboot.fd</loader>`;
    const noDescriptors = {};
    expect(refusalOf(() => build(dom({ os: loader(" secure='yes'") }), noDescriptors)).message).to.contain(
      "Secure boot requires SMM feature enabled",
    );
    expect(
      refusalOf(() => build(dom({ machine: "pc-i440fx-8.0", os: loader(" secure='yes'") }), noDescriptors)).message,
    ).to.contain("Secure boot is supported with q35 machine types only");
    const a = build(dom({ os: loader(" secure='yes'"), features: "<smm state='on'/>" }), noDescriptors).argv;
    expect(a).to.include("driver=cfi.pflash01,property=secure,value=on");
    const stateless = build(dom({ os: loader(" stateless='yes'") }), noDescriptors).argv;
    expect(values(stateless, "-blockdev")).to.have.length(2);
    expect(values(stateless, "-machine")[0]).to.contain("pflash0=libvirt-pflash0-format,acpi=on");
    // the path is a descriptor's that requires SMM: libvirt turns SMM and the secure flash on
    const filled = build(dom({ os: loader("") })).argv;
    expect(values(filled, "-machine")[0]).to.contain("smm=on");
    expect(filled).to.include("driver=cfi.pflash01,property=secure,value=on");
  });

  it("SeaBIOS rebootTimeout is -boot reboot-timeout= (between menu and splash-time, as libvirt); useserial='yes' and out-of-range values are refused", () => {
    const boot = (os: string) => values(build(dom({ machine: "pc", os }), {}).argv, "-boot");
    expect(boot("<bios rebootTimeout='128'/>")).to.deep.equal(["reboot-timeout=128,strict=on"]);
    expect(boot("<bios useserial='no' rebootTimeout='-1'/>")).to.deep.equal(["reboot-timeout=-1,strict=on"]);
    expect(boot("<bootmenu enable='yes' timeout='3000'/><bios rebootTimeout='0'/>")).to.deep.equal([
      "menu=on,reboot-timeout=0,splash-time=3000,strict=on",
    ]);
    expect(refusalOf(() => build(dom({ os: "<bios rebootTimeout='65536'/>" }), {})).message).to.contain(
      "invalid value for rebootTimeout, must be in range [-1,65535]",
    );
    expect(refusalOf(() => build(dom({ os: "<bios useserial='yes'/>" }), {})).path).to.equal(
      "/domain/os/bios/@useserial",
    );
  });

  it("extra ACPI tables are -acpitable after the kernel options: raw without a signature, SLIC and MSDM with theirs, once each", () => {
    const a = build(
      dom({
        machine: "pc",
        os: "<acpi><table type='raw'>/t/a,b.dat</table><table type='raw'>/t/c.dat</table><table type='slic'>/t/slic.dat</table><table type='msdm'>/t/msdm.dat</table></acpi>",
      }),
      {},
    ).argv;
    expect(values(a, "-acpitable")).to.deep.equal([
      "file=/t/a,,b.dat",
      "file=/t/c.dat",
      "sig=SLIC,file=/t/slic.dat",
      "sig=MSDM,file=/t/msdm.dat",
    ]);
    expect(a.indexOf("-acpitable")).to.be.greaterThan(a.indexOf("-boot"));
    const twice = "<acpi><table type='slic'>/a</table><table type='slic'>/b</table></acpi>";
    expect(refusalOf(() => build(dom({ os: twice }), {})).message).to.contain(
      "ACPI table type 'slic' may only appear once",
    );
    expect(refusalOf(() => build(dom({ os: "<acpi><table type='rawset'>/d</table></acpi>" }), {})).message).to.contain(
      "ACPI table type 'rawset' is not supported",
    );
  });

  it("refused with libvirt's reasons: no descriptors, none fitting (naming what was asked and where it looked), enrolled keys without Secure Boot", () => {
    expect(refusalOf(() => build(dom({ firmware: "efi" }), {})).path).to.equal("/domain/os/@firmware");
    const none = refusalOf(() =>
      build(dom({ firmware: "efi", machine: "pc-i440fx-8.0", os: "<loader secure='yes'/>" })),
    );
    expect(none.message).to.contain("Unable to find 'efi' firmware that is compatible with the current configuration");
    expect(none.message).to.contain("secure loader yes").and.contain("/etc/qemu/firmware, /usr/share/qemu/firmware");
    const keys = refusalOf(() =>
      build(
        dom({
          firmware: "efi",
          os: "<firmware><feature enabled='yes' name='enrolled-keys'/><feature enabled='no' name='secure-boot'/></firmware>",
        }),
      ),
    );
    expect(keys.message).to.contain(
      "firmware feature 'enrolled-keys' cannot be enabled when firmware feature 'secure-boot' is disabled",
    );
    expect(refusalOf(() => build(dom({ firmware: "bios", os: "<loader stateless='no'/>" }))).message).to.contain(
      "Only EFI firmware permits NVRAM",
    );
    expect(refusalOf(() => build(dom({ firmware: "efi", os: "<loader format='vmdk'/>" }))).message).to.contain(
      "Unsupported loader format 'vmdk'",
    );
  });
});

describe("QEMU command line: manual firmware with and without firmware descriptors", () => {
  // a manual qcow2 pflash loader with no <nvram>: libvirt names the NVRAM NAME_VARS.qcow2 in qcow2
  // (qemuFirmwareEnsureNVRAM) whether or not the host has descriptors; the builder did so only with
  // descriptors, else a raw NAME_VARS.fd (argv.ts defaultNvramPath)
  it("a qcow2 pflash loader without <nvram> gets a qcow2 NAME_VARS.qcow2, descriptors or not", () => {
    const os = "<loader readonly='yes' type='pflash' format='qcow2'>/fw/CODE.qcow2</loader>";
    const withHost = build(dom({ os })).argv;
    const without = buildQemuArgv(dom({ os })).argv;
    const empty = buildQemuArgv(dom({ os }), { firmware: { descriptors: [], searched: [] } }).argv;
    expect(blockdevs(without)).to.deep.equal(blockdevs(withHost));
    expect(blockdevs(empty)).to.deep.equal(blockdevs(withHost));
    expect(blockdevs(without)).to.deep.include({
      driver: "file",
      filename: "/var/lib/libvirt/qemu/nvram/d_VARS.qcow2",
      "node-name": "libvirt-pflash1-storage",
      "auto-read-only": true,
      discard: "unmap",
    });
    expect(buildQemuArgv(dom({ os })).firmwareNvram).to.deep.include({
      path: "/var/lib/libvirt/qemu/nvram/d_VARS.qcow2",
      format: "qcow2",
    });
  });
});
