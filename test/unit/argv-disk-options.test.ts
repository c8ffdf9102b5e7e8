/**
 * Disk options of the QEMU-direct builder (provider/qemu/storage.ts, the disk loop of provider/qemu/argv.ts):
 * `<iotune>` (no argument: QMP block_set_io_throttle after start, QemuCommand.blockThrottles),
 * virtio-blk `ioeventfd`/`event_idx`, floppies on q35 (an isa-fdc device), `device='lun'`
 * (scsi-block), HTTP(S) cookies (a secret object read from a file). Spellings are those of
 * libvirt 11.3's tests/qemuxmlconfdata .args files (blkdeviotune, disk-ioeventfd, event_idx,
 * disk-floppy-q35, boot-floppy-q35, disk-scsi-lun-passthrough, disk-network-http).
 */
import { expect } from "chai";
import { buildQemuArgv } from "../../provider/qemu/argv";
import { EXPRESSED_PATHS } from "../../provider/qemu/paths";
import { IOTUNE_ELEMENTS, applyStartupPolicies, httpCookies } from "../../provider/qemu/storage";
import { DomainDef } from "../../provider/xml/domain";
import { parseXml } from "../../provider/xml/tree";
import { argv, devices, refusal, values } from "../support/argv";

const U = "33721861-ccee-4dc2-858c-5f1e4629771f";

const doc = (devs = "", machine = "pc", os = "") =>
  DomainDef.parse(
    `<domain type='qemu'><name>d</name><uuid>${U}</uuid><memory unit='MiB'>256</memory><vcpu>1</vcpu>` +
      `<os><type arch='x86_64' machine='${machine}'>hvm</type>${os}</os><devices>${devs}</devices></domain>`,
  );

const disk = (inner: string, type = "file", dev = "disk") => `<disk type='${type}' device='${dev}'>${inner}</disk>`;
const iotune = (inner: string, target = "<target dev='vda' bus='virtio'/>", src = "<source file='/i/a.img'/>") =>
  doc(disk(`${src}${target}<iotune>${inner}</iotune>`));

