/**
 * A fleet over several hosts: the placement rule (spread, stable when a host is added or removed,
 * explicit, conservative when a host is unreachable) and names, hwuuids and MACs global to the
 * fleet (checked across hosts; each host planned from its own template).
 */
import { expect } from "chai";
import { crossHostRefusals, HostObservation, placeMembers, PlacedMember } from "../../provider/fleet/placement";
import { FleetOptions, planFleet } from "../../provider/fleet/plan";
import { validateFleetArgs } from "../../sdk/fleet";

const up = (...keys: string[]): HostObservation => ({ reachable: true, members: new Set(keys) });
const down: HostObservation = { reachable: false, error: "Failed to connect socket" };
const keys = (n: number) => Array.from({ length: n }, (_, i) => String(i + 1));

/** Host name -> its member keys, from a placement. */
function byHost(hostOf: Record<string, string>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, h] of Object.entries(hostOf)) (out[h] ??= []).push(k);
  return out;
}

/** What the hosts would hold after applying a placement (every member created where placed). */
function after(hostOf: Record<string, string>, hosts: string[]): Record<string, HostObservation> {
  const b = byHost(hostOf);
  return Object.fromEntries(hosts.map((h) => [h, up(...(b[h] ?? []))]));
}

describe("fleet placement over several hosts", () => {
  it("spreads new members to the host with the fewest, ties by the order of hosts", () => {
    const p = placeMembers({ keys: keys(6), hosts: ["a", "b"] });
    expect(p.hostOf).to.deep.equal({ "1": "a", "2": "b", "3": "a", "4": "b", "5": "a", "6": "b" });
    expect(Object.values(p.reason)).to.deep.equal(Array(6).fill("spread"));
    expect(placeMembers({ keys: keys(5), hosts: ["b", "a", "c"] }).hostOf).to.deep.equal({
      "1": "b",
      "2": "a",
      "3": "c",
      "4": "b",
      "5": "a",
    });
  });

  it("scale 2 -> 6 -> 3: members stay where they were placed; 3/3 at 6", () => {
    const hosts = ["a", "b"];
    const two = placeMembers({ keys: keys(2), hosts });
    const six = placeMembers({ keys: keys(6), hosts, observed: after(two.hostOf, hosts) });
    for (const k of keys(2)) expect(six.hostOf[k], k).to.equal(two.hostOf[k]);
    expect(byHost(six.hostOf).a).to.have.length(3);
    expect(byHost(six.hostOf).b).to.have.length(3);
    const three = placeMembers({ keys: keys(3), hosts, observed: after(six.hostOf, hosts) });
    for (const k of keys(3)) expect(three.hostOf[k], k).to.equal(six.hostOf[k]);
  });

  it("adding a host moves no member; new members go to it first (it has the fewest)", () => {
    const before = { a: up("1", "3", "5"), b: up("2", "4", "6") };
    const p = placeMembers({ keys: keys(8), hosts: ["a", "b", "c"], observed: before });
    expect(byHost(p.hostOf)).to.deep.equal({ a: ["1", "3", "5"], b: ["2", "4", "6"], c: ["7", "8"] });
    expect(p.reason["1"]).to.equal("stays");
  });

  it("removing a host moves only the members that were on it, spread over the rest", () => {
    const before = { a: up("1", "4"), b: up("2", "5"), c: up("3", "6") };
    const p = placeMembers({ keys: keys(6), hosts: ["a", "c"], observed: { a: before.a, c: before.c } });
    expect(p.hostOf["1"]).to.equal("a");
    expect(p.hostOf["4"]).to.equal("a");
    expect(p.hostOf["3"]).to.equal("c");
    expect(p.hostOf["6"]).to.equal("c");
    expect([p.hostOf["2"], p.hostOf["5"]].sort()).to.deep.equal(["a", "c"]);
  });

  it("a member is placed where it is found even when that host has more members (stability over balance)", () => {
    const p = placeMembers({ keys: keys(4), hosts: ["a", "b"], observed: { a: up("1", "2", "3"), b: up() } });
    expect(byHost(p.hostOf)).to.deep.equal({ a: ["1", "2", "3"], b: ["4"] });
  });

  it("explicit placement comes first and counts toward the spread; a member found on two hosts stays on the first", () => {
    const p = placeMembers({
      keys: keys(4),
      hosts: ["a", "b"],
      placement: { "1": "b", "3": "b" },
      observed: { a: up("3", "4"), b: up("4") },
    });
    expect(p.hostOf).to.deep.equal({ "1": "b", "2": "a", "3": "b", "4": "a" });
    expect(p.reason).to.deep.equal({ "1": "explicit", "2": "spread", "3": "explicit", "4": "stays" });
    expect(p.refusals).to.deep.equal([]);
  });

  it("explicit placement naming an unknown host or key is refused", () => {
    const p = placeMembers({ keys: keys(2), hosts: ["a", "b"], placement: { "1": "z", "9": "a" } });
    expect(p.refusals.map((r) => r.path).sort()).to.deep.equal(["placement.1", "placement.9"]);
    expect(p.refusals.find((r) => r.path === "placement.1")!.reason).to.contain('"z" is not one of the hosts (a, b)');
  });

  it("an unreachable host: members found elsewhere stay; every other member (new ones too) goes to the unreachable host, never to a reachable one", () => {
    const p = placeMembers({ keys: keys(6), hosts: ["a", "b"], observed: { a: up("1", "3"), b: down } });
    expect(byHost(p.hostOf)).to.deep.equal({ a: ["1", "3"], b: ["2", "4", "5", "6"] });
    expect(p.reason["2"]).to.equal("unreachable");
    // Several unreachable hosts: spread over them only.
    const q = placeMembers({ keys: keys(4), hosts: ["a", "b", "c"], observed: { a: up(), b: down, c: down } });
    expect(byHost(q.hostOf)).to.deep.equal({ b: ["1", "3"], c: ["2", "4"] });
  });
});

