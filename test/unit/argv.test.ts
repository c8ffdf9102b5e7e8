/**
 * The QEMU command line built from XML values: a value can never add an option (commas are
 * doubled everywhere a value lands in a comma-separated option; JSON arguments are JSON), and
 * numbers that are not numbers are refused with a DomainXmlError naming the path.
 */
import { expect } from "chai";
import { buildQemuArgv } from "../../provider/qemu/argv";
import { DomainDef } from "../../provider/xml/domain";
import { DomainXmlError } from "../../provider/xml/errors";

const UUID = "33721861-ccee-4dc2-858c-5f1e4629771f";
const EVIL = ",injected=on";

function dom(body: string, head = "<domain type='qemu'>"): DomainDef {
  return DomainDef.parse(`${head}<name>n</name><uuid>${UUID}</uuid><memory unit='MiB'>64</memory>${body}</domain>`);
}

/** Splits a QEMU option string as QemuOpts does: a single comma separates, `,,` is a comma. */
function qemuOptParts(s: string): string[] {
  const parts: string[] = [];
  let cur = "";
  for (let i = 0; i < s.length; i++) {
    if (s[i] === ",") {
      if (s[i + 1] === ",") {
        cur += ",";
        i++;
        continue;
      }
      parts.push(cur);
      cur = "";
    } else cur += s[i];
  }
  parts.push(cur);
  return parts;
}

/** Every option key the command line sets, in every option argument (JSON ones included). */
function optionKeys(argv: string[]): string[] {
  const keys: string[] = [];
  for (const a of argv.slice(1)) {
    if (a.startsWith("-")) continue;
    if (a.startsWith("{")) {
      keys.push(...Object.keys(JSON.parse(a)));
      continue;
    }
    for (const p of qemuOptParts(a)) if (p.includes("=")) keys.push(p.slice(0, p.indexOf("=")));
  }
  return keys;
}

function refusal(def: DomainDef): DomainXmlError {
  try {
    buildQemuArgv(def);
  } catch (e) {
    if (DomainXmlError.isInstance(e)) return e;
    throw e;
  }
  throw new Error("expected a DomainXmlError");
}

function after(argv: string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag && i + 1 < argv.length ? [argv[i + 1]!] : []));
}

describe("QEMU argv: commas", () => {
  it("no XML value can add an option: every string that reaches the command line holds ',injected=on'", () => {
    const def = DomainDef.parse(`<domain type='qemu'>
      <name>n${EVIL}</name><uuid>${UUID}</uuid><memory unit='MiB'>64</memory><vcpu>1</vcpu>
      <os><type arch='x86_64' machine='pc${EVIL}'>hvm</type><smbios mode='sysinfo'/></os>
      <sysinfo type='smbios'><system><entry name='manufacturer'>m${EVIL}</entry><entry name='product'>p${EVIL}</entry><entry name='serial'>s${EVIL}</entry></system></sysinfo>
      <cpu mode='custom'><model>qemu64${EVIL}</model></cpu>
      <devices>
        <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/i/a${EVIL}.qcow2'/><target dev='vda' bus='virtio'/><serial>x${EVIL}</serial></disk>
        <interface type='bridge'><source bridge='br0${EVIL}'/><model type='virtio'/></interface>
        <serial type='file'><source path='/l/serial${EVIL}.log'/></serial>
        <channel type='unix'><source mode='bind' path='/s/agent${EVIL}'/><target type='virtio' name='org.qemu.guest_agent.0${EVIL}'/></channel>
        <graphics type='vnc' port='5901' autoport='no' listen='127.0.0.1${EVIL}'/>
      </devices></domain>`);
    const cmd = buildQemuArgv(def, { qmpSocketPath: `/run/q${EVIL}/qmp.sock` });
    expect(optionKeys(cmd.argv)).to.not.include("injected");
    expect(after(cmd.argv, "-cpu")).to.deep.equal(["qemu64,,injected=on"]);
    expect(after(cmd.argv, "-vnc")).to.deep.equal(["127.0.0.1,,injected=on:1,audiodev=audio1"]);
    expect(after(cmd.argv, "-name")).to.deep.equal(["guest=n,,injected=on,debug-threads=on"]);
    expect(after(cmd.argv, "-chardev")[0]).to.equal(
      "socket,id=charmonitor,path=/run/q,,injected=on/qmp.sock,server=on,wait=off",
    );
  });

  it("an IPv6 VNC listen address is bracketed", () => {
    const cmd = buildQemuArgv(dom("<devices><graphics type='vnc' autoport='yes' listen='::1'/></devices>"));
    expect(after(cmd.argv, "-vnc")).to.deep.equal(["[::1]:0,to=99,audiodev=audio1"]);
  });
});

