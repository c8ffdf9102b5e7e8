/** Storage volumes without a daemon: the XML we send, what we read from libvirt, the identity rule. */
import { expect } from "chai";
import { parseXml, textContent, firstChild, getAttr } from "../../provider/xml/tree";
import {
  checkVolumeName,
  compareVolumeTimes,
  copyVolumeXml,
  judgeVolume,
  overlayVolumeXml,
  parsePoolXml,
  parseVolumeXml,
  stampOf,
  VolumeError,
  volumeModeFor,
  type PooledVolume,
} from "../../provider/xml/volume";
import { LibvirtDomainError } from "../../provider/xml/errors";

/** What libvirt 12.9 printed for an overlay in the 12.x lab (`vol-dumpxml`). */
const OVERLAY_XML = `<volume type='file'>
  <name>web-1.qcow2</name>
  <key>/srv/pld-pool/web-1.qcow2</key>
  <capacity unit='bytes'>16777216</capacity>
  <allocation unit='bytes'>200704</allocation>
  <physical unit='bytes'>196616</physical>
  <target>
    <path>/srv/pld-pool/web-1.qcow2</path>
    <format type='qcow2'/>
    <permissions>
      <mode>0600</mode>
      <owner>0</owner>
      <group>0</group>
    </permissions>
    <timestamps>
      <atime>1795925573.804206425</atime>
      <mtime>1795925573.801367918</mtime>
      <ctime>1795925573.801367918</ctime>
      <btime>0</btime>
    </timestamps>
  </target>
  <backingStore>
    <path>/srv/pld-pool/base.qcow2</path>
    <format type='qcow2'/>
    <permissions>
      <mode>0644</mode>
      <owner>0</owner>
      <group>0</group>
    </permissions>
  </backingStore>
</volume>
`;

const POOL_XML = `<pool type='dir'>
  <name>pld-pool</name>
  <uuid>b8cfe286-c6c6-4acd-bee2-9849b3a7d42a</uuid>
  <capacity unit='bytes'>270553174016</capacity>
  <source>
  </source>
  <target>
    <path>/srv/pld-pool</path>
  </target>
</pool>
`;

function pooled(xml = OVERLAY_XML): PooledVolume {
  return { ...parseVolumeXml(xml), pool: "pld-pool", poolUuid: "b8cfe286-c6c6-4acd-bee2-9849b3a7d42a" };
}

function withTimes(v: PooledVolume, ctime: string, mtime = ctime): PooledVolume {
  return { ...v, timestamps: { ...v.timestamps, ctime, mtime } };
}