describe("QEMU command line: disk <iotune> (QMP block_set_io_throttle after start)", () => {
  it("adds no argument; the limits are blockThrottles for the backend, as libvirt sends them (blkdeviotune)", () => {
    const plain = argv(doc(disk("<source file='/i/a.img'/><target dev='hda' bus='ide'/>")));
    const c = buildQemuArgv(
      iotune(
        "<total_bytes_sec>5000</total_bytes_sec><total_iops_sec>6000</total_iops_sec>",
        "<target dev='hda' bus='ide'/>",
      ),
    );
    expect(c.argv).to.deep.equal(plain);
    expect(c.blockThrottles).to.deep.equal([
      {
        path: "/domain/devices/disk[1]",
        args: {
          id: "ide0-0-0",
          bps: 5000,
          bps_rd: 0,
          bps_wr: 0,
          iops: 6000,
          iops_rd: 0,
          iops_wr: 0,
          bps_max: 0,
          bps_rd_max: 0,
          bps_wr_max: 0,
          iops_max: 0,
          iops_rd_max: 0,
          iops_wr_max: 0,
          iops_size: 0,
        },
      },
    ]);
  });

  it("a virtio disk is named by its virtio backend; group and burst lengths are sent when set", () => {
    const c = buildQemuArgv(
      iotune(
        "<read_bytes_sec>5000</read_bytes_sec><read_bytes_sec_max>6000</read_bytes_sec_max>" +
          "<read_bytes_sec_max_length>3</read_bytes_sec_max_length><group_name>g1</group_name>",
      ),
    );
    expect(c.blockThrottles?.[0]?.args).to.include({
      id: "/machine/peripheral/virtio-disk0/virtio-backend",
      bps_rd: 5000,
      bps_rd_max: 6000,
      bps_rd_max_length: 3,
      group: "g1",
    });
    expect(c.blockThrottles?.[0]?.args).not.to.have.property("bps_max_length");
  });

  it("a USB disk is named by the SCSI disk usb-storage makes (QEMU refuses its own id: no block backend)", () => {
    const c = buildQemuArgv(iotune("<total_bytes_sec>1</total_bytes_sec>", "<target dev='sda' bus='usb'/>"));
    expect(c.blockThrottles?.[0]?.args.id).to.equal("/machine/peripheral/usb-disk0/usb-disk0.0/legacy[0]");
  });

  it("an empty drive and a definition without limits get none (libvirt skips them)", () => {
    expect(buildQemuArgv(iotune("<total_bytes_sec>0</total_bytes_sec>")).blockThrottles).to.equal(undefined);
    const cd = doc(
      "<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><iotune><total_bytes_sec>1</total_bytes_sec></iotune></disk>",
    );
    expect(buildQemuArgv(cd).blockThrottles).to.equal(undefined);
  });

  it("libvirt's and QEMU's rules are checked at preview, naming the setting", () => {
    const cases: [string, string, RegExp][] = [
      ["<total_bytes_sec>1</total_bytes_sec><read_bytes_sec>1</read_bytes_sec>", "total_bytes_sec", /not both/],
      ["<total_iops_sec>1</total_iops_sec><write_iops_sec>1</write_iops_sec>", "total_iops_sec", /not both/],
      ["<total_bytes_sec_max>9</total_bytes_sec_max>", "total_bytes_sec_max", /set <total_bytes_sec> too/],
      [
        "<read_iops_sec>9</read_iops_sec><read_iops_sec_max>5</read_iops_sec_max>",
        "read_iops_sec_max",
        /at least <read_iops_sec>/,
      ],
      [
        "<total_bytes_sec>1</total_bytes_sec><total_bytes_sec_max_length>3</total_bytes_sec_max_length>",
        "total_bytes_sec_max_length",
        /set <total_bytes_sec_max>/,
      ],
      ["<total_bytes_sec>1</total_bytes_sec><size_iops_sec>4096</size_iops_sec>", "size_iops_sec", /total_iops_sec/],
      ["<group_name>g</group_name>", "group_name", /at least one limit/],
      ["<total_bytes_sec>12k</total_bytes_sec>", "total_bytes_sec", /decimal/],
      ["<total_bytes_sec>1000000000000001</total_bytes_sec>", "total_bytes_sec", /decimal/],
      ["<total_bytes_secs>1</total_bytes_secs>", "total_bytes_secs", /remove <total_bytes_secs>/],
    ];
    for (const [inner, at, fix] of cases) {
      const e = refusal(iotune(inner));
      expect(e.path, inner).to.equal(`/domain/devices/disk[1]/iotune/${at}`);
      expect(e.fix, inner).to.match(fix);
    }
  });

  it("every <iotune> setting the builder reads is in the path table", () => {
    for (const e of IOTUNE_ELEMENTS) expect(EXPRESSED_PATHS.has(`/domain/devices/disk/iotune/${e}`), e).to.equal(true);
  });
});

describe("QEMU command line: virtio-blk ioeventfd and event_idx", () => {
  it("are booleans of virtio-blk-pci (disk-ioeventfd, event_idx)", () => {
    const d = doc(
      disk(
        "<driver name='qemu' type='raw' ioeventfd='on' event_idx='off'/><source file='/i/a.img'/><target dev='vda' bus='virtio'/>",
      ),
    );
    expect(devices(d).find((x) => x.driver === "virtio-blk-pci")).to.include({ ioeventfd: true, event_idx: false });
  });

  it("are refused on other buses and for other values", () => {
    const ide = refusal(
      doc(disk("<driver name='qemu' ioeventfd='on'/><source file='/i/a.img'/><target dev='hda' bus='ide'/>")),
    );
    expect(ide.path).to.equal("/domain/devices/disk[1]/driver/@ioeventfd");
    const bad = refusal(
      doc(disk("<driver name='qemu' event_idx='yes'/><source file='/i/a.img'/><target dev='vda' bus='virtio'/>")),
    );
    expect(bad.path).to.equal("/domain/devices/disk[1]/driver/@event_idx");
  });
});