describe("QEMU argv: numbers that are not numbers are refused, naming the path", () => {
  const cases: [string, string, string, string][] = [
    [
      "VNC port 'abc'",
      "<devices><graphics type='vnc' port='abc' autoport='no'/></devices>",
      "/domain/devices/graphics[1]/@port",
      "abc",
    ],
    [
      "VNC port below 5900",
      "<devices><graphics type='vnc' port='5899' autoport='no'/></devices>",
      "/domain/devices/graphics[1]/@port",
      "5899",
    ],
    [
      "VNC port above 65535",
      "<devices><graphics type='vnc' port='70000'/></devices>",
      "/domain/devices/graphics[1]/@port",
      "70000",
    ],
    [
      "VNC port '59x1'",
      "<devices><graphics type='vnc' port='59x1'/></devices>",
      "/domain/devices/graphics[1]/@port",
      "59x1",
    ],
    ["vcpu current 'abc'", "<vcpu current='abc'>2</vcpu>", "/domain/vcpu/@current", "abc"],
    ["vcpu current above the count", "<vcpu current='3'>2</vcpu>", "/domain/vcpu/@current", "3"],
    ["vcpu count in hex", "<vcpu>0x2</vcpu>", "/domain/vcpu", "0x2"],
    [
      "topology sockets '1,maxcpus=9'",
      "<vcpu>2</vcpu><cpu><topology sockets='1,maxcpus=9' cores='2' threads='1'/></cpu>",
      "/domain/cpu/topology/@sockets",
      "1,maxcpus=9",
    ],
    [
      "topology cores 'two'",
      "<vcpu>2</vcpu><cpu><topology sockets='1' cores='two' threads='1'/></cpu>",
      "/domain/cpu/topology/@cores",
      "two",
    ],
    [
      "topology threads ''",
      "<vcpu>2</vcpu><cpu><topology sockets='2' cores='1' threads=''/></cpu>",
      "/domain/cpu/topology/@threads",
      "",
    ],
    [
      "topology dies 'x'",
      "<vcpu>2</vcpu><cpu><topology sockets='2' dies='x' cores='1' threads='1'/></cpu>",
      "/domain/cpu/topology/@dies",
      "x",
    ],
    [
      "disk boot order 'first'",
      "<devices><disk type='file' device='disk'><source file='/i/a.img'/><target dev='vda' bus='virtio'/><boot order='first'/></disk></devices>",
      "/domain/devices/disk[1]/boot/@order",
      "first",
    ],
    [
      "interface boot order '0'",
      "<devices><interface type='user'><model type='virtio'/><boot order='0'/></interface></devices>",
      "/domain/devices/interface[1]/boot/@order",
      "0",
    ],
    [
      "controller index 'a'",
      "<devices><controller type='usb' index='a' model='qemu-xhci'/></devices>",
      "/domain/devices/controller[1]/@index",
      "a",
    ],
  ];
  for (const [title, body, path, value] of cases) {
    it(title, () => {
      const e = refusal(dom(body));
      expect(e.path, e.message).to.equal(path);
      expect(e.value, e.message).to.equal(value);
      expect(e.message).to.contain("fix: ");
      expect(e.message).to.not.match(/NaN/);
    });
  }

  it("good numbers still work: port 5901 is display 1, autoport ignores the port, topology is kept", () => {
    expect(
      after(
        buildQemuArgv(dom("<devices><graphics type='vnc' port='5901' listen='127.0.0.1'/></devices>")).argv,
        "-vnc",
      ),
    ).to.deep.equal(["127.0.0.1:1,audiodev=audio1"]);
    expect(
      after(buildQemuArgv(dom("<devices><graphics type='vnc' port='abc' autoport='yes'/></devices>")).argv, "-vnc"),
    ).to.deep.equal(["127.0.0.1:0,to=99,audiodev=audio1"]);
    expect(
      after(
        buildQemuArgv(
          dom("<vcpu current='1'>4</vcpu><cpu><topology sockets='1' dies='1' cores='2' threads='2'/></cpu>"),
        ).argv,
        "-smp",
      ),
    ).to.deep.equal(["1,maxcpus=4,sockets=1,dies=1,clusters=1,cores=2,threads=2"]);
  });
});

describe("QEMU argv: virtio channels", () => {
  const channels = (n: number, ports?: number) =>
    dom(
      `<devices>${ports === undefined ? "" : `<controller type='virtio-serial' index='0' ports='${ports}'/>`}${Array.from(
        { length: n },
        (_, i) => `<channel type='pty'><target type='virtio' name='org.example.port${i}'/></channel>`,
      ).join("")}</devices>`,
    );

  it("channels that fit are ports 1.. of virtio-serial0", () => {
    const ports = after(buildQemuArgv(channels(3, 4)).argv, "-device")
      .map((v) => JSON.parse(v) as { driver: string; bus?: string; nr?: number })
      .filter((d) => d.driver === "virtserialport");
    expect(ports.map((p) => [p.bus, p.nr])).to.deep.equal([
      ["virtio-serial0.0", 1],
      ["virtio-serial0.0", 2],
      ["virtio-serial0.0", 3],
    ]);
  });

  it("channels beyond the controller's ports go on a virtio-serial1 libvirt adds (channel-virtio-autoadd)", () => {
    const devs = after(buildQemuArgv(channels(4, 4)).argv, "-device").map(
      (v) => JSON.parse(v) as { driver: string; id?: string; bus?: string; nr?: number },
    );
    expect(devs.filter((d) => d.driver === "virtserialport").map((p) => [p.bus, p.nr])).to.deep.equal([
      ["virtio-serial0.0", 1],
      ["virtio-serial0.0", 2],
      ["virtio-serial0.0", 3],
      ["virtio-serial1.0", 1],
    ]);
    expect(devs.filter((d) => d.driver === "virtio-serial-pci").map((d) => d.id)).to.deep.equal([
      "virtio-serial0",
      "virtio-serial1",
    ]);
  });
});
