/** Tables of bad inputs shared by the lab suite (provider check) and the end-to-end suite (preview). */

const H = "5d5b0f1d-128b-4517-8e65-b258a8734c1d";
const U = "33721861-ccee-4dc2-858c-5f1e4629771f";
const T = (body: string, head = "<domain type='qemu'>") =>
  `${head}<name>x</name><memory unit='MiB'>64</memory>${body}<os><type arch='x86_64'>hvm</type><smbios mode='sysinfo'/></os></domain>`;
const sysinfo = (u: string) => `<sysinfo type='smbios'><system><entry name='uuid'>${u}</entry></system></sysinfo>`;

/** [title, inputs (merged over a valid base), the property that must be named, what the message must say] */
export type BadInput = [string, Record<string, unknown>, string, RegExp];

/** The Domain table, names under `prefix`; `connection` is the lab's unless a case sets its own. */
export function domainBadInputs(prefix: string): BadInput[] {
  return (
    [
      ["malformed hwuuid", { hwuuid: "not-a-uuid" }, "hwuuid", /uuidgen/],
      ["hwuuid with 31 digits", { hwuuid: H.slice(0, -1) }, "hwuuid", /uuidgen/],
      ["all-zero hwuuid", { hwuuid: "00000000-0000-0000-0000-000000000000" }, "hwuuid", /treats as unset/],
      ["all-ff hwuuid", { hwuuid: "ffffffff-ffff-ffff-ffff-ffffffffffff" }, "hwuuid", /real UUID/],
      ["hwuuid not a string", { hwuuid: 42 }, "hwuuid", /quote/],
      ["sysinfo uuid differs from hwuuid", { hwuuid: H, xml: T(sysinfo(U)) }, "hwuuid", /sysinfo/],
      [
        "template sets <uuid>",
        { xml: T(`<uuid>${U}</uuid>`).replace("<name>x</name>", "<name>x</name>") },
        "xml",
        /remove <uuid>/,
      ],
      ["sysinfo uuid malformed", { xml: T(sysinfo("xyz")) }, "xml", /correct or remove/],
      ["template hwuuid malformed", { xml: T("<hwuuid>zz</hwuuid>") }, "xml", /malformed hwuuid element/],
      ["unknown URI scheme", { connection: { uri: "xen:///system" } }, "connection.uri", /qemu:\/\/\/system/],
      ["URI that is not a URI", { connection: { uri: "not a uri" } }, "connection.uri", /qemu:\/\/\/system/],
      [
        "unreachable daemon",
        { connection: { uri: "qemu+unix:///system?socket=/nonexistent/libvirt-sock" } },
        "connection.uri",
        /start the daemon/,
      ],
      ["name with /", { name: `${prefix}a/b` }, "name", /remove "\/"/],
      ["name with ..", { name: `${prefix}a..b` }, "name", /single/],
      ["name with a single quote", { name: `${prefix}o'brien` }, "name", /remove/],
      ["name with a double quote", { name: `${prefix}say"hi` }, "name", /remove/],
      ["name with <", { name: `${prefix}<x>` }, "name", /remove/],
      ["name with &", { name: `${prefix}a&b` }, "name", /remove/],
      ["empty name", { name: "" }, "name", /web-1/],
      ["name starting with -", { name: "-rf" }, "name", /web-1/],
      [
        "XML with a DOCTYPE and entities",
        { xml: `<!DOCTYPE d [<!ENTITY e "x">]>` + T("") },
        "xml",
        /remove the <!DOCTYPE/,
      ],
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
      // Wrong JSON types: a per-property failure, never a TypeError.
      ["disks not an array", { disks: "oops" }, "disks", /must be an array of disks, not a string/],
      ["a null disk", { disks: [null] }, "disks[0]", /must be an object, not null/],
      ["disk file not a string", { disks: [{ file: 42 }] }, "disks[0].file", /not a number/],
      ["a null interface", { interfaces: [null] }, "interfaces[0]", /must be an object, not null/],
      ["xml not a string", { xml: 42 }, "xml", /must be a string, not a number/],
      ["memory not a string", { memory: 512 }, "memory", /must be a string, not a number.*512 MiB/],
      ["running not a boolean", { running: "yes" }, "running", /true or false/],
      // What libxml2 refuses fails at preview, not at define.
      [
        "XML with a character reference XML forbids",
        { xml: T("<description>a&#1;b</description>") },
        "xml",
        /character XML 1.0 forbids/,
      ],
      ["XML with -- inside a comment", { xml: T("<!-- a -- b -->") }, "xml", /"--" inside a comment/],
      ["XML with ]]> in text", { xml: T("<description>a]]>b</description>") }, "xml", /in text/],
    ] as BadInput[]
  ).map(([t, extra, p, fix]) => [t, { name: `${prefix}bad`, ...extra }, p, fix]);
}

