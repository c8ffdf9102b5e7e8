/**
 * Fuzz-style type checks of every input of Domain, DomainDisk and DomainFleet: each input is given
 * each wrong JSON type (null, number, string, boolean, array, object, nested nulls...) and must
 * fail per property, naming that property and the fix, never with a thrown TypeError or a stack
 * trace. No lab: the Domain's `check` runs against a QEMU-direct connection whose emulator is a
 * fake script (the probe only asks for its version), the fleet against an empty QEMU-direct state.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as impl from "../../provider/dynamic/impl";
import * as disk from "../../provider/dynamic/disk";
import { DOMAIN_INPUT_TYPES, InputFailure, validateInputs } from "../../provider/desired/inputs";
import { DomainArgs, DomainDiskArgs, DomainInterfaceArgs } from "../../sdk/domain";
import { DomainDiskResourceArgs } from "../../sdk/disk";
import { DomainFleet, DomainFleetArgs, FLEET_ARG_TYPES, MAX_FLEET_MEMBERS, validateFleetArgs } from "../../sdk/fleet";
import { usePulumiMocks } from "../support/pulumi-mocks";

// Compile-time: every SDK argument has a runtime type entry (a new input must be added here too).
type Covered<A, B> = [Exclude<keyof A, keyof B>] extends [never] ? true : false;
const domainArgsCovered: Covered<DomainArgs, typeof DOMAIN_INPUT_TYPES> = true;
const diskArgsCovered: Covered<DomainDiskResourceArgs, typeof disk.DISK_INPUT_TYPES> = true;
const fleetArgsCovered: Covered<DomainFleetArgs, typeof FLEET_ARG_TYPES> = true;
void [domainArgsCovered, diskArgsCovered, fleetArgsCovered];

type JsonKind = "null" | "number" | "string" | "boolean" | "array" | "object";

/** One value of each JSON type, and some nested nulls. */
const WRONG: [JsonKind, unknown][] = [
  ["null", null],
  ["number", 42],
  ["number", -1.5],
  ["string", "oops"],
  ["string", ""],
  ["boolean", true],
  ["boolean", false],
  ["array", []],
  ["array", [null]],
  ["array", ["12"]],
  ["object", {}],
  ["object", { x: null }],
];

/** Values of every JSON kind but the ones allowed. */
function wrongValues(allowed: JsonKind[]): unknown[] {
  return WRONG.filter(([k]) => !allowed.includes(k)).map(([, v]) => v);
}

function names(property: string, key: string): boolean {
  return property === key || property.startsWith(`${key}.`) || property.startsWith(`${key}[`);
}

function expectNamed(failures: readonly InputFailure[], key: string, what: string): void {
  const f = failures.find((x) => names(x.property, key));
  expect(f, `${what}: a failure naming ${key}; got ${JSON.stringify(failures)}`).to.not.equal(undefined);
  expect(f!.reason.startsWith(`${f!.property}: `), `${what}: names the property first: ${f!.reason}`).to.equal(true);
  expect(f!.reason, what).to.match(/fix: /);
}

const DISK_FIELDS: Record<keyof DomainDiskArgs, JsonKind> = {
  file: "string",
  format: "string",
  target: "string",
  bus: "string",
  device: "string",
  readonly: "boolean",
  serial: "string",
  bootOrder: "number",
};
const NIC_FIELDS: Record<keyof DomainInterfaceArgs, JsonKind> = {
  type: "string",
  source: "string",
  mac: "string",
  model: "string",
};
const GOOD_DISK = {
  file: "/var/lib/libvirt/images/fuzz.qcow2",
  format: "qcow2",
  target: "vda",
  bus: "virtio",
  device: "disk",
  readonly: false,
  serial: "fuzz-1",
  bootOrder: 1,
};
const GOOD_NIC = { type: "bridge", source: "br0", mac: "52:54:00:00:00:01", model: "virtio" };

