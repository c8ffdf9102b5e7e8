/**
 * Bad inputs to the Domain resource: each fails with a message that names the property and the
 * fix, and leaves no domain and no file behind (counted before and after).
 */
import { expect } from "chai";
import * as impl from "../../provider/dynamic/impl";
import { domainsWithPrefix, listFiles, RUN_PREFIX, checkAndCreate, removeDomains } from "../support/domains";
import { Lab, requireLab } from "../support/lab";

const H = "5d5b0f1d-128b-4517-8e65-b258a8734c1d";
const U = "33721861-ccee-4dc2-858c-5f1e4629771f";
const T = (body: string, head = "<domain type='qemu'>") => `${head}<name>x</name><memory unit='MiB'>64</memory>${body}<os><type arch='x86_64'>hvm</type><smbios mode='sysinfo'/></os></domain>`;
const sysinfo = (u: string) => `<sysinfo type='smbios'><system><entry name='uuid'>${u}</entry></system></sysinfo>`;

/** [title, inputs (merged over a valid base), the property that must be named, a word of the fix] */
type Case = [string, Record<string, unknown>, string, RegExp];

const prefix = `${RUN_PREFIX}-b-`;

/** The table; `connection` is the new lab's unless a case sets its own. */
const CASES: Case[] = (
  [
    ["malformed hwuuid", { hwuuid: "not-a-uuid" }, "hwuuid", /uuidgen/],
    ["hwuuid with 31 digits", { hwuuid: H.slice(0, -1) }, "hwuuid", /uuidgen/],
    ["all-zero hwuuid", { hwuuid: "00000000-0000-0000-0000-000000000000" }, "hwuuid", /treats as unset/],
    ["all-ff hwuuid", { hwuuid: "ffffffff-ffff-ffff-ffff-ffffffffffff" }, "hwuuid", /real UUID/],
    ["hwuuid not a string", { hwuuid: 42 }, "hwuuid", /quote/],
    ["sysinfo uuid differs from hwuuid", { hwuuid: H, xml: T(sysinfo(U)) }, "hwuuid", /sysinfo/],
    ["template sets <uuid>", { xml: T(`<uuid>${U}</uuid>`).replace("<name>x</name>", "<name>x</name>") }, "xml", /remove <uuid>/],
    ["sysinfo uuid malformed", { xml: T(sysinfo("xyz")) }, "xml", /correct or remove/],
    ["template hwuuid malformed", { xml: T("<hwuuid>zz</hwuuid>") }, "xml", /malformed hwuuid element/],
    ["unknown URI scheme", { connection: { uri: "xen:///system" } }, "connection.uri", /qemu:\/\/\/system/],
    ["URI that is not a URI", { connection: { uri: "not a uri" } }, "connection.uri", /qemu:\/\/\/system/],
    ["unreachable daemon", { connection: { uri: "qemu+unix:///system?socket=/nonexistent/libvirt-sock" } }, "connection.uri", /start the daemon/],
    ["name with /", { name: `${prefix}a/b` }, "name", /remove "\/"/],
    ["name with ..", { name: `${prefix}a..b` }, "name", /single/],
    ["name with a single quote", { name: `${prefix}o'brien` }, "name", /remove/],
    ["name with a double quote", { name: `${prefix}say"hi` }, "name", /remove/],
    ["name with <", { name: `${prefix}<x>` }, "name", /remove/],
    ["name with &", { name: `${prefix}a&b` }, "name", /remove/],
    ["empty name", { name: "" }, "name", /web-1/],
    ["name starting with -", { name: "-rf" }, "name", /web-1/],
    ["XML with a DOCTYPE and entities", { xml: `<!DOCTYPE d [<!ENTITY e "x">]>` + T("") }, "xml", /remove the <!DOCTYPE/],
    ["XML not well formed", { xml: "<domain><name>x</domain>" }, "xml", /correct the XML/],
    ["XML whose root is not <domain>", { xml: "<network><name>n</name></network>" }, "xml", /virsh dumpxml/],
    ["negative memory", { memory: "-512 MiB" }, "memory", /512 MiB/],
    ["memory without a unit", { memory: "512" }, "memory", /512 MiB/],
    ["memory with an unknown unit", { memory: "2 parsecs" }, "memory", /512 MiB/],
    ["zero memory", { memory: "0 MiB" }, "memory", /512 MiB/],
    ["zero vcpus", { vcpus: 0 }, "vcpus", /vcpus: 2/],
    ["relative disk path", { disks: [{ file: "images/root.qcow2" }] }, "disks[0].file", /full path/],
    ["disk path with ..", { disks: [{ file: "/var/lib/../../etc/shadow" }] }, "disks[0].file", /without '\.\.'/],
    ["bad MAC", { interfaces: [{ type: "user", mac: "52:54:00:zz:00:01" }] }, "interfaces[0].mac", /52:54:00/],
    ["multicast MAC", { interfaces: [{ type: "user", mac: "01:00:5e:00:00:01" }] }, "interfaces[0].mac", /52:54:00/],
    ["network interface without source", { interfaces: [{ type: "network" }] }, "interfaces[0].source", /default/],
    ["bad hwuuidMode", { hwuuidMode: "magic" }, "hwuuidMode", /auto/],
    ["negative shutdown timeout", { shutdownTimeoutSeconds: -1 }, "shutdownTimeoutSeconds", /60/],
  ] as Case[]
).map(([t, extra, p, fix]) => [t, { name: `${prefix}bad`, ...extra }, p, fix]);