/** Templates the fleet table needs, defined in the lab by the test (names under the prefix). */
export function fleetTemplates(prefix: string, imageDir: string): Record<string, string> {
  const dom = (name: string, disk: string) =>
    `<domain type='qemu'><name>${prefix}${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices>${disk}<serial type='pty'/></devices></domain>`;
  return {
    tmpl: dom(
      "tmpl",
      `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${imageDir}/${prefix}tmpl.qcow2'/><target dev='vda' bus='virtio'/></disk>`,
    ),
    running: dom("running", ""),
    volume: dom(
      "volume",
      `<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/><source pool='default' volume='tmpl'/><target dev='vda' bus='virtio'/></disk>`,
    ),
    block: dom(
      "block",
      `<disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev/null'/><target dev='vda' bus='virtio'/></disk>`,
    ),
  };
}

/** The DomainFleet table: [title, args (over a valid base), the word the message must name, what it must say]. */
export function fleetBadInputs(prefix: string, uri: string): BadInput[] {
  const t = (name: string) => ({ name: `${prefix}${name}`, uri });
  const base = { template: t("tmpl"), members: 3, namePattern: `${prefix}{key}` };
  const H = "5d5b0f1d-128b-4517-8e65-b258a8734c1d";
  return (
    [
      ["fleet: template missing", { template: t("nope") }, "template.name", /cannot read the template domain/],
      [
        "fleet: template running",
        { template: t("running") },
        "template.name",
        /is running; it must be shut off.*shutdown/,
      ],
      ["fleet: keep with 3 members", { hwuuidPolicy: "keep" }, "hwuuidPolicy", /would share it/],
      [
        "fleet: explicit, a member without hwuuid",
        { hwuuidPolicy: { explicit: { "1": H, "2": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee" } } },
        "hwuuidPolicy.hwuuids.3",
        /no hwuuid given for member 3/,
      ],
      [
        "fleet: explicit, a malformed hwuuid",
        { members: ["a"], hwuuidPolicy: { explicit: { a: "nope" } } },
        "hwuuidPolicy.hwuuids.a",
        /not a usable UUID/,
      ],
      [
        "fleet: explicit, an all-zero hwuuid",
        { members: ["a"], hwuuidPolicy: { explicit: { a: "0".repeat(32) } } },
        "hwuuidPolicy.hwuuids.a",
        /all bytes equal/,
      ],
      [
        "fleet: explicit, one hwuuid twice",
        { members: ["a", "b"], hwuuidPolicy: { explicit: { a: H, b: H } } },
        "hwuuidPolicy",
        /would share the hwuuid/,
      ],
      [
        "fleet: explicit, an unknown key",
        { members: ["a"], hwuuidPolicy: { explicit: { a: H, zz: H } } },
        "hwuuidPolicy.hwuuids.zz",
        /no member has the key/,
      ],
      ["fleet: name pattern with /", { namePattern: `${prefix}{key}/x` }, "namePattern", /not a valid domain name/],
      ["fleet: name pattern without {key}", { namePattern: `${prefix}same` }, "namePattern", /would both be named/],
      ["fleet: a member key with /", { members: ["a/b"] }, "keys", /is not allowed/],
      ["fleet: a member key twice", { members: ["a", "a"] }, "keys", /given twice/],
      ["fleet: share a writable disk", { diskMode: "share" }, "disk[target=vda]", /several members write/],
      ["fleet: a pool volume disk", { template: t("volume") }, "disk[target=vda]", /storage API/],
      [
        "fleet: copy a raw block device",
        { template: t("block"), diskMode: "copy" },
        "disk[target=vda]",
        /raw block device/,
      ],
      ["fleet: negative member count", { members: -1 }, "members", /whole number from 0 to 1000/],
      ["fleet: fractional member count", { members: 2.5 }, "members", /whole number from 0 to 1000/],
      ["fleet: relative image directory", { imageDir: "images" }, "imageDir", /normalized absolute path/],
      // Arguments are type-checked before the template is read.
      ["fleet: members as a string", { members: "12" }, "members", /not a string.*members: 12/],
      ["fleet: too many members", { members: 1001 }, "members", /whole number from 0 to 1000/],
      [
        "fleet: too many member keys",
        { members: Array.from({ length: 1001 }, (_, i) => `k${i}`) },
        "members",
        /at most 1000 members/,
      ],
      ["fleet: a member key not a string", { members: ["a", 2] }, "members[1]", /must be a string, not a number/],
      [
        "fleet: template name not a string",
        { template: { name: 42, uri } },
        "template.name",
        /must be a domain name, not a number/,
      ],
      ["fleet: unknown hwuuid policy", { hwuuidPolicy: "random" }, "hwuuidPolicy", /"keep", "derive"/],
      ["fleet: running not a boolean", { running: "yes" }, "running", /true or false/],
    ] as BadInput[]
  ).map(([title, extra, p, re]) => [title, { ...base, ...extra }, p, re]);
}