describe("QEMU command line: floppies on q35 and LUNs", () => {
  const floppy = (dev: string, unit: number, boot = "") =>
    `<disk type='file' device='floppy'><source file='/i/${dev}.img'/><target dev='${dev}' bus='fdc'/>${boot}` +
    `<address type='drive' controller='0' bus='0' target='0' unit='${unit}'/></disk>`;

  it("q35 gets an isa-fdc device carrying the boot indexes (disk-floppy-q35, boot-floppy-q35)", () => {
    const d = doc(floppy("fda", 0, "<boot order='1'/>") + floppy("fdb", 1, "<boot order='2'/>"), "q35");
    const a = argv(d);
    const devs = values(a, "-device").map((v) => JSON.parse(v) as Record<string, unknown>);
    expect(devs.find((x) => x.driver === "isa-fdc")).to.deep.equal({ driver: "isa-fdc", bootindexA: 1, bootindexB: 2 });
    expect(devs.filter((x) => x.driver === "floppy").map((x) => x.id)).to.deep.equal(["fdc0-0-0", "fdc0-0-1"]);
    // the controller comes before the drives that plug into it
    const at = (s: string) => a.findIndex((x) => x.includes(s));
    expect(at('"isa-fdc"')).to.be.lessThan(at('"driver":"floppy"'));
    expect(values(a, "-global").some((g) => g.startsWith("isa-fdc."))).to.equal(false);
  });

  it("the PC machine keeps its built-in fdc and -global boot indexes", () => {
    const a = argv(doc(floppy("fda", 0, "<boot order='1'/>")));
    expect(values(a, "-global")).to.include("isa-fdc.bootindexA=1");
    expect(a.some((x) => x.includes('"isa-fdc"'))).to.equal(false);
  });

  it("device='lun' on SCSI is scsi-block without device_id (disk-scsi-lun-passthrough)", () => {
    const d = doc(
      "<disk type='block' device='lun'><source dev='/dev/sdz'/><target dev='sda' bus='scsi'/></disk>" +
        "<controller type='scsi' index='0' model='virtio-scsi'/>",
    );
    expect(devices(d).find((x) => x.driver === "scsi-block")).to.deep.equal({
      driver: "scsi-block",
      bus: "scsi0.0",
      channel: 0,
      "scsi-id": 0,
      lun: 0,
      drive: "libvirt-1-storage",
      id: "scsi0-0-0-0",
      bootindex: 1,
    });
  });

  it("a LUN that is a file, on virtio, with reservations or a serial is refused naming it", () => {
    const lun = (attrs: string, inner: string) => doc(`<disk device='lun' ${attrs}>${inner}</disk>`);
    expect(refusal(lun("type='file'", "<source file='/i/a'/><target dev='sda' bus='scsi'/>")).path).to.equal(
      "/domain/devices/disk[1]/@type",
    );
    expect(refusal(lun("type='block'", "<source dev='/dev/sdz'/><target dev='vda' bus='virtio'/>")).path).to.equal(
      "/domain/devices/disk[1]/target/@bus",
    );
    expect(
      refusal(
        lun(
          "type='block'",
          "<source dev='/dev/sdz'><reservations managed='yes'/></source><target dev='sda' bus='scsi'/>",
        ),
      ).path,
    ).to.equal("/domain/devices/disk[1]/source/reservations");
    const serial = refusal(
      lun("type='block'", "<source dev='/dev/sdz'/><target dev='sda' bus='scsi'/><serial>x</serial>"),
    );
    expect(serial.value).to.equal("serial");
  });
});