describe("bad inputs fail at check, naming the property and the fix, leaving nothing behind", function () {
  let lab: Lab;
  let domainsBefore: string[];
  let filesBefore: string[];
  before(async () => {
    lab = await requireLab("new");
    domainsBefore = await domainsWithPrefix(lab.uri, prefix);
    filesBefore = listFiles(lab.imageDir);
  });
  after(async () => removeDomains(lab.uri, prefix));

  it("has at least 25 cases", () => {
    expect(CASES.length).to.be.at.least(25);
  });

  for (const [title, extra, property, fix] of CASES) {
    it(title, async () => {
      const c = await impl.check({}, { connection: { uri: lab.uri }, ...extra });
      expect(c.failures.map((f) => f.property), title).to.include(property);
      const f = c.failures.find((x) => x.property === property)!;
      expect(f.reason, title).to.match(/fix: /).and.match(fix);
      expect(f.reason.startsWith(`${property}: `), "names the property first").to.equal(true);
    });
  }

  it("a duplicate name fails at create with the fix, and leaves the existing domain alone", async () => {
    const a = await checkAndCreate({ name: `${prefix}dup`, running: false, connection: { uri: lab.uri } });
    const c = await impl.check({}, { name: `${prefix}dup`, running: false, connection: { uri: lab.uri } });
    let err: Error | undefined;
    await impl.create(c.inputs).catch((e: Error) => (err = e));
    expect(err?.message).to.contain("already exists").and.contain("adopt: true");
    expect((await impl.read(a.id, a.outs)).id).to.equal(a.id);
    await impl.remove(a.id, a.outs);
  });

  it("adopting a domain that does not exist fails at create with the fix", async () => {
    const c = await impl.check({}, { name: `${prefix}ghost`, adopt: true, connection: { uri: lab.uri } });
    let err: Error | undefined;
    await impl.create(c.inputs).catch((e: Error) => (err = e));
    expect(err?.message).to.match(/^adopt: no domain named/).and.contain("fix:");
  });

  it("left no domain and no file behind", async () => {
    expect(await domainsWithPrefix(lab.uri, prefix)).to.deep.equal(domainsBefore);
    expect(listFiles(lab.imageDir)).to.deep.equal(filesBefore);
  });
});
