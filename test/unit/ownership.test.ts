/**
 * What makes a domain or an image ours (pure parts, no daemon): the ownership mark's whole owner
 * identity, the virsh addressing by uuid, and the image identity (device + inode + birth time,
 * or a pin where there is no birth time). The lab suite holds the same promises on real parts
 * (test/lab/ours.test.ts).
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { imageModeFor, isSameImage, ImageStamp, writeImageAtomically } from "../../provider/backends/image";
import { domainArg, parseUuidNameList, xmlUuid } from "../../provider/backends/virsh/virsh-backend";
import {
  composeDomain,
  notOwnedReason,
  ownerMark,
  OWNER_NAMESPACE,
  setOwnerMark,
} from "../../provider/desired/compose";
import { DomainDef } from "../../provider/xml/domain";

const U = "33721861-ccee-4dc2-858c-5f1e4629771f";
const URI = "qemu+ssh://admin@hv1/system?keyfile=/k&no_verify=1";

function marked(attrs: string | undefined): DomainDef {
  const md =
    attrs === undefined ? "" : `<metadata><lvd:owner xmlns:lvd='${OWNER_NAMESPACE}' adopted='no'${attrs}/></metadata>`;
  return DomainDef.parse(
    `<domain type='qemu'><name>web-1</name><uuid>${U}</uuid>${md}<memory>65536</memory><os><type>hvm</type></os></domain>`,
  );
}

describe("ownership mark: the whole owner identity", () => {
  const owner = { ownerId: "proj/dev/web", connection: URI };

  it("compose writes the resource and the connection as given (default: qemu:///system); they read back", () => {
    const c = composeDomain({ name: "web-1", ownerId: "proj/dev/web", connection: { uri: URI } }, "native");
    expect(ownerMark(c.def)).to.deep.equal({ adopted: false, ownerId: "proj/dev/web", connection: URI });
    expect(c.xml).to.contain("connection='qemu+ssh://admin@hv1/system?keyfile=/k&amp;no_verify=1'");
    expect(ownerMark(composeDomain({ name: "web-1" }, "native").def)?.connection).to.equal("qemu:///system");
    expect(notOwnedReason(DomainDef.parse(c.xml), owner)).to.equal(undefined);
  });

  it("refuses no mark, another project/stack/resource, another connection", () => {
    expect(notOwnedReason(marked(undefined), owner)).to.contain("no pulumi-libvirt-domain ownership mark");
    expect(
      notOwnedReason(marked(` resource='proj/prod/web' connection='${URI.replace("&", "&amp;")}'`), owner),
    ).to.contain('"proj/prod/web", not "proj/dev/web"');
    expect(
      notOwnedReason(marked(` resource='proj/dev/db' connection='${URI.replace("&", "&amp;")}'`), owner),
    ).to.contain("another project, stack or resource");
    expect(notOwnedReason(marked(` resource='other/dev/web'`), owner)).to.contain("another project, stack or resource");
    expect(notOwnedReason(marked(` resource='proj/dev/web' connection='qemu:///system'`), owner)).to.contain(
      'connection "qemu:///system", not',
    );
    // A mark without a resource is ours only when no owner id is given either.
    expect(notOwnedReason(marked(""), owner)).to.contain("another project, stack or resource");
    expect(notOwnedReason(marked(""), { connection: URI })).to.equal(undefined);
  });

  it("a mark of the previous version (no connection) is compared on what it has: the resource", () => {
    expect(notOwnedReason(marked(" resource='proj/dev/web'"), owner)).to.equal(undefined);
    expect(notOwnedReason(marked(" resource='proj/prod/web'"), owner)).to.contain("another project, stack or resource");
  });

  it("setOwnerMark replaces our mark and leaves other metadata alone", () => {
    const d = DomainDef.parse(
      `<domain type='qemu'><name>x</name><metadata><app:tag xmlns:app='http://example.org/app/1'>1</app:tag><lvd:owner xmlns:lvd='${OWNER_NAMESPACE}' adopted='no' resource='a/b/c'/></metadata></domain>`,
    );
    setOwnerMark(d, true, "a/b/c", "qemu:///system");
    expect(d.format()).to.contain("<app:tag xmlns:app='http://example.org/app/1'>1</app:tag>");
    expect(d.format().match(/lvd:owner/g)).to.have.length(1);
    expect(ownerMark(d)).to.deep.equal({ adopted: true, ownerId: "a/b/c", connection: "qemu:///system" });
  });
});

describe("virsh addressing by uuid", () => {
  it("a reference with a uuid is addressed by it, never by its name", () => {
    expect(domainArg({ name: "1", uuid: U })).to.equal(U);
    expect(domainArg({ name: U.replace("3", "4"), uuid: U })).to.equal(U);
    expect(domainArg({ name: "web-1" })).to.equal("web-1");
    expect(domainArg("web-1")).to.equal("web-1");
  });

  it("parses `list --all --uuid --name` into name -> uuid, names with spaces and uuid-shaped names included", () => {
    const out = `${U} 1\n 5d5b0f1d-128b-4517-8e65-b258a8734c1d ${U}\n8E0C4A2B-0000-4000-8000-000000000001 my guest \n\n`;
    const m = parseUuidNameList(out);
    expect([...m.entries()]).to.deep.equal([
      ["1", U],
      [U, "5d5b0f1d-128b-4517-8e65-b258a8734c1d"],
      ["my guest", "8e0c4a2b-0000-4000-8000-000000000001"],
    ]);
  });

  it("reads the domain's own uuid from its XML", () => {
    expect(
      xmlUuid(
        `<domain type='kvm'>\n  <name>1</name>\n  <uuid>${U.toUpperCase()}</uuid>\n  <sysinfo><system><entry name='uuid'>x</entry></system></sysinfo></domain>`,
      ),
    ).to.equal(U);
    expect(xmlUuid("<domain><name>x</name></domain>")).to.equal(undefined);
  });
});

describe("image identity", () => {
  const s: ImageStamp = {
    path: "/i/m.qcow2",
    device: "65024",
    inode: "770097",
    birthtimeNs: "1795916895897117375",
    sizeBytes: 1,
  };
  const now = { device: "65024", inode: "770097", birthtimeNs: "1795916895897117375", sizeBytes: 9 };

  it("same device, inode and birth time: ours; a reused inode (another birth time), another device, or nothing: not ours", () => {
    expect(isSameImage(s, now, undefined)).to.equal(true);
    expect(isSameImage(s, { ...now, birthtimeNs: "1795916895901117375" }, undefined)).to.equal(false);
    expect(isSameImage(s, { ...now, device: "65025" }, undefined)).to.equal(false);
    expect(isSameImage(s, { ...now, inode: "770098" }, undefined)).to.equal(false);
    expect(isSameImage(s, undefined, undefined)).to.equal(false);
  });

  it("without birth time: ours only while our pin still holds the inode", () => {
    const z = { ...s, birthtimeNs: "0", pin: "/i/.m.qcow2.lvd-pin-0a1b" };
    const n0 = { ...now, birthtimeNs: "0" };
    expect(isSameImage(z, n0, n0)).to.equal(true);
    expect(isSameImage(z, n0, undefined), "pin gone: the inode may have been reused").to.equal(false);
    expect(isSameImage(z, n0, { ...n0, inode: "1" })).to.equal(false);
    expect(isSameImage({ ...z, pin: undefined }, n0, n0), "no pin recorded").to.equal(false);
  });

  it("a new image has the template's bits for group and others, read-write for its owner", () => {
    expect([0o600, 0o640, 0o644, 0o444, 0o400, 0o100600].map((m) => imageModeFor(m).toString(8))).to.deep.equal([
      "600",
      "640",
      "644",
      "644",
      "600",
      "600",
    ]);
  });

  it("the temporary file exists with the final mode before anything writes into it, whatever the umask", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-unit-img-"));
    const old = process.umask();
    try {
      for (const [umask, mode] of [
        [0o022, 0o600],
        [0o077, 0o640],
        [0o000, 0o600],
      ] as const) {
        process.umask(umask);
        const target = path.join(dir, `m-${umask}-${mode}.img`);
        let seen: number | undefined;
        const st = await writeImageAtomically(target, mode, async (tmp) => {
          seen = fs.statSync(tmp).mode & 0o777;
          fs.appendFileSync(tmp, "data");
        });
        expect(seen, `umask ${umask.toString(8)}`).to.equal(mode);
        expect(fs.statSync(target).mode & 0o777).to.equal(mode);
        expect(st.inode).to.equal(String(fs.statSync(target).ino));
      }
      expect(fs.readdirSync(dir).filter((f) => f.startsWith("."))).to.deep.equal([]);
    } finally {
      process.umask(old);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