describe("QEMU command line: HTTP(S) disk cookies", () => {
  const http = (cookies: string) =>
    doc(
      disk(
        `<driver name='qemu' type='raw'/><source protocol='https' name='a.img'><host name='example.org' port='1234'/>` +
          `<cookies>${cookies}</cookies></source><target dev='vda' bus='virtio'/>`,
        "network",
      ),
    );

  it("reach QEMU as a secret object read from a file, named as libvirt names it (disk-network-http)", () => {
    const c = buildQemuArgv(
      http("<cookie name='test'>testcookievalue</cookie><cookie name='test2'>\"blurb\"</cookie>"),
    );
    const id = "libvirt-1-storage-httpcookie-secret0";
    const secret = values(c.argv, "-object").map((v) => JSON.parse(v) as Record<string, unknown>);
    expect(secret).to.deep.include({ "qom-type": "secret", id, format: "raw", file: `/run/libvirt-domain/d/${id}` });
    const blockdev = values(c.argv, "-blockdev").map((v) => JSON.parse(v) as Record<string, unknown>);
    expect(blockdev[0]).to.include({ driver: "https", "cookie-secret": id });
    expect(c.secretFiles).to.deep.equal([
      { path: `/run/libvirt-domain/d/${id}`, data: 'test=testcookievalue; test2="blurb"' },
    ]);
    // the cookie itself is on no argument
    expect(c.argv.join(" ")).not.to.include("testcookievalue");
  });

  it("invalid names, values and duplicates are refused without showing the value", () => {
    expect(refusal(http("<cookie name='a b'>v</cookie>")).path).to.match(/cookie\[1\]\/@name$/);
    expect(refusal(http("<cookie name='a'>v</cookie><cookie name='a'>w</cookie>")).message).to.match(/duplicate/);
    const bad = refusal(http("<cookie name='a'>se;cret</cookie>"));
    expect(bad.path).to.match(/cookie\[1\]$/);
    expect(bad.message).not.to.include("se;cret");
  });

  it("the header value joins the cookies as libvirt does", () => {
    const el = parseXml("<cookies><cookie name='a'>1</cookie><cookie name='b'>\"2\"</cookie></cookies>").root;
    expect(httpCookies(el, "/c")).to.equal('a=1; b="2"');
  });
});

describe("QEMU command line: a disk source's <seclabel>", () => {
  const withLabels = (labels: string) =>
    doc(disk(`<source file='/i/a.img'>${labels}</source><target dev='vda' bus='virtio'/>`));

  it("relabel='no' and labelskip='yes' ask for nothing the backend does not do: accepted, no argument", () => {
    const plain = argv(doc(disk("<source file='/i/a.img'/><target dev='vda' bus='virtio'/>")));
    expect(
      argv(withLabels("<seclabel model='selinux' relabel='no'/><seclabel model='dac' relabel='no'/>")),
    ).to.deep.equal(plain);
    expect(argv(withLabels("<seclabel model='selinux' labelskip='yes'/>"))).to.deep.equal(plain);
  });

  it("a label or relabel='yes' is refused naming the fix; several seclabels each name their model", () => {
    const label = refusal(
      withLabels("<seclabel model='selinux' relabel='yes'><label>system_u:object_r:x_t:s0</label></seclabel>"),
    );
    expect(label.path).to.equal("/domain/devices/disk[1]/source/seclabel/label");
    expect(label.fix).to.match(/relabel='no'/);
    expect(refusal(withLabels("<seclabel model='dac'/>")).path).to.equal(
      "/domain/devices/disk[1]/source/seclabel/@relabel",
    );
    expect(refusal(withLabels("<seclabel relabel='no'/><seclabel model='dac' relabel='no'/>")).path).to.equal(
      "/domain/devices/disk[1]/source/seclabel[1]/@model",
    );
    expect(refusal(withLabels("<seclabel model='dac' relabel='maybe'/>")).path).to.equal(
      "/domain/devices/disk[1]/source/seclabel/@relabel",
    );
  });
});