const TEMPLATE = (emulator: string, image: string) => `<domain type='qemu'>
  <name>tmpl</name>
  <uuid>33721861-ccee-4dc2-858c-5f1e4629771f</uuid>
  <memory unit='KiB'>65536</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>${emulator}</emulator>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${image}'/><target dev='vda' bus='virtio'/></disk>
    <interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/></interface>
  </devices>
</domain>`;

describe("fleet identities are global across hosts", () => {
  const common: Omit<FleetOptions, "templateXml" | "keys"> = {
    fleetName: "web",
    project: "infra",
    stack: "prod",
    hwuuidPolicy: { kind: "derive" },
    namePattern: "{fleet}-{key}",
    fleetKeys: keys(4),
  };
  const a = planFleet({ ...common, templateXml: TEMPLATE("/usr/bin/qemu-a", "/img/a.qcow2"), keys: ["1", "3"] });
  const b = planFleet({ ...common, templateXml: TEMPLATE("/usr/bin/qemu-b", "/img/b.qcow2"), keys: ["2", "4"] });

  it("each host is planned from its own template; {index} and the policies are over the whole fleet", () => {
    expect(a.refusals).to.deep.equal([]);
    expect(b.refusals).to.deep.equal([]);
    expect(a.members.map((m) => m.index)).to.deep.equal([1, 3]);
    expect(b.members.map((m) => m.index)).to.deep.equal([2, 4]);
    expect(a.members[0]!.xml).to.contain("/usr/bin/qemu-a").and.contain("/img/web-1-vda.qcow2");
    expect(b.members[0]!.disks[0]!.source).to.equal("/img/b.qcow2");
    const all = [...a.members, ...b.members];
    expect(new Set(all.map((m) => m.name)).size).to.equal(4);
    expect(new Set(all.map((m) => m.hwuuid)).size).to.equal(4);
    expect(new Set(all.flatMap((m) => m.macs)).size).to.equal(4);
    const placed = [
      ...a.members.map((member) => ({ host: "a", member })),
      ...b.members.map((member) => ({ host: "b", member })),
    ];
    expect(crossHostRefusals(placed)).to.deep.equal([]);
  });

  it("explicit hwuuids for keys on another host are not refused; keep with members on two hosts is", () => {
    const explicit = {
      "1": "5d5b0f1d-128b-4517-8e65-b258a8734c1d",
      "2": "6d5b0f1d-128b-4517-8e65-b258a8734c1d",
    };
    const p = planFleet({
      ...common,
      fleetKeys: ["1", "2"],
      hwuuidPolicy: { kind: "explicit", hwuuids: explicit },
      templateXml: TEMPLATE("/q", "/img/a.qcow2"),
      keys: ["1"],
    });
    expect(p.refusals).to.deep.equal([]);
    const k = planFleet({
      ...common,
      fleetKeys: ["1", "2"],
      hwuuidPolicy: { kind: "keep" },
      templateXml: TEMPLATE("/q", "/img/a.qcow2"),
      keys: ["1"],
    });
    expect(k.refusals.map((r) => r.path)).to.deep.equal(["hwuuidPolicy"]);
  });

  it("two members on different hosts sharing a name, hwuuid or MAC are refused, naming both members and hosts", () => {
    const m = (key: string, name: string, hwuuid: string, mac: string): PlacedMember["member"] => ({
      key,
      name,
      hwuuid,
      macs: [mac],
    });
    const H = "5d5b0f1d-128b-4517-8e65-b258a8734c1d";
    const r = crossHostRefusals([
      { host: "a", member: m("1", "web", H, "52:54:00:00:00:01") },
      { host: "b", member: m("2", "web", H.toUpperCase(), "52:54:00:00:00:01") },
    ]);
    expect(r.map((x) => x.path)).to.deep.equal(["namePattern", "hwuuidPolicy", "template interface MAC"]);
    for (const x of r) expect(x.reason).to.contain("members 1 (host a) and 2 (host b)");
    // The same pairs on one host are the planner's to report, not repeated here.
    expect(
      crossHostRefusals([
        { host: "a", member: m("1", "web", H, "52:54:00:00:00:01") },
        { host: "a", member: m("2", "web", H, "52:54:00:00:00:01") },
      ]),
    ).to.deep.equal([]);
    // keep (one member): a shared hwuuid is allowed, names still are not.
    expect(
      crossHostRefusals(
        [
          { host: "a", member: m("1", "x", H, "52:54:00:00:00:01") },
          { host: "b", member: m("2", "y", H, "52:54:00:00:00:02") },
        ],
        true,
      ),
    ).to.deep.equal([]);
  });

  it("the planned names of a namePattern without {key} collide across hosts and are refused", () => {
    const x = planFleet({
      ...common,
      namePattern: "{fleet}",
      templateXml: TEMPLATE("/q", "/img/a.qcow2"),
      keys: ["1"],
    });
    const y = planFleet({
      ...common,
      namePattern: "{fleet}",
      templateXml: TEMPLATE("/q", "/img/b.qcow2"),
      keys: ["2"],
    });
    expect([...x.refusals, ...y.refusals]).to.deep.equal([]);
    const r = crossHostRefusals([
      ...x.members.map((member) => ({ host: "a", member })),
      ...y.members.map((member) => ({ host: "b", member })),
    ]);
    expect(r.map((e) => e.reason)).to.deep.equal([
      "members 1 (host a) and 2 (host b) would share the name web; names, hwuuids and MACs are global to a fleet",
    ]);
  });
});