describe("volume XML we send", () => {
  it("an overlay: qcow2, the capacity in bytes, the template's path and format as backing store, the mode", () => {
    const xml = overlayVolumeXml({
      name: "web-1.qcow2",
      capacityBytes: "1073741824",
      backingPath: "/srv/pld-pool/base.qcow2",
      backingFormat: "qcow2",
      mode: "0640",
    });
    const root = parseXml(xml).root;
    expect(root.name).to.equal("volume");
    expect(textContent(firstChild(root, "name"))).to.equal("web-1.qcow2");
    expect(getAttr(firstChild(root, "capacity"), "unit")).to.equal("bytes");
    expect(textContent(firstChild(root, "capacity"))).to.equal("1073741824");
    const target = firstChild(root, "target")!;
    expect(getAttr(firstChild(target, "format"), "type")).to.equal("qcow2");
    expect(textContent(firstChild(firstChild(target, "permissions")!, "mode"))).to.equal("0640");
    const backing = firstChild(root, "backingStore")!;
    expect(textContent(firstChild(backing, "path"))).to.equal("/srv/pld-pool/base.qcow2");
    expect(getAttr(firstChild(backing, "format"), "type")).to.equal("qcow2");
  });

  it("escapes everything that goes into the XML: a name and a backing path with <, & and quotes round-trip", () => {
    const name = `a<b>&c'd"e.qcow2`;
    const backingPath = `/srv/p&o<o>l/it's "base".qcow2`;
    const xml = overlayVolumeXml({ name, capacityBytes: "1", backingPath, backingFormat: "raw" });
    expect(xml).to.not.contain("<b>").and.not.contain("&c");
    const root = parseXml(xml).root;
    expect(textContent(firstChild(root, "name"))).to.equal(name);
    expect(textContent(firstChild(firstChild(root, "backingStore")!, "path"))).to.equal(backingPath);
    expect(firstChild(firstChild(root, "target")!, "permissions"), "no mode given, none written").to.equal(undefined);
  });

  it("a copy: its format and mode, no backing store", () => {
    const root = parseXml(copyVolumeXml({ name: "c.img", capacityBytes: "512", format: "raw", mode: "0600" })).root;
    expect(getAttr(firstChild(firstChild(root, "target")!, "format"), "type")).to.equal("raw");
    expect(firstChild(root, "backingStore")).to.equal(undefined);
  });

  it("refuses names, sizes, formats and modes that are not what they claim, each naming the fix", () => {
    const bad: Array<() => string> = [
      () => overlayVolumeXml({ name: "a/b", capacityBytes: "1", backingPath: "/x", backingFormat: "qcow2" }),
      () => overlayVolumeXml({ name: "..", capacityBytes: "1", backingPath: "/x", backingFormat: "qcow2" }),
      () => overlayVolumeXml({ name: "-rf", capacityBytes: "1", backingPath: "/x", backingFormat: "qcow2" }),
      () => overlayVolumeXml({ name: "a\nb", capacityBytes: "1", backingPath: "/x", backingFormat: "qcow2" }),
      () => overlayVolumeXml({ name: "x".repeat(256), capacityBytes: "1", backingPath: "/x", backingFormat: "qcow2" }),
      () => overlayVolumeXml({ name: "", capacityBytes: "1", backingPath: "/x", backingFormat: "qcow2" }),
      () => overlayVolumeXml({ name: "a", capacityBytes: "1 GiB", backingPath: "/x", backingFormat: "qcow2" }),
      () => overlayVolumeXml({ name: "a", capacityBytes: "1", backingPath: "/x", backingFormat: "qcow2' x='" }),
      () => overlayVolumeXml({ name: "a", capacityBytes: "1", backingPath: "", backingFormat: "qcow2" }),
      () => overlayVolumeXml({ name: "a", capacityBytes: "1", backingPath: "/x", backingFormat: "raw", mode: "rw" }),
      () => copyVolumeXml({ name: "a", capacityBytes: "1", format: "<raw/>" }),
    ];
    for (const f of bad) {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect(VolumeError.isInstance(err), String(err)).to.equal(true);
      expect(LibvirtDomainError.isInstance(err)).to.equal(true);
      expect((err as VolumeError).fix, (err as Error).message)
        .to.be.a("string")
        .and.not.equal("");
      expect((err as Error).message).to.contain("fix: ");
    }
    expect(() => checkVolumeName("web-1.qcow2", "p/web-1.qcow2")).to.not.throw();
  });

  it("a volume's mode is its template's bits with owner read-write, never looser", () => {
    expect(volumeModeFor("0600")).to.equal("0600");
    expect(volumeModeFor("0444")).to.equal("0644");
    expect(volumeModeFor("0640")).to.equal("0640");
    expect(volumeModeFor("0400")).to.equal("0600");
    expect(volumeModeFor(undefined)).to.equal(undefined);
  });
});

describe("volume XML libvirt returns", () => {
  it("reads name, key, path, format, capacity, mode, backing store and timestamps as libvirt wrote them", () => {
    const v = parseVolumeXml(OVERLAY_XML);
    expect(v).to.deep.include({
      name: "web-1.qcow2",
      key: "/srv/pld-pool/web-1.qcow2",
      path: "/srv/pld-pool/web-1.qcow2",
      type: "file",
      format: "qcow2",
      capacityBytes: "16777216",
      allocationBytes: "200704",
      mode: "0600",
    });
    expect(v.backing).to.deep.equal({ path: "/srv/pld-pool/base.qcow2", format: "qcow2" });
    expect(v.timestamps).to.deep.equal({
      atime: "1795925573.804206425",
      mtime: "1795925573.801367918",
      ctime: "1795925573.801367918",
      btime: "0",
    });
  });

  it("converts other units to bytes exactly and refuses what is not a volume", () => {
    const v = parseVolumeXml(OVERLAY_XML.replace("<capacity unit='bytes'>16777216", "<capacity unit='GiB'>3"));
    expect(v.capacityBytes).to.equal("3221225472");
    expect(() => parseVolumeXml(POOL_XML)).to.throw(/not a <volume> document/);
    expect(() => parseVolumeXml("<volume><name>x</name></volume>")).to.throw(/no key/);
  });

  it("reads a pool's name, uuid, type and directory", () => {
    expect(parsePoolXml(POOL_XML)).to.deep.equal({
      name: "pld-pool",
      uuid: "b8cfe286-c6c6-4acd-bee2-9849b3a7d42a",
      type: "dir",
      targetPath: "/srv/pld-pool",
    });
  });
});