describe("QEMU command line: IOThreads of virtio disks and virtio-scsi controllers", () => {
  const withThreads = (devs: string) =>
    DomainDef.parse(
      `<domain type='qemu'><name>d</name><uuid>${U}</uuid><memory unit='MiB'>256</memory><vcpu>1</vcpu>` +
        `<iothreads>4</iothreads><os><type arch='x86_64' machine='pc'>hvm</type></os><devices>${devs}</devices></domain>`,
    );
  const vdisk = (drv: string) => disk(`${drv}<source file='/i/a.img'/><target dev='vda' bus='virtio'/>`);

  it("iothread and the queue mapping as libvirt writes them (iothreads-disk, iothreads-virtio-scsi-*)", () => {
    const one = devices(withThreads(vdisk("<driver name='qemu' type='raw' iothread='1'/>")));
    expect(one.find((x) => x.driver === "virtio-blk-pci")).to.include({ iothread: "iothread1" });
    const map = devices(
      withThreads(
        vdisk(
          "<driver name='qemu' type='raw' queues='4'><iothreads><iothread id='2'><queue id='1'/><queue id='3'/></iothread>" +
            "<iothread id='3'><queue id='0'/><queue id='2'/></iothread></iothreads></driver>",
        ),
      ),
    );
    expect(map.find((x) => x.driver === "virtio-blk-pci")?.["iothread-vq-mapping"]).to.deep.equal([
      { iothread: "iothread2", vqs: [1, 3] },
      { iothread: "iothread3", vqs: [0, 2] },
    ]);
    const scsi = devices(
      withThreads(
        "<controller type='scsi' index='0' model='virtio-scsi'><driver iothread='2'/></controller>" +
          "<controller type='scsi' index='1' model='virtio-scsi'><driver queues='2'><iothreads><iothread id='4'><queue id='0'/></iothread>" +
          "<iothread id='2'><queue id='1'/></iothread></iothreads></driver></controller>",
      ),
    );
    expect(scsi.find((x) => x.id === "scsi0")).to.include({ iothread: "iothread2" });
    expect(scsi.find((x) => x.id === "scsi1")).to.deep.include({
      num_queues: 2,
      "iothread-vq-mapping": [
        { iothread: "iothread4", vqs: [0] },
        { iothread: "iothread2", vqs: [1] },
      ],
    });
  });

  it("undefined IOThreads, doubled or partial mappings, queues out of range and other buses are refused", () => {
    const P = "/domain/devices/disk[1]/driver";
    const cases: [string, string][] = [
      ["<driver name='qemu' iothread='5'/>", `${P}/@iothread`],
      ["<driver name='qemu' iothread='1'><iothreads><iothread id='2'/></iothreads></driver>", `${P}/iothreads`],
      [
        "<driver name='qemu'><iothreads><iothread id='2'/><iothread id='2'/></iothreads></driver>",
        `${P}/iothreads/iothread[2]/@id`,
      ],
      [
        "<driver name='qemu' queues='2'><iothreads><iothread id='1'><queue id='0'/></iothread><iothread id='2'/></iothreads></driver>",
        `${P}/iothreads/iothread[2]`,
      ],
      [
        "<driver name='qemu' queues='2'><iothreads><iothread id='1'><queue id='2'/></iothread></iothreads></driver>",
        `${P}/iothreads/iothread[1]/queue[1]/@id`,
      ],
      [
        "<driver name='qemu' queues='2'><iothreads><iothread id='1'><queue id='0'/></iothread><iothread id='2'><queue id='0'/></iothread></iothreads></driver>",
        `${P}/iothreads/iothread[2]/queue[1]/@id`,
      ],
      [
        "<driver name='qemu' queues='2'><iothreads><iothread id='1'><queue id='0'/></iothread></iothreads></driver>",
        `${P}/iothreads`,
      ],
    ];
    for (const [drv, at] of cases) expect(refusal(withThreads(vdisk(drv))).path, drv).to.equal(at);
    const ide = withThreads(
      disk("<driver name='qemu' iothread='1'/><source file='/i/a.img'/><target dev='hda' bus='ide'/>"),
    );
    expect(refusal(ide).path).to.equal(`${P}/@iothread`);
  });
});

