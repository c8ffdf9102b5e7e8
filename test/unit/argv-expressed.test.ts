/**
 * The QEMU command line expresses what libvirt expresses, or refuses it naming the element
 * (issue 12): <genid>, -m from NUMA cells and <maxMemory>, SMBIOS types 0/1/2/3/11 and fw_cfg,
 * direct kernel boot, the vCPUs online at start.
 */
import { expect } from "chai";
import { DomainDef } from "../../provider/xml/domain";
import { DomainXmlError } from "../../provider/xml/errors";
import { buildQemuArgv } from "../../provider/qemu/argv";
import { argv, values } from "../support/argv";

const U = "33721861-ccee-4dc2-858c-5f1e4629771f";

const doc = (top = "", os = "", memory = "<memory unit='KiB'>219100</memory>") =>
  DomainDef.parse(
    `<domain type='qemu'><name>d</name><uuid>${U}</uuid>${memory}<vcpu>4</vcpu>${top}<os><type arch='x86_64' machine='pc'>hvm</type>${os}</os><devices/></domain>`,
  );

/** The values of every occurrence of an option. */

function refusal(d: DomainDef): string {
  try {
    buildQemuArgv(d);
  } catch (e) {
    if (DomainXmlError.isInstance(e)) return e.message;
    throw e;
  }
  return "accepted";
}

