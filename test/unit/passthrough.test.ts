/**
 * The `-uuid` passthrough (`<qemu:commandline>`) is found by the QEMU namespace URI, whatever the
 * prefix bound to it, as libvirt and `readDomain` find it: by the Domain's composer and by the
 * fleet planner, through the one implementation in the identity rules.
 */
import { expect } from "chai";
import { composeDomain } from "../../provider/desired/compose";
import { planFleet } from "../../provider/fleet/plan";
import { DomainDef, QEMU_NAMESPACE, readDomain } from "../../provider/xml/domain";

const H = "5d5b0f1d-128b-4517-8e65-b258a8734c1d";

/** A template whose QEMU namespace is bound to the prefix `q` (not `qemu`), carrying `-uuid H`. */
const TEMPLATE = `<domain type='qemu' xmlns:q='${QEMU_NAMESPACE}'>
  <name>tmpl</name>
  <memory unit='KiB'>65536</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <q:commandline><q:arg value='-uuid'/><q:arg value='${H}'/><q:arg value='-nodefaults'/></q:commandline>
</domain>`;

/** Every `-uuid` value in the QEMU command-line arguments, read by namespace URI. */
function uuidArgs(xml: string): string[] {
  const args = readDomain(DomainDef.parse(xml)).qemuArgs;
  return args.flatMap((a, i) => (a === "-uuid" ? [args[i + 1] ?? ""] : []));
}

describe("-uuid passthrough under another prefix bound to the QEMU namespace", () => {
  it("the Domain takes the template's passthrough hwuuid and keeps one -uuid pair (native: none)", () => {
    const native = composeDomain({ name: "web-1", xml: TEMPLATE }, "native");
    expect(native.def.childText("hwuuid")).to.equal(H);
    expect(uuidArgs(native.xml)).to.deep.equal([]);
    expect(readDomain(DomainDef.parse(native.xml)).qemuArgs).to.deep.equal(["-nodefaults"]);
    const passthrough = composeDomain({ name: "web-1", xml: TEMPLATE }, "passthrough");
    expect(uuidArgs(passthrough.xml)).to.deep.equal([H]);
  });

  it("a fleet member keeps the template's guest UUID by policy keep, and no copy of the template's -uuid", () => {
    const plan = planFleet({
      fleetName: "web",
      project: "infra",
      stack: "prod",
      templateXml: TEMPLATE,
      keys: ["1"],
      hwuuidPolicy: { kind: "keep" },
      namePattern: "{fleet}-{key}",
    });
    expect(plan.refusals).to.deep.equal([]);
    const m = plan.members[0];
    expect(m?.hwuuid).to.equal(H);
    expect(uuidArgs(m?.xml ?? "")).to.deep.equal([]);
  });
});