describe("QEMU command line: a directory as a virtual FAT disk", () => {
  const fat = (attrs: string, inner: string) => doc(`<disk ${attrs}>${inner}</disk>`);

  it("is QEMU's vvfat under a raw format node, read-only (floppy-drive-fat)", () => {
    const d = fat(
      "type='dir' device='floppy'",
      "<driver name='qemu' type='fat'/><source dir='/var/somefiles'/><target dev='fda' bus='fdc'/><readonly/>",
    );
    const nodes = values(argv(d), "-blockdev").map((v) => JSON.parse(v) as Record<string, unknown>);
    expect(nodes).to.deep.equal([
      {
        driver: "vvfat",
        dir: "/var/somefiles",
        floppy: true,
        rw: false,
        "node-name": "libvirt-1-storage",
        "auto-read-only": true,
        discard: "unmap",
      },
      { "node-name": "libvirt-1-format", "read-only": true, driver: "raw", file: "libvirt-1-storage" },
    ]);
  });

  it("read-write, a file as fat, or a directory not as fat is refused as libvirt refuses it", () => {
    const rw = refusal(
      fat(
        "type='dir' device='disk'",
        "<driver name='qemu' type='fat'/><source dir='/d'/><target dev='hda' bus='ide'/>",
      ),
    );
    expect(rw.path).to.equal("/domain/devices/disk[1]/readonly");
    expect(rw.message).to.match(/read-write/);
    expect(
      refusal(
        fat(
          "type='file' device='disk'",
          "<driver name='qemu' type='fat'/><source file='/f'/><target dev='hda' bus='ide'/><readonly/>",
        ),
      ).path,
    ).to.equal("/domain/devices/disk[1]/@type");
    expect(
      refusal(
        fat(
          "type='dir' device='disk'",
          "<driver name='qemu' type='raw'/><source dir='/d'/><target dev='hda' bus='ide'/><readonly/>",
        ),
      ).path,
    ).to.equal("/domain/devices/disk[1]/driver/@type");
  });
});

describe("QEMU command line: what a disk needs libvirt for is refused with the fix", () => {
  it("encryption (disk, source, backing layer) names libvirt's secret store and not the secret", () => {
    const uuid = "0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f";
    const enc = `<encryption format='luks'><secret type='passphrase' uuid='${uuid}'/></encryption>`;
    const at = [
      refusal(doc(disk(`<source file='/i/a.img'/><target dev='vda' bus='virtio'/>${enc}`))),
      refusal(doc(disk(`<source file='/i/a.img'>${enc}</source><target dev='vda' bus='virtio'/>`))),
      refusal(
        doc(
          disk(
            "<driver name='qemu' type='qcow2'/><source file='/i/a.qcow2'/><target dev='vda' bus='virtio'/>" +
              `<backingStore type='file'><format type='qcow2'/><source file='/i/b.qcow2'>${enc}</source></backingStore>`,
          ),
        ),
      ),
      refusal(
        doc(
          disk(
            `<source protocol='rbd' name='pool/image'><host name='mon1'/>${enc}</source><target dev='vda' bus='virtio'/>`,
            "network",
          ),
        ),
      ),
    ];
    expect(at.map((e) => e.path)).to.deep.equal([
      "/domain/devices/disk[1]/encryption",
      "/domain/devices/disk[1]/source/encryption",
      "/domain/devices/disk[1]/backingStore/source/encryption",
      "/domain/devices/disk[1]/source/encryption",
    ]);
    for (const e of at) {
      expect(e.fix).to.match(/secret store/);
      expect(e.message).not.to.include(uuid);
    }
  });

  it("transient disks, storage volumes, vhost-user and ssh disks and IDE units QEMU lacks say why", () => {
    expect(refusal(doc(disk("<source file='/i/a.img'/><target dev='vda' bus='virtio'/><transient/>"))).fix).to.match(
      /overlay/,
    );
    expect(refusal(doc(disk("<source pool='p' volume='v'/><target dev='vda' bus='virtio'/>", "volume"))).fix).to.match(
      /storage driver/,
    );
    expect(
      refusal(doc(disk("<source type='unix' path='/tmp/v.sock'/><target dev='vda' bus='virtio'/>", "vhostuser"))).fix,
    ).to.match(/vhost-user-blk server/);
    expect(
      refusal(
        doc(
          disk(
            "<source protocol='ssh' name='a.img'><host name='h'/></source><target dev='vda' bus='virtio'/>",
            "network",
          ),
        ),
      ).fix,
    ).to.match(/nbdkit/);
    const ide = refusal(
      doc(
        disk(
          "<source file='/i/a.img'/><target dev='hda' bus='ide'/><address type='drive' controller='0' bus='0' target='0' unit='2'/>",
        ),
      ),
    );
    expect(ide.fix).to.match(/QEMU refuses/);
  });
});

