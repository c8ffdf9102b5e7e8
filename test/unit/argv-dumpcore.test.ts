/**
 * `<memory dumpCore>` on the QEMU-direct command line as libvirt
 * writes it (`-machine ...,dump-guest-core=on|off`), and a bad value refused as libvirt does.
 */
import { expect } from "chai";
import { DomainDef } from "../../provider/xml/domain";
import { DomainXmlError } from "../../provider/xml/errors";
import { buildQemuArgv } from "../../provider/qemu/argv";

const U = "33721861-ccee-4dc2-858c-5f1e4629771f";

const doc = (memory: string) =>
  DomainDef.parse(
    `<domain type='qemu'><name>d</name><uuid>${U}</uuid>${memory}<vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices/></domain>`,
  );

const machine = (d: DomainDef) => {
  const a = buildQemuArgv(d).argv;
  return a[a.indexOf("-machine") + 1];
};

describe("QEMU argv: <memory dumpCore>", () => {
  it("writes dump-guest-core=on / off from <memory dumpCore> and off when absent", () => {
    expect(machine(doc("<memory dumpCore='on' unit='KiB'>219100</memory>"))).to.contain("dump-guest-core=on");
    expect(machine(doc("<memory dumpCore='off' unit='KiB'>219100</memory>"))).to.contain("dump-guest-core=off");
    expect(machine(doc("<memory unit='KiB'>219100</memory>"))).to.contain("dump-guest-core=off");
  });

  it("refuses a dumpCore value other than on/off naming the attribute", () => {
    let msg = "accepted";
    try {
      buildQemuArgv(doc("<memory dumpCore='maybe' unit='KiB'>219100</memory>"));
    } catch (e) {
      if (DomainXmlError.isInstance(e)) msg = e.message;
      else throw e;
    }
    expect(msg).to.contain("/domain/memory/@dumpCore");
  });
});