describe("DomainFleet hosts and placement arguments", () => {
  const base = { template: { name: "t" }, members: 2 };
  const reasons = (a: unknown) => validateFleetArgs(a).map((f) => f.reason);
  it("accepts hosts with names and URIs, and placement naming them", () => {
    expect(
      validateFleetArgs({
        ...base,
        hosts: [
          { name: "a", uri: "qemu:///system" },
          { name: "b", uri: "qemu+ssh://root@hv2/system" },
        ],
        placement: { "1": "b" },
      }),
    ).to.deep.equal([]);
  });
  it("refuses a duplicate host name or URI, template.uri with hosts, placement without hosts or naming no host", () => {
    const h = [
      { name: "a", uri: "qemu:///system" },
      { name: "a", uri: "qemu:///system" },
    ];
    const r = reasons({ ...base, hosts: h });
    expect(r.join("\n"))
      .to.contain("hosts[1].name: names a host twice")
      .and.contain("hosts[1].uri: lists the URI twice");
    expect(reasons({ ...base, template: { name: "t", uri: "qemu:///system" }, hosts: [h[0]] })[0]).to.match(
      /^template\.uri: cannot be given with hosts/,
    );
    expect(reasons({ ...base, placement: { "1": "a" } })[0]).to.match(/^placement: needs hosts/);
    expect(reasons({ ...base, hosts: [h[0]], placement: { "1": "z" } })[0]).to.match(
      /^placement\.1: names no host of hosts \(a\); got "z"; fix: write one of "a"/,
    );
    expect(reasons({ ...base, hosts: [] })[0]).to.match(/^hosts: must list 1 to 64 hosts, not 0/);
  });

  it("refuses seedImages without hosts (a fleet on one host has no other host to copy from)", () => {
    expect(reasons({ ...base, seedImages: true })[0]).to.match(
      /^seedImages: needs hosts .*; got true; fix: list the hosts in hosts, or leave seedImages out/,
    );
    expect(reasons({ ...base, seedImages: false })).to.deep.equal([]);
  });
});