describe("QEMU command line: virtiofs over the socket of a virtiofsd the user runs", () => {
  const SHARED = "<memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>";
  const withFs = (fs: string, top = SHARED) =>
    DomainDef.parse(
      `<domain type='qemu'><name>d</name><uuid>${U}</uuid><memory unit='MiB'>256</memory><vcpu>1</vcpu>${top}` +
        `<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>${fs}</devices></domain>`,
    );
  const vfs = (inner = "") =>
    `<filesystem type='mount'><driver type='virtiofs' queue='1024'/><source socket='/tmp/sock'/><target dir='tag'/>${inner}</filesystem>`;

  it("is a socket chardev and vhost-user-fs-pci as libvirt writes them (vhost-user-fs-sock)", () => {
    const a = argv(withFs(vfs()));
    expect(values(a, "-chardev")).to.include("socket,id=chr-vu-fs0,path=/tmp/sock");
    expect(devices(withFs(vfs())).find((x) => x.driver === "vhost-user-fs-pci")).to.include({
      id: "fs0",
      chardev: "chr-vu-fs0",
      "queue-size": 1024,
      tag: "tag",
    });
  });

  it("needs shared guest memory; what the user's virtiofsd decides, and virtiofs without a socket, are refused", () => {
    const unshared = refusal(withFs(vfs(), ""));
    expect(unshared.message).to.match(/requires shared memory/);
    expect(unshared.fix).to.match(/access mode='shared'/);
    expect(refusal(withFs(vfs("<readonly/>"))).path).to.equal("/domain/devices/filesystem[1]/readonly");
    const dir = refusal(
      withFs("<filesystem type='mount'><driver type='virtiofs'/><source dir='/srv'/><target dir='tag'/></filesystem>"),
    );
    expect(dir.path).to.equal("/domain/devices/filesystem[1]/driver/@type");
    expect(dir.fix).to.match(/source socket/);
  });
});

describe("<source startupPolicy>: no argument; a missing optional image is left out at start, as libvirt does", () => {
  const two = () =>
    doc(
      disk("<source file='/i/here.img' startupPolicy='optional'/><target dev='vda' bus='virtio'/>") +
        disk("<source file='/i/gone.img' startupPolicy='optional'/><target dev='vdb' bus='virtio'/>") +
        disk(
          "<source file='/i/gone.iso' startupPolicy='optional'/><target dev='hdc' bus='ide'/><readonly/>",
          "file",
          "cdrom",
        ) +
        disk("<source file='/i/gone2.img' startupPolicy='mandatory'/><target dev='vdc' bus='virtio'/>"),
    );

  it("is accepted with no argument on file and block disks (disk-aio-io_uring)", () => {
    const plain = argv(doc(disk("<source file='/i/a.img'/><target dev='vda' bus='virtio'/>")));
    expect(
      argv(doc(disk("<source file='/i/a.img' startupPolicy='optional'/><target dev='vda' bus='virtio'/>"))),
    ).to.deep.equal(plain);
    expect(
      refusal(doc(disk("<source file='/i/a.img' startupPolicy='requisite'/><target dev='vda' bus='virtio'/>"))).message,
    ).to.match(/only for cdrom or floppy/);
    expect(
      refusal(doc(disk("<source file='/i/a.img' startupPolicy='maybe'/><target dev='vda' bus='virtio'/>"))).path,
    ).to.equal("/domain/devices/disk[1]/source/@startupPolicy");
    const net = refusal(
      doc(
        disk(
          "<source protocol='nbd' name='x' startupPolicy='optional'><host name='h'/></source><target dev='vda' bus='virtio'/>",
          "network",
        ),
      ),
    );
    expect(net.path).to.equal("/domain/devices/disk[1]/source/@startupPolicy");
  });

  it("the backend's pass: an optional missing disk is left out, an optional missing CD-ROM starts empty, others stay", () => {
    const d = two();
    const changed = applyStartupPolicies(d, (f) => f === "/i/here.img");
    expect(changed).to.have.length(2);
    const a = argv(d);
    const files = values(a, "-blockdev").map((v) => String((JSON.parse(v) as { filename?: string }).filename));
    expect(files).to.include("/i/here.img");
    expect(files).to.include("/i/gone2.img"); // mandatory: QEMU names the missing file at start
    expect(files).not.to.include("/i/gone.img");
    expect(files).not.to.include("/i/gone.iso");
    expect(devices(d).find((x) => x.driver === "ide-cd")).to.not.have.property("drive");
  });
});