describe("volume identity (judgeVolume)", () => {
  const made = pooled();
  const stamp = stampOf(made);

  it("records pool uuid, key, path, format, capacity, backing store, ctime and mtime; a btime of 0 is no birth time", () => {
    expect(stamp).to.deep.equal({
      pool: "pld-pool",
      poolUuid: "b8cfe286-c6c6-4acd-bee2-9849b3a7d42a",
      name: "web-1.qcow2",
      key: "/srv/pld-pool/web-1.qcow2",
      path: "/srv/pld-pool/web-1.qcow2",
      format: "qcow2",
      capacityBytes: "16777216",
      backingPath: "/srv/pld-pool/base.qcow2",
      backingFormat: "qcow2",
      ctime: "1795925573.801367918",
      mtime: "1795925573.801367918",
    });
  });

  it("ours: everything as recorded (the atime may move: reading is not changing)", () => {
    const read = { ...made, timestamps: { ...made.timestamps, atime: "1795999999.0" } };
    expect(judgeVolume(stamp, read)).to.deep.equal({ verdict: "ours", differences: [] });
  });

  it("gone: no such volume", () => {
    expect(judgeVolume(stamp, undefined).verdict).to.equal("gone");
  });

  it("other: a same-named volume in a pool of the same name but another uuid (the pool was re-created)", () => {
    const j = judgeVolume(stamp, { ...made, poolUuid: "00000000-0000-4000-8000-000000000001" });
    expect(j.verdict).to.equal("other");
    expect(j.differences.join()).to.contain("pool uuid");
  });

  it("other: another capacity, format or backing store, whatever the times say", () => {
    for (const [v, what] of [
      [{ ...made, capacityBytes: "33554432" }, "capacity"],
      [{ ...made, format: "raw" }, "format"],
      [{ ...made, backing: { path: "/srv/pld-pool/other.qcow2", format: "qcow2" } }, "backing store path"],
      [{ ...made, backing: undefined }, "backing store path"],
      [{ ...made, key: "/srv/elsewhere/web-1.qcow2" }, "key"],
    ] as const) {
      const j = judgeVolume(stamp, v);
      expect(j.verdict, what).to.equal("other");
      expect(j.differences.join(), what).to.contain(what);
    }
  });

  it("other: a ctime earlier than ours (an older file put back at our path is not the one we made)", () => {
    const j = judgeVolume(stamp, withTimes(made, "1795925573.801367917"));
    expect(j.verdict).to.equal("other");
    expect(j.differences.join()).to.contain("earlier than ours");
  });

  it("written: same shape, later ctime or mtime (a guest's writes or a replacement: never taken for ours)", () => {
    expect(judgeVolume(stamp, withTimes(made, "1795925573.801367919")).verdict).to.equal("written");
    expect(judgeVolume(stamp, withTimes(made, "1795925574.0", "1795925573.801367918")).verdict).to.equal("written");
    const j = judgeVolume(stamp, withTimes(made, "1795925600.5"));
    expect(j.differences).to.deep.equal([
      "ctime: recorded 1795925573.801367918, now 1795925600.5",
      "mtime: recorded 1795925573.801367918, now 1795925600.5",
    ]);
  });

  it("where libvirt reports a birth time, it decides: equal is ours even after writes, different is other", () => {
    const born = { ...made, timestamps: { ...made.timestamps, btime: "1795925573.800000000" } };
    const s = stampOf(born);
    expect(s.btime).to.equal("1795925573.800000000");
    expect(
      judgeVolume(s, { ...born, timestamps: { ...born.timestamps, ctime: "1795925999.1", mtime: "1795925999.1" } })
        .verdict,
    ).to.equal("ours");
    expect(judgeVolume(s, { ...born, timestamps: { ...born.timestamps, btime: "1795925580.0" } }).verdict).to.equal(
      "other",
    );
  });

  it("no timestamps at creation: nothing could prove it ours later, so it is refused at once", () => {
    expect(() => stampOf({ ...made, timestamps: undefined })).to.throw(VolumeError, /no timestamps/);
  });

  it("compares libvirt's times exactly, nanoseconds included", () => {
    expect(compareVolumeTimes("1.5", "1.500000000")).to.equal(0);
    expect(compareVolumeTimes("1.000000001", "1")).to.equal(1);
    expect(compareVolumeTimes("9", "10")).to.equal(-1);
    expect(compareVolumeTimes("1795925573.801367918", "1795925573.801367919")).to.equal(-1);
    expect(() => compareVolumeTimes("yesterday", "1")).to.throw(VolumeError, /not a libvirt timestamp/);
  });
});