/** Wrong values for one Domain input: the other JSON types, then nested wrong values. */
function domainCases(key: string): unknown[] {
  const kind = DOMAIN_INPUT_TYPES[key as keyof typeof DOMAIN_INPUT_TYPES] as JsonKind;
  const out = wrongValues([kind]);
  const elementCases = (good: Record<string, unknown>, fields: Record<string, JsonKind>) => {
    const els: unknown[] = [null, 42, "x", true, [], [null]];
    for (const [field, k] of Object.entries(fields))
      for (const v of wrongValues([k])) els.push({ ...good, [field]: v });
    return els.map((e) => [e]);
  };
  if (key === "disks") out.push(...elementCases(GOOD_DISK, DISK_FIELDS), [GOOD_DISK, null]);
  if (key === "interfaces") out.push(...elementCases(GOOD_NIC, NIC_FIELDS), [GOOD_NIC, null]);
  if (key === "connection") out.push(...wrongValues(["string"]).map((uri) => ({ uri })));
  return out;
}

describe("every input, every wrong JSON type: a per-property failure, never a throw", function () {
  this.timeout(60000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-fuzz-"));
  const fakeQemu = path.join(tmp, "fake-qemu");
  fs.writeFileSync(fakeQemu, "#!/bin/sh\necho 'QEMU emulator version 9.2.0'\n", { mode: 0o755 });
  const uri = `qemu-direct://${tmp}/state?emulator=${fakeQemu}`;
  const base: Record<string, unknown> = {
    name: "fuzz-1",
    hwuuid: "5d5b0f1d-128b-4517-8e65-b258a8734c1d",
    xml: "<domain type='qemu'><name>x</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os><devices><serial type='pty'/></devices></domain>",
    memory: "64 MiB",
    vcpus: 1,
    machine: "pc",
    firmware: "bios",
    disks: [GOOD_DISK],
    interfaces: [GOOD_NIC],
    connection: { uri },
    running: false,
    shutdownTimeoutSeconds: 0,
    restartOnChange: false,
    adopt: false,
    hwuuidMode: "auto",
    replaceTrigger: "t1",
    ownerId: "project/stack/fuzz-1",
  };
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  describe("Domain", () => {
    it("the base sets every input and is valid, through the whole check", async () => {
      expect(Object.keys(base).sort()).to.deep.equal(Object.keys(DOMAIN_INPUT_TYPES).sort());
      expect(validateInputs(base as never)).to.deep.equal([]);
      const c = await impl.check({}, base);
      expect(c.failures).to.deep.equal([]);
    });
    for (const key of Object.keys(DOMAIN_INPUT_TYPES)) {
      it(`${key}: every wrong type`, async () => {
        for (const v of domainCases(key)) {
          const what = `${key}: ${JSON.stringify(v)}`;
          const news = { ...base, [key]: v };
          expectNamed(validateInputs(news as never), key, `validateInputs ${what}`);
          const c = await impl.check({}, news);
          expectNamed(c.failures, key, `check ${what}`);
        }
      });
    }
    it('the issue\'s cases: disks "oops", disks [null], interfaces [null], xml 42', async () => {
      for (const [key, v, property] of [
        ["disks", "oops", "disks"],
        ["disks", [null], "disks[0]"],
        ["interfaces", [null], "interfaces[0]"],
        ["xml", 42, "xml"],
      ] as const) {
        const c = await impl.check({}, { ...base, [key]: v });
        expect(
          c.failures.map((f) => f.property),
          `${key}: ${JSON.stringify(v)}`,
        ).to.include(property);
      }
    });
    it("names like __proto__, constructor, prototype: a name, or an element name in xml, never a parser [SECURITY] error", async () => {
      for (const name of ["constructor", "prototype", "toString", "valueOf", "hasOwnProperty"]) {
        const c = await impl.check({}, { ...base, name });
        expect(c.failures, name).to.deep.equal([]);
        expect(String(c.inputs.xml)).to.contain(`<name>${name}</name>`);
      }
      const c = await impl.check({}, { ...base, name: "__proto__" });
      expect(c.failures.map((f) => f.property)).to.deep.equal(["name"]);
      const xml =
        "<domain type='qemu'><name>x</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os><metadata><__proto__ xmlns='urn:x' constructor='1'><prototype/><toString/></__proto__></metadata><devices><serial type='pty'/></devices></domain>";
      const m = await impl.check({}, { ...base, xml });
      expect(m.failures).to.deep.equal([]);
      expect(String(m.inputs.xml))
        .to.contain("<__proto__ xmlns='urn:x' constructor='1'>")
        .and.contain("<prototype/>")
        .and.contain("<toString/>");
    });
    it("caps the typed lists, saying the cap", () => {
      const many = Array.from({ length: 257 }, (_, n) => ({
        file: `/i/${n}.img`,
        target: `vd${String.fromCharCode(97 + (n % 26))}${String.fromCharCode(97 + Math.floor(n / 26))}`,
      }));
      expect(
        validateInputs({ ...base, disks: many } as never)
          .map((f) => f.reason)
          .join(),
      ).to.match(/disks: has 257 disks, more than 256/);
      const nics = Array.from({ length: 257 }, () => ({ type: "user" }));
      expect(
        validateInputs({ ...base, interfaces: nics } as never)
          .map((f) => f.reason)
          .join(),
      ).to.match(/interfaces: has 257 interfaces, more than 256/);
      const d27 = Array.from({ length: 27 }, (_, n) => ({ file: `/i/${n}.img` }));
      expect(validateInputs({ ...base, disks: d27 } as never).map((f) => f.property)).to.deep.equal([
        "disks[26].target",
      ]);
    });
  });

  describe("DomainDisk", () => {
    const src = path.join(tmp, "template.qcow2");
    fs.writeFileSync(src, "");
    const good = {
      path: path.join(tmp, "member.qcow2"),
      source: src,
      sourceFormat: "qcow2",
      mode: "overlay",
      replaceTrigger: "digest",
    };
    // The volume inputs: no I/O happens while any input has a wrong type, so no libvirt is needed.
    const volume = { connection: { uri: "qemu+ssh://lvd-fuzz.invalid/system" }, pool: "p", volume: "m.qcow2" };
    const VOLUME_KEYS = Object.keys(volume);
    // A seed's own input, on the volume base with mode "seed".
    const seed = { mode: "seed", from: { uri: "qemu+ssh://lvd-fuzz-from.invalid/system" } };
    it("the base sets every input and is valid (the file base; the volume inputs on their own base)", async () => {
      expect([...Object.keys(good), ...VOLUME_KEYS, "from"].sort()).to.deep.equal(
        Object.keys(disk.DISK_INPUT_TYPES).sort(),
      );
      expect((await disk.check({}, good)).failures).to.deep.equal([]);
    });
    for (const key of Object.keys(disk.DISK_INPUT_TYPES)) {
      it(`${key}: every wrong type`, async () => {
        const base =
          key === "from" ? { ...good, ...volume, ...seed } : VOLUME_KEYS.includes(key) ? { ...good, ...volume } : good;
        for (const v of wrongValues([disk.DISK_INPUT_TYPES[key as keyof typeof disk.DISK_INPUT_TYPES]])) {
          const c = await disk.check({}, { ...base, [key]: v });
          expectNamed(c.failures, key, `${key}: ${JSON.stringify(v)}`);
        }
      });
    }
    it("pool and volume without connection: each a failure naming the fix", async () => {
      const c = await disk.check({}, { ...good, pool: "p", volume: "v.qcow2" });
      expect(c.failures.map((f) => f.property)).to.deep.equal(["pool", "volume"]);
      expect(c.failures[0]!.reason).to.match(/only for a storage volume.*fix: add connection/);
    });
    it("a QEMU-direct connection, a volume name with a slash: failures naming the fix", async () => {
      const c = await disk.check({}, { ...good, connection: { uri: "qemu-direct:///tmp/x" }, volume: "a/b" });
      expect(c.failures.map((f) => f.property)).to.deep.equal(["connection.uri", "volume"]);
      for (const f of c.failures) expect(f.reason).to.match(/fix: /);
    });
    it('sourceFormat ["qcow2"] is not "qcow2"', async () => {
      expect(
        (await disk.check({}, { ...good, sourceFormat: ["qcow2"] })).failures.map((f) => f.property),
      ).to.deep.equal(["sourceFormat"]);
    });
  });

  describe("DomainFleet", () => {
    const state = path.join(tmp, "fleet-state");
    const good: Record<string, unknown> = {
      template: { name: "tmpl" },
      hosts: [{ name: "a", uri: `qemu-direct://${state}` }],
      placement: { "1": "a" },
      members: 3,
      namePattern: "fz-{key}",
      hwuuidPolicy: "derive",
      diskMode: "overlay",
      imageDir: "/var/lib/libvirt/images",
      definePools: false,
      seedImages: false,
      running: true,
      shutdownTimeoutSeconds: 0,
    };
    usePulumiMocks();
    /** The constructor's error; it must be a FleetPlanError (a ResourceError without a stack trace). */
    function construct(args: Record<string, unknown>): Error {
      try {
        new DomainFleet("fz", args as unknown as DomainFleetArgs);
      } catch (e) {
        expect((e as Error).constructor.name, (e as Error).stack).to.equal("FleetPlanError");
        return e as Error;
      }
      throw new Error("expected the fleet to fail");
    }
    const FLEET_KINDS: Record<string, JsonKind[]> = {
      template: ["object"],
      hosts: ["array"],
      placement: ["object"],
      members: ["number", "array"],
      namePattern: ["string"],
      hwuuidPolicy: ["string", "object"],
      diskMode: ["string"],
      imageDir: ["string"],
      definePools: ["boolean"],
      seedImages: ["boolean"],
      running: ["boolean"],
      shutdownTimeoutSeconds: ["number"],
    };
    function fleetCases(key: string): unknown[] {
      const kinds = FLEET_KINDS[key];
      if (!kinds) throw new Error(`FLEET_KINDS has no JSON kinds for the fleet argument ${key}; add them`);
      const out = wrongValues(kinds);
      if (key === "template")
        out.push({ name: null }, { name: 42 }, { name: ["t"] }, { name: "t", uri: 42 }, { name: "t", uri: null }, {});
      if (key === "members") out.push([null], [1, 2], [{}], "12", "3");
      if (key === "hosts") out.push([], [null], [{ name: "a" }], [{ name: "", uri: "qemu:///system" }], [{ uri: 1 }]);
      if (key === "placement") out.push({ "1": 42 }, { "1": "z" });
      if (key === "hwuuidPolicy")
        out.push(
          "oops",
          { explicit: null },
          { explicit: "x" },
          { explicit: { "1": 42 } },
          { explicit: { "1": null } },
          { other: {} },
        );
      if (key === "diskMode") out.push("oops");
      return out;
    }
    it("the base sets every argument and is valid: it gets as far as reading the template", () => {
      expect(Object.keys(good).sort()).to.deep.equal(Object.keys(FLEET_ARG_TYPES).sort());
      expect(validateFleetArgs(good)).to.deep.equal([]);
      expect(construct(good).message).to.match(/^template\.name: cannot read the template domain "tmpl"/);
    });
    for (const key of Object.keys(FLEET_ARG_TYPES)) {
      it(`${key}: every wrong type`, () => {
        for (const v of fleetCases(key)) {
          const what = `${key}: ${JSON.stringify(v)}`;
          const args = { ...good, [key]: v };
          const f = validateFleetArgs(args);
          expect(
            f.some((x) => names(x.argument, key)),
            `${what}: ${JSON.stringify(f)}`,
          ).to.equal(true);
          const m = construct(args).message;
          expect(m, what)
            .to.match(new RegExp(`(^|- )${key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}[.\\[:]`))
            .and.match(/fix: /);
          expect(m, what).to.not.match(/cannot read the template/);
        }
      });
    }
    it('members: "12" is refused before the template is read, with the fix', () => {
      const m = construct({ ...good, members: "12" }).message;
      expect(m)
        .to.match(/^members: must be a count \(a number\) or a list of keys, not a string/)
        .and.contain("members: 12")
        .and.contain('members: ["12"]');
    });
    it("caps counts, key lists and explicit maps, saying the cap", () => {
      expect(construct({ ...good, members: MAX_FLEET_MEMBERS + 1 }).message).to.contain(
        `whole number from 0 to ${MAX_FLEET_MEMBERS}`,
      );
      const keys = Array.from({ length: MAX_FLEET_MEMBERS + 1 }, (_, i) => `k${i}`);
      expect(construct({ ...good, members: keys }).message).to.contain(`at most ${MAX_FLEET_MEMBERS} members`);
      const explicit = Object.fromEntries(keys.map((k) => [k, "5d5b0f1d-128b-4517-8e65-b258a8734c1d"]));
      expect(construct({ ...good, hwuuidPolicy: { explicit } }).message).to.contain(
        `at most ${MAX_FLEET_MEMBERS} members`,
      );
    });
    it("an Output where a plain value is needed says so", () => {
      expect(construct({ ...good, members: pulumi.output(3) }).message).to.match(
        /^members: .*an Output.*known while the program runs/,
      );
    });
    it("several bad arguments are listed together", () => {
      const m = construct({ ...good, members: "12", running: "yes", template: null }).message;
      expect(m).to.match(/^fleet fz: invalid arguments:\n- template: .*\n- members: .*\n- running: /);
    });
  });
});
