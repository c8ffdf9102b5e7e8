/**
 * `SUPPORTED_DEVICES` says what the QEMU command line builder accepts under `<devices>`: whatever
 * it lists is expressed or refused, never dropped without a word. `<input>` is accepted only in
 * the forms the builder expresses (the PC machine's PS/2 mouse and keyboard, which need no
 * argument; USB tablet, mouse and keyboard, test/unit/argv-paths.test.ts); `<audio>` of a type
 * libvirt does not know, or without a type, is refused (the audio backends: argv-media.test.ts);
 * every other form is refused, naming the attribute.
 */
import { expect } from "chai";
import { buildQemuArgv, SUPPORTED_DEVICES } from "../../provider/qemu/argv";
import { DomainDef } from "../../provider/xml/domain";
import { DomainXmlError } from "../../provider/xml/errors";

/** A small domain with `devices` added to its `<devices>`. */
function domain(devices: string): DomainDef {
  return DomainDef.parse(`<domain type='qemu'>
  <name>dev</name>
  <uuid>33721861-ccee-4dc2-858c-5f1e4629771f</uuid>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><serial type='pty'/>${devices}</devices>
</domain>`);
}

/** The builder's refusal of `def`, or undefined when it builds. */
function refusal(def: DomainDef): DomainXmlError | undefined {
  try {
    buildQemuArgv(def);
    return undefined;
  } catch (e) {
    if (DomainXmlError.isInstance(e)) return e;
    throw e;
  }
}

describe("SUPPORTED_DEVICES: every listed device is expressed or refused", () => {
  it("lists input and audio (in their argument-free forms)", () => {
    expect(SUPPORTED_DEVICES.has("input")).to.equal(true);
    expect(SUPPORTED_DEVICES.has("audio")).to.equal(true);
  });

  it("the PS/2 mouse and keyboard add no argument; <audio type='none'> is the backend libvirt adds anyway", () => {
    const plain = buildQemuArgv(domain("")).argv;
    const withThem = buildQemuArgv(
      domain("<input type='mouse' bus='ps2'/><input type='keyboard' bus='ps2'/><audio id='1' type='none'/>"),
    ).argv;
    expect(withThem).to.deep.equal(plain);
  });

  const refused: [string, string, string | undefined][] = [
    ["<input type='passthrough' bus='usb'/>", "/domain/devices/input[1]/@type", "passthrough"],
    ["<input type='mouse' bus='ps2'/><input type='keyboard' bus='xen'/>", "/domain/devices/input[2]/@bus", "xen"],
    ["<input type='tablet'/>", "/domain/devices/input[1]/@type", "tablet"],
    ["<audio id='1' type='esd'/>", "/domain/devices/audio[1]/@type", "esd"],
    ["<audio id='1'/>", "/domain/devices/audio[1]/@type", undefined],
  ];
  for (const [xml, path, value] of refused) {
    it(`refuses ${xml}, naming ${path}`, () => {
      const e = refusal(domain(xml));
      expect(e, "refused").to.not.equal(undefined);
      expect(e!.path).to.equal(path);
      expect(e!.value).to.equal(value);
      expect(e!.fix).to.be.a("string").and.not.equal("");
    });
  }
});