describe("QEMU command line: what libvirt expresses", () => {
  it("<genid> is -device vmgenid with the guid, an empty <genid/> guid=auto", () => {
    const G = "43DC0CF8-809B-4ADB-9BEA-A9ABB5F3D90D";
    expect(values(argv(doc(`<genid>${G}</genid>`)), "-device")).to.include(
      JSON.stringify({ driver: "vmgenid", guid: G.toLowerCase(), id: "vmgenid0" }),
    );
    expect(values(argv(doc("<genid/>")), "-device")).to.include(
      JSON.stringify({ driver: "vmgenid", guid: "auto", id: "vmgenid0" }),
    );
    expect(refusal(doc("<genid>not-a-uuid</genid>"))).to.match(/\/domain\/genid/);
    expect(values(argv(doc()), "-device").some((d) => d.includes("vmgenid"))).to.equal(false);
  });
  it("-m is the sum of the NUMA cells, each aligned to 1 MiB, with slots and maxmem of <maxMemory>", () => {
    const numa =
      "<cpu><numa><cell id='0' cpus='0-1' memory='109550' unit='KiB'/><cell id='1' cpus='2-3' memory='109550' unit='KiB'/></numa></cpu>";
    expect(values(argv(doc(numa)), "-m")).to.deep.equal(["size=219136k"]);
    expect(values(argv(doc(`${numa}<maxMemory slots='16' unit='KiB'>1099511627776</maxMemory>`)), "-m")).to.deep.equal([
      "size=219136k,slots=16,maxmem=1099511627776k",
    ]);
    // libvirt: "At least one numa node has to be configured when enabling memory hotplug" (x86)
    expect(refusal(doc(`<maxMemory slots='16' unit='KiB'>1099511627776</maxMemory>`))).to.match(/numa node/);
    expect(values(argv(doc()), "-m")).to.deep.equal(["size=219136k"]);
  });
  it("SMBIOS types 0, 1, 2, 3 and 11 as libvirt writes them, and -fw_cfg", () => {
    const si =
      "<sysinfo type='smbios'><bios><entry name='vendor'>LENOVO</entry></bios><system><entry name='manufacturer'>Fedora</entry></system>" +
      "<baseBoard><entry name='product'>0B4Ch</entry><entry name='location'>Upside down</entry></baseBoard>" +
      "<chassis><entry name='sku'>Type3Sku1</entry></chassis><oemStrings><entry>Hello</entry><entry>a, b</entry></oemStrings></sysinfo>" +
      "<sysinfo type='fwcfg'><entry name='opt/com.example/name'>example value</entry></sysinfo>";
    const a = argv(doc(si, "<smbios mode='sysinfo'/>"));
    expect(values(a, "-smbios")).to.deep.equal([
      "type=0,vendor=LENOVO",
      "type=1,manufacturer=Fedora",
      "type=2,product=0B4Ch,location=Upside down",
      "type=3,sku=Type3Sku1",
      "type=11,value=Hello,value=a,, b",
    ]);
    expect(values(a, "-fw_cfg")).to.deep.equal(["name=opt/com.example/name,string=example value"]);
  });
  it("an SMBIOS block or entry the command line does not carry is refused, naming it", () => {
    expect(
      refusal(
        doc(
          "<sysinfo type='smbios'><processor><entry name='family'>x</entry></processor></sysinfo>",
          "<smbios mode='sysinfo'/>",
        ),
      ),
    ).to.match(/\/domain\/sysinfo\[1\]\/processor\[1\]/);
    expect(
      refusal(
        doc(
          "<sysinfo type='smbios'><chassis><entry name='product'>x</entry></chassis></sysinfo>",
          "<smbios mode='sysinfo'/>",
        ),
      ),
    ).to.match(/chassis\[1\]\/entry\[1\]\/@name/);
  });
  it("direct kernel boot: -kernel, -initrd, -append", () => {
    const a = argv(
      doc(
        "",
        "<kernel>/boot/vmlinuz</kernel><initrd>/boot/initrd</initrd><cmdline>console=ttyS0 root=/dev/vda</cmdline>",
      ),
    );
    expect([values(a, "-kernel"), values(a, "-initrd"), values(a, "-append")]).to.deep.equal([
      ["/boot/vmlinuz"],
      ["/boot/initrd"],
      ["console=ttyS0 root=/dev/vda"],
    ]);
    expect(refusal(doc("", "<initrd>/boot/initrd</initrd>"))).to.match(/\/domain\/os\/initrd/);
  });
  it("-smp counts the enabled vCPUs of <vcpus>; enabled hotpluggable ones are refused", () => {
    const vcpus = (hp: string) =>
      `<vcpus><vcpu id='0' enabled='yes' hotpluggable='no'/><vcpu id='1' enabled='yes' hotpluggable='${hp}'/><vcpu id='2' enabled='no' hotpluggable='yes'/><vcpu id='3' enabled='no' hotpluggable='yes'/></vcpus>`;
    expect(values(argv(doc(vcpus("no"))), "-smp")).to.deep.equal(["2,maxcpus=4,sockets=4,cores=1,threads=1"]);
    expect(refusal(doc(vcpus("yes")))).to.match(/\/domain\/vcpus\/vcpu\[2\]\/@hotpluggable/);
  });
  it("<qemu:commandline> is read by namespace URI: ns0:commandline and a default-namespace <commandline> pass their -uuid", () => {
    const NS = "http://libvirt.org/schemas/domain/qemu/1.0";
    const H = "5d5b0f1d-128b-4517-8e65-b258a8734c1d";
    const ns0 = DomainDef.parse(
      doc()
        .format()
        .replace(
          "</domain>",
          `<ns0:commandline xmlns:ns0='${NS}'><ns0:arg value='-uuid'/><ns0:arg value='${H}'/><ns0:env name='A' value='b'/></ns0:commandline></domain>`,
        ),
    );
    const dflt = DomainDef.parse(
      doc()
        .format()
        .replace(
          "</domain>",
          `<commandline xmlns='${NS}'><arg value='-uuid'/><arg value='${H}'/></commandline></domain>`,
        ),
    );
    const other = DomainDef.parse(
      doc()
        .format()
        .replace("</domain>", `<x:commandline xmlns:x='urn:other'><x:arg value='-uuid'/></x:commandline></domain>`),
    );
    for (const d of [ns0, dflt]) expect(argv(d).slice(-2)).to.deep.equal(["-uuid", H]);
    expect(buildQemuArgv(ns0).env).to.deep.equal({ A: "b" });
    // an element of another namespace is not the QEMU passthrough, and the builder does not drop it silently
    expect(() => argv(other)).to.throw(/\/domain\/x:commandline/);
  });
  it("guest NUMA as libvirt writes it: a RAM backend and -numa node per cell in id order, distances completed", () => {
    const numa =
      "<cpu><numa><cell id='1' cpus='2-3' memory='1024' unit='KiB'/><cell id='0' cpus='0,4-5' memory='1' unit='MiB'><distances><sibling id='1' value='21'/></distances></cell></numa></cpu>";
    const a = argv(doc(numa));
    expect(values(a, "-object")).to.deep.equal([
      '{"qom-type":"memory-backend-ram","id":"ram-node0","size":1048576}',
      '{"qom-type":"memory-backend-ram","id":"ram-node1","size":1048576}',
    ]);
    expect(values(a, "-numa")).to.deep.equal([
      "node,nodeid=0,cpus=0,cpus=4-5,memdev=ram-node0",
      "node,nodeid=1,cpus=2-3,memdev=ram-node1",
      "dist,src=0,dst=0,val=10",
      "dist,src=0,dst=1,val=21",
      "dist,src=1,dst=0,val=21",
      "dist,src=1,dst=1,val=10",
    ]);
    const old = DomainDef.parse(doc(numa).format().replace("machine='pc'", "machine='pc-i440fx-5.0'"));
    expect(values(argv(old), "-numa").slice(0, 2)).to.deep.equal([
      "node,nodeid=0,cpus=0,cpus=4-5,mem=1",
      "node,nodeid=1,cpus=2-3,mem=1",
    ]);
    // memAccess is built (test/unit/argv-memory-cpu.test.ts); a value libvirt does not know is refused
    expect(refusal(doc("<cpu><numa><cell id='0' cpus='0-3' memory='1024' memAccess='both'/></numa></cpu>"))).to.match(
      /\/domain\/cpu\/numa\/cell\[1\]\/@memAccess/,
    );
  });
  it("what the builder does not express is refused naming it: launchSecurity, firmware autoselection and generated NVRAM, numatune, PCI topology, qemu:override", () => {
    const NS = "xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'";
    const cases: [DomainDef, RegExp][] = [
      [doc("<launchSecurity type='sev'><policy>0x0003</policy></launchSecurity>"), /\/domain\/launchSecurity/],
      [
        doc(
          "",
          "<loader readonly='yes' type='pflash'>/c.fd</loader><nvram type='network'><source protocol='iscsi' name='iqn.2013-07.com.example:t/0'><host name='h'/><auth username='u'><secret type='iscsi' usage='s'/></auth></source></nvram>",
        ),
        /\/domain\/os\/nvram\/source\/auth/,
      ],
      [doc("", "<nvram>/var/lib/nvram/d_VARS.fd</nvram>"), /\/domain\/os\/nvram/],
      [DomainDef.parse(doc().format().replace("<os>", "<os firmware='efi'>")), /\/domain\/os\/@firmware/],
      // strict/preferred/interleave are built (argv-memory-cpu.test.ts); restrictive is cgroups only
      [doc("<numatune><memory mode='restrictive' nodeset='0'/></numatune>"), /\/domain\/numatune/],
      [
        DomainDef.parse(
          doc()
            .format()
            .replace("<devices/>", "<devices><controller type='pci' index='1' model='pcie-root-port'/></devices>"),
        ),
        /controller\[1\]\/@model/,
      ],
      [
        DomainDef.parse(
          doc()
            .format()
            .replace("<domain type='qemu'>", `<domain type='qemu' ${NS}>`)
            .replace("</domain>", "<qemu:override><qemu:device alias='x'/></qemu:override></domain>"),
        ),
        /\/domain\/qemu:override/,
      ],
    ];
    for (const [d, re] of cases) expect(refusal(d)).to.match(re);
  });
  it("firmware as libvirt writes it: a ROM loader is -bios, a pflash loader and its NVRAM file pflash0/pflash1; other image formats are refused", () => {
    expect(values(argv(doc("", "<loader>/usr/share/seabios/bios.bin</loader>")), "-bios")).to.deep.equal([
      "/usr/share/seabios/bios.bin",
    ]);
    const a = argv(doc("", "<loader readonly='yes' type='pflash'>/c.fd</loader><nvram>/v.fd</nvram>"));
    expect(values(a, "-blockdev")).to.deep.equal([
      '{"driver":"file","filename":"/c.fd","node-name":"libvirt-pflash0-storage","auto-read-only":true,"discard":"unmap"}',
      '{"node-name":"libvirt-pflash0-format","read-only":true,"driver":"raw","file":"libvirt-pflash0-storage"}',
      '{"driver":"file","filename":"/v.fd","node-name":"libvirt-pflash1-storage","read-only":false}',
    ]);
    expect(values(a, "-machine")[0]).to.match(
      /^pc,usb=off,dump-guest-core=off,pflash0=libvirt-pflash0-format,pflash1=libvirt-pflash1-storage/,
    );
    // An NVRAM without a file (or no <nvram>) is libvirt's NAME_VARS.fd, made from the template before QEMU starts.
    const pflash1 = (d: DomainDef, o = {}) => values(buildQemuArgv(d, o).argv, "-blockdev")[2];
    const generated =
      '{"driver":"file","filename":"/var/lib/libvirt/qemu/nvram/d_VARS.fd","node-name":"libvirt-pflash1-storage","read-only":false}';
    expect(pflash1(doc("", "<loader readonly='yes' type='pflash'>/c.fd</loader><nvram template='/t.fd'/>"))).to.equal(
      generated,
    );
    expect(pflash1(doc("", "<loader readonly='yes' type='pflash'>/c.fd</loader>"))).to.equal(generated);
    expect(
      pflash1(doc("", "<loader readonly='yes' type='pflash'>/c.fd</loader><nvram template='/t.fd'/>"), {
        nvramDir: "/state/d/",
      }),
    ).to.equal(generated.replace("/var/lib/libvirt/qemu/nvram/", "/state/d/"));
    // What libvirt 11+ writes back: format='raw' on both, templateFormat='raw'.
    expect(
      pflash1(
        doc(
          "",
          "<loader readonly='yes' type='pflash' format='raw'>/c.fd</loader><nvram template='/t.fd' templateFormat='raw' format='raw'>/v.fd</nvram>",
        ),
      ),
    ).to.equal('{"driver":"file","filename":"/v.fd","node-name":"libvirt-pflash1-storage","read-only":false}');
    // qcow2 images, secure loaders: argv-firmware.test.ts; other formats are refused naming them
    expect(
      refusal(doc("", "<loader readonly='yes' type='pflash'>/c.fd</loader><nvram format='vmdk'>/v.vmdk</nvram>")),
    ).to.match(/\/domain\/os\/nvram\/@format: .*vmdk/);
    expect(refusal(doc("", "<loader readonly='yes' type='pflash' format='vmdk'>/c.vmdk</loader>"))).to.match(
      /\/domain\/os\/loader\/@format/,
    );
    expect(
      refusal(doc("", "<loader readonly='yes' secure='yes' type='pflash'>/c.fd</loader><nvram>/v.fd</nvram>")),
    ).to.match(/Secure boot is supported with q35 machine types only/);
  });
});
