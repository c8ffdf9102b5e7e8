/**
 * {@link DomainFleet}: many domains cloned from one template domain, each with a new libvirt
 * uuid, name and MACs, copy-on-write disks, and a hardware UUID chosen by policy.
 */
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import * as posix from "node:path/posix";
import {
  dirsWithoutPool,
  expandName,
  FleetOptions,
  FleetPlan,
  fleetStorage,
  HwuuidPolicy,
  imagesOf,
  isLocalUri,
  planFleet,
  planSeeds,
  planVolumes,
  type SeedCandidate,
  type StorageFacts,
  volumeDisksAsFiles,
  volumeDisksOf,
} from "../provider/fleet/plan";
import { crossHostRefusals, HostObservation, placeMembers } from "../provider/fleet/placement";
import { definePoolSync, resolveStorageSync, volumePathsSync, type StorageView } from "../provider/backends/volumes";
import { isDirectUri } from "../provider/backends/qemu/direct";
import type {
  FleetHost as SharedFleetHost,
  FleetHwuuidPolicy as SharedFleetHwuuidPolicy,
  FleetInputs,
} from "../provider/dynamic/types";
import { readFleetHostSync } from "./fleet-hosts";
import { readDomainSync } from "../provider/backends/domain-backend";
import { redactSecurityInfoXml } from "../provider/xml/security";
import { brandErrorFamily, ErrorDetails, formatErrorMessage, hasBrand } from "../provider/xml/errors";
import { VirshError } from "../provider/backends/virsh/exec";
import { DirectError } from "../provider/backends/qemu/direct";
import { Domain } from "./domain";
import { DiskImage } from "./disk";

/** One host of a fleet on several hosts: `{ name, uri }`. */
export type FleetHost = SharedFleetHost;

/** How fleet members get their hardware UUID: `keep`, `derive`, or `{ explicit: { KEY: UUID } }`. */
export type FleetHwuuidPolicy = SharedFleetHwuuidPolicy;

/**
 * The inputs of a {@link DomainFleet}: the provider's {@link FleetInputs}, one type shared by the
 * SDK and the planner. Plain values: the plan is made while the program runs.
 */
export type DomainFleetArgs = FleetInputs;

/** Most members a fleet takes (a count, a key list or an explicit hwuuid map). */
export const MAX_FLEET_MEMBERS = 1000;

/** The JSON type of each {@link DomainFleetArgs} argument; {@link validateFleetArgs} checks every one. */
export const FLEET_ARG_TYPES: { readonly [K in keyof Required<DomainFleetArgs>]: string } = {
  template: "object",
  hosts: "array",
  placement: "object",
  members: "number or array",
  namePattern: "string",
  hwuuidPolicy: "string or object",
  diskMode: "string",
  imageDir: "string",
  definePools: "boolean",
  seedImages: "boolean",
  running: "boolean",
  shutdownTimeoutSeconds: "number",
};

/** One argument of a {@link DomainFleet} that cannot be used, and why. */
export interface FleetArgFailure {
  /** The argument, e.g. `members` or `template.name`. */
  readonly argument: string;
  /** `argument: what is wrong; got VALUE; fix: ...`. */
  readonly reason: string;
  /** What is wrong, alone. */
  readonly what: string;
  /** The value received, as shown in `reason`. */
  readonly got: string;
  /** How to fix it, alone. */
  readonly fix: string;
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (pulumi.Output.isInstance(v)) return "an Output (a value known only later)";
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}

function shown(v: unknown): string {
  if (pulumi.Output.isInstance(v)) return "Output";
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !pulumi.Output.isInstance(v);
}

/**
 * Checks every {@link DomainFleetArgs} argument's type and range before anything is read (the
 * template included), so that e.g. `members: "12"` fails at once, naming the argument and the fix.
 * The arguments are plain values: the plan is made while the program runs. Never throws.
 */
export function validateFleetArgs(args: unknown): FleetArgFailure[] {
  const out: FleetArgFailure[] = [];
  const bad = (argument: string, what: string, v: unknown, fix: string) =>
    out.push({ argument, reason: `${argument}: ${what}; got ${shown(v)}; fix: ${fix}`, what, got: shown(v), fix });
  const plainNote = (v: unknown) =>
    pulumi.Output.isInstance(v)
      ? " (DomainFleet arguments must be known while the program runs: pass plain values, e.g. from config.require...)"
      : "";
  if (!isObj(args)) {
    bad(
      "args",
      `must be an object, not ${typeName(args)}`,
      args,
      'write new DomainFleet("web", { template: { name: "web-template" }, members: 3 })',
    );
    return out;
  }
  const t = args.template;
  if (!isObj(t))
    bad(
      "template",
      `must be an object, not ${typeName(t)}${plainNote(t)}`,
      t,
      'write template: { name: "web-template" } (an existing, shut-off domain)',
    );
  else {
    if (typeof t.name !== "string" || t.name === "")
      bad(
        "template.name",
        `must be a domain name, not ${t.name === "" ? "empty" : typeName(t.name)}${plainNote(t.name)}`,
        t.name,
        'write template: { name: "web-template" }',
      );
    if (t.uri !== undefined && typeof t.uri !== "string")
      bad(
        "template.uri",
        `must be a libvirt URI string, not ${typeName(t.uri)}${plainNote(t.uri)}`,
        t.uri,
        'write e.g. uri: "qemu:///system", or leave it out',
      );
  }
  validateHosts(args, bad, plainNote);
  const m = args.members;
  if (typeof m === "number") {
    if (!(Number.isInteger(m) && m >= 0 && m <= MAX_FLEET_MEMBERS))
      bad(
        "members",
        `must be a whole number from 0 to ${MAX_FLEET_MEMBERS}, or a list of member keys`,
        m,
        "write e.g. members: 3",
      );
  } else if (Array.isArray(m)) {
    if (m.length > MAX_FLEET_MEMBERS)
      bad(
        "members",
        `lists ${m.length} keys; at most ${MAX_FLEET_MEMBERS} members`,
        `${m.length} keys`,
        `split the fleet, or list at most ${MAX_FLEET_MEMBERS} keys`,
      );
    else {
      const i = m.findIndex((k) => typeof k !== "string");
      if (i >= 0)
        bad(
          `members[${i}]`,
          `a member key must be a string, not ${typeName(m[i])}`,
          m[i],
          `write the key in quotes, e.g. members: ["${i + 1}"]`,
        );
    }
  } else if (typeof m === "string") {
    bad(
      "members",
      "must be a count (a number) or a list of keys, not a string (a string would be read as one key per character)",
      m,
      `write members: ${/^[0-9]+$/.test(m) ? Number(m) : 3} for a count, or members: [${JSON.stringify(m)}] for one member keyed ${JSON.stringify(m)}; from config use config.requireNumber`,
    );
  } else {
    bad(
      "members",
      `must be a count (a number) or a list of keys, not ${typeName(m)}${plainNote(m)}`,
      m,
      'write e.g. members: 3 or members: ["a", "b"]',
    );
  }
  const str = (k: "namePattern" | "imageDir", fix: string) => {
    if (args[k] !== undefined && typeof args[k] !== "string")
      bad(k, `must be a string, not ${typeName(args[k])}${plainNote(args[k])}`, args[k], fix);
  };
  str("namePattern", 'write e.g. namePattern: "{stack}-{fleet}-{key}", or leave it out');
  str("imageDir", 'write an absolute directory, e.g. imageDir: "/var/lib/libvirt/images", or leave it out');
  const p = args.hwuuidPolicy;
  if (p !== undefined && p !== "keep" && p !== "derive") {
    if (!isObj(p) || Object.keys(p).length !== 1 || !("explicit" in p)) {
      bad(
        "hwuuidPolicy",
        `must be "keep", "derive" or { explicit: { KEY: UUID, ... } }, not ${typeof p === "string" ? JSON.stringify(p) : typeName(p)}`,
        p,
        'write hwuuidPolicy: "derive", or leave it out',
      );
    } else if (!isObj(p.explicit)) {
      bad(
        "hwuuidPolicy.explicit",
        `must be an object of member key -> UUID, not ${typeName(p.explicit)}`,
        p.explicit,
        'write hwuuidPolicy: { explicit: { "1": "5d5b0f1d-128b-4517-8e65-b258a8734c1d" } }',
      );
    } else {
      const entries = Object.entries(p.explicit);
      if (entries.length > MAX_FLEET_MEMBERS)
        bad(
          "hwuuidPolicy.explicit",
          `has ${entries.length} entries; at most ${MAX_FLEET_MEMBERS} members`,
          `${entries.length} entries`,
          "give one UUID per member",
        );
      const e = entries.find(([, u]) => typeof u !== "string");
      if (e)
        bad(
          `hwuuidPolicy.explicit.${e[0]}`,
          `must be a UUID string, not ${typeName(e[1])}`,
          e[1],
          'write e.g. "5d5b0f1d-128b-4517-8e65-b258a8734c1d"',
        );
    }
  }
  if (args.diskMode !== undefined && !["overlay", "copy", "share"].includes(args.diskMode as string)) {
    bad(
      "diskMode",
      `must be "overlay", "copy" or "share", not ${typeof args.diskMode === "string" ? JSON.stringify(args.diskMode) : typeName(args.diskMode)}`,
      args.diskMode,
      'write diskMode: "overlay", or leave it out',
    );
  }
  if (args.definePools !== undefined && typeof args.definePools !== "boolean")
    bad(
      "definePools",
      `must be true or false, not ${typeName(args.definePools)}${plainNote(args.definePools)}`,
      args.definePools,
      "write definePools: true to let the fleet define a dir pool for a directory that is no pool's, or leave it out",
    );
  if (args.seedImages !== undefined && typeof args.seedImages !== "boolean")
    bad(
      "seedImages",
      `must be true or false, not ${typeName(args.seedImages)}${plainNote(args.seedImages)}`,
      args.seedImages,
      "write seedImages: true to let a fleet on several hosts copy a template image a host lacks from another host, or leave it out",
    );
  else if (args.seedImages === true && args.hosts === undefined)
    bad(
      "seedImages",
      "needs hosts (it copies a template image a host lacks from another host of the fleet)",
      args.seedImages,
      "list the hosts in hosts, or leave seedImages out",
    );
  if (args.running !== undefined && typeof args.running !== "boolean")
    bad(
      "running",
      `must be true or false, not ${typeName(args.running)}${plainNote(args.running)}`,
      args.running,
      "write running: true, or leave it out",
    );
  const s = args.shutdownTimeoutSeconds;
  if (s !== undefined && !(typeof s === "number" && Number.isFinite(s) && s >= 0 && s <= 3600)) {
    bad(
      "shutdownTimeoutSeconds",
      `must be 0 to 3600 seconds${typeof s === "number" ? "" : `, not ${typeName(s)}`}`,
      s,
      "write e.g. shutdownTimeoutSeconds: 60, or leave it out",
    );
  }
  return out;
}

/** Host names: what a member key allows. */
const HOST_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;

/** Most hosts a fleet takes. */
export const MAX_FLEET_HOSTS = 64;

/** `hosts` and `placement` of {@link validateFleetArgs}. */
function validateHosts(
  args: Record<string, unknown>,
  bad: (argument: string, what: string, v: unknown, fix: string) => void,
  plainNote: (v: unknown) => string,
): void {
  const hosts = args.hosts;
  const names = new Set<string>();
  if (hosts !== undefined) {
    if (!Array.isArray(hosts) || hosts.length === 0 || hosts.length > MAX_FLEET_HOSTS)
      bad(
        "hosts",
        Array.isArray(hosts)
          ? `must list 1 to ${MAX_FLEET_HOSTS} hosts, not ${hosts.length}`
          : `must be an array of { name, uri }, not ${typeName(hosts)}${plainNote(hosts)}`,
        hosts,
        'write hosts: [{ name: "a", uri: "qemu:///system" }, { name: "b", uri: "qemu+ssh://root@hv2/system" }], or leave it out',
      );
    else {
      const uris = new Set<string>();
      hosts.forEach((h: unknown, i) => {
        const at = `hosts[${i}]`;
        if (!isObj(h)) {
          bad(
            at,
            `must be an object { name, uri }, not ${typeName(h)}`,
            h,
            'write { name: "a", uri: "qemu:///system" }',
          );
          return;
        }
        if (typeof h.name !== "string" || !HOST_NAME_RE.test(h.name))
          bad(
            `${at}.name`,
            `must be 1-32 letters, digits, '_' or '-'${typeof h.name === "string" ? "" : `, not ${typeName(h.name)}`}`,
            h.name,
            'write e.g. name: "hv1"',
          );
        else if (names.has(h.name)) bad(`${at}.name`, `names a host twice`, h.name, "give every host its own name");
        else names.add(h.name);
        if (typeof h.uri !== "string" || h.uri === "")
          bad(
            `${at}.uri`,
            `must be a libvirt URI string, not ${h.uri === "" ? "empty" : typeName(h.uri)}`,
            h.uri,
            'write e.g. uri: "qemu+ssh://root@hv2/system"',
          );
        else if (uris.has(h.uri))
          bad(`${at}.uri`, `lists the URI twice (one host, two names)`, h.uri, "list every host once");
        else uris.add(h.uri);
      });
    }
    const t = args.template;
    if (isObj(t) && t.uri !== undefined)
      bad(
        "template.uri",
        "cannot be given with hosts (the template is read on every host)",
        t.uri,
        "leave template.uri out and list the hosts in hosts",
      );
  }
  const p = args.placement;
  if (p === undefined) return;
  if (!isObj(p))
    bad(
      "placement",
      `must be an object of member key -> host name, not ${typeName(p)}${plainNote(p)}`,
      p,
      'write placement: { "1": "a" }, or leave it out',
    );
  else if (hosts === undefined)
    bad(
      "placement",
      "needs hosts (it names one of them per member)",
      p,
      "list the hosts in hosts, or leave placement out",
    );
  else {
    const e = Object.entries(p).find(([, h]) => typeof h !== "string" || (names.size > 0 && !names.has(h)));
    if (e)
      bad(
        `placement.${e[0]}`,
        typeof e[1] === "string"
          ? `names no host of hosts (${[...names].join(", ")})`
          : `must be a host name, not ${typeName(e[1])}`,
        e[1],
        `write one of ${[...names].map((n) => JSON.stringify(n)).join(", ") || "the hosts' names"}`,
      );
  }
}

const FLEET_PLAN_BRAND = "__pulumiLibvirtDomainFleetPlanError";

/**
 * A refusal to plan the fleet, shown at preview as its message alone (no stack trace). It extends
 * `pulumi.ResourceError` (what Pulumi prints without a stack) and is branded into the
 * `LibvirtDomainError` family ({@link brandErrorFamily}): the same fields (reason, path, value,
 * allowed, fix), `LibvirtDomainError.isInstance` is true for it, and the message is in the one
 * format (several problems: one a line, each in that format).
 */
export class FleetPlanError extends pulumi.ResourceError implements ErrorDetails {
  /** The bare reason, without path, value or fix. */
  public readonly reason: string;
  /** The argument or template part it is about, or `fleet NAME` for several. */
  public readonly path: string;
  /** The value received, if any. */
  public readonly value?: string;
  /** What is allowed. */
  public readonly allowed?: string;
  /** How to fix it. */
  public readonly fix: string;

  /**
   * @param reason the bare reason
   * @param details where, the value, what is allowed and how to fix it
   * @param resource the fleet
   * @param message the full message, when it lists several problems
   */
  constructor(
    reason: string,
    details: ErrorDetails & { readonly fix: string },
    resource: pulumi.Resource,
    message?: string,
  ) {
    super(message ?? formatErrorMessage(reason, details), resource, true);
    this.reason = reason;
    this.path = details.path;
    this.value = details.value;
    this.allowed = details.allowed;
    this.fix = details.fix;
    brandErrorFamily(this, FLEET_PLAN_BRAND);
  }

  /** True for any {@link FleetPlanError}, whichever copy of this module made it. */
  public static override isInstance(e: unknown): e is FleetPlanError {
    return hasBrand(e, FLEET_PLAN_BRAND);
  }
}

/**
 * {@link DomainFleet} clones a shut-off template into members. Members are created in parallel;
 * a template change re-creates them (new uuid), each keeping its hwuuid.
 *
 * Where the members' images are made. On a remote URI (anything but a local one: `qemu+ssh://`,
 * `qemu+tcp://`, `qemu://HOST/`...) always through libvirt's storage API, over the same
 * connection: each writable disk becomes a volume of the pool of the template image's directory
 * (or of `imageDir`), an overlay a qcow2 volume backed by the template's volume, a copy a cloned
 * volume, and the member XML names it by its path in the pool (a `file` disk). A template disk
 * that is no pool's volume is refused at preview, naming the disk, the directory and the
 * `virsh pool-define-as` fix, unless `definePools: true` (then the fleet defines, starts and
 * autostarts a `dir` pool for the directory, says so in the log, and leaves it at destroy). On a
 * local URI (`qemu:///system`, `qemu+unix://`) the same happens when every template image it
 * copies or overlays is a pool volume and every members' directory a running pool's; otherwise
 * the images are files made on this machine, as before, and QEMU-direct always uses files. A
 * template disk of `type='volume'` is resolved to its path with `virsh vol-path`. UEFI: an
 * `<nvram template>` makes each member's own NVRAM at first start (libvirt does it, wherever it
 * is); an NVRAM file to copy is copied as a volume too (or refused the same way).
 *
 * A host of several (`hosts`) whose own template names an image that host lacks (in a running
 * pool's directory, but no volume of it) is refused at preview, naming the host, the image, the
 * host that has it and the fix, unless `seedImages: true`: then one seed DiskImage per missing
 * image copies it once from the first host in `hosts` order whose template has an image of that
 * file name (`vol-download` there, `vol-upload` here, progress in the output), as a volume
 * `lvd-seed-DIGEST-FILE` of that pool; that host's member images are made from the seed, after
 * it, and destroy removes it after them (see {@link FleetInputs.seedImages}).
 *
 * @example
 * ```ts
 * import { DomainFleet } from "pulumi-libvirt-domain";
 *
 * const fleet = new DomainFleet("web", {
 *   template: { name: "web-template" }, // an existing, shut-off domain
 *   members: 3, // then 5, then 2: only those members change
 *   hwuuidPolicy: "derive", // each member its own stable guest UUID, never the template's
 *   diskMode: "overlay", // qcow2 overlays of the template's disks
 * });
 * export const guestUuids = Object.values(fleet.members).map((d) => d.guestUuid);
 * ```
 */
export class DomainFleet extends pulumi.ComponentResource {
  /** The members' Domains, by key. */
  public readonly members: Record<string, Domain>;
  /**
   * The plan (names, hwuuids, MACs, disks). Member XML here has security info (a graphics
   * password from the template) replaced by `[redacted]`: a program may export the plan, and
   * outputs are not secret. The members' Domains get the real XML, as secrets.
   */
  public readonly plan: FleetPlan;
  /** Member name -> guest-visible UUID. */
  public readonly hwuuids: Record<string, string | undefined>;
  /** Member key -> the name of its host (`hosts`), or `"default"` for a fleet on one host (no `hosts`). */
  public readonly placement: Record<string, string>;

  /**
   * Plans the fleet from its template (read now, while the program runs) and declares a Domain
   * (and its disk images) per member. Throws a {@link FleetPlanError} when an argument is wrong,
   * the template cannot be read or is running, or the plan has refusals.
   * @param name the fleet's name (`{fleet}` in `namePattern`)
   * @param args the template, the members and how they are made
   * @param opts Pulumi options of the component
   */
  constructor(name: string, args: DomainFleetArgs, opts?: pulumi.ComponentResourceOptions) {
    super("libvirt-domain:index:DomainFleet", name, {}, opts);
    // Every argument is checked before anything is read: a bad one fails alone and at once.
    const problems = validateFleetArgs(args);
    const [first] = problems;
    if (first && problems.length === 1)
      throw new FleetPlanError(
        first.what,
        { path: first.argument, value: first.got, fix: first.fix },
        this,
        first.reason,
      );
    if (problems.length)
      throw new FleetPlanError(
        "invalid arguments",
        { path: `fleet ${name}`, fix: "correct each argument listed, as its own fix says" },
        this,
        `fleet ${name}: invalid arguments:\n${problems.map((p) => `- ${p.reason}`).join("\n")}`,
      );
    const keys =
      typeof args.members === "number"
        ? Array.from({ length: args.members }, (_, i) => String(i + 1))
        : [...args.members];
    const policy = args.hwuuidPolicy ?? "derive";
    const common = {
      fleetName: name,
      project: pulumi.getProject(),
      stack: pulumi.getStack(),
      namePattern: args.namePattern,
      hwuuidPolicy: (policy === "keep"
        ? { kind: "keep" }
        : policy === "derive"
          ? { kind: "derive" }
          : { kind: "explicit", hwuuids: policy.explicit }) satisfies HwuuidPolicy,
      diskMode: args.diskMode,
      imageDir: args.imageDir,
    };
    let parts: HostPart[];
    let plan: FleetPlan;
    if (args.hosts === undefined) {
      const uri = args.template.uri ?? new pulumi.Config("libvirt").get("uri") ?? "qemu:///system";
      const templateXml = withVolumeDisksAsFiles(name, uri, readShutOffTemplate(uri, args.template.name, this), this);
      plan = withStorage(name, uri, args, this, planFleet({ ...common, templateXml, keys }));
      parts = [{ uri, plan, reachable: true }];
      this.placement = Object.fromEntries(keys.map((k) => [k, SINGLE_HOST]));
    } else {
      const spread = planOnHosts(name, args.hosts, args.template.name, keys, args.placement, common, this, {
        template: (uri, xml) => withVolumeDisksAsFiles(name, uri, xml, this),
        storage: (uri, p, seeding) => withStorage(name, uri, args, this, p, seeding),
      });
      ({ parts, plan } = spread);
      this.placement = spread.hostOf;
    }
    this.plan = { ...plan, members: plan.members.map((m) => ({ ...m, xml: redactSecurityInfoXml(m.xml) })) };
    if (plan.refusals.length) {
      const lines = plan.refusals.map(
        (r) => `- ${r.key !== undefined ? `member ${r.key}: ` : ""}${r.path}: ${r.reason}`,
      );
      const fix = "change the template domain, or the fleet's arguments, where each line says";
      throw new FleetPlanError(
        `cannot be planned from template ${args.template.name}`,
        { path: `fleet ${name}`, fix },
        this,
        `fleet ${name} cannot be planned from template ${args.template.name}:\n${lines.join("\n")}\nfix: ${fix}`,
      );
    }
    this.members = {};
    this.hwuuids = {};
    // Members on a host that could not be read get a stand-in plan (another host's template): it
    // must change nothing recorded, so every input is held; their Domain fails at check naming the host.
    // seedImages: one seed DiskImage per image a host lacks; its members' images are made from it.
    const seedsOf = new Map<HostPart, Map<string, DiskImage>>();
    for (const part of parts) {
      const made = new Map<string, DiskImage>();
      for (const s of part.plan.seeds ?? [])
        made.set(
          s.missing,
          new DiskImage(
            `${name}-${part.host?.name ?? SINGLE_HOST}-seed-${s.volume}`,
            {
              connection: { uri: part.uri },
              pool: s.pool,
              volume: s.volume,
              source: s.from.path,
              sourceFormat: s.format,
              mode: "seed",
              from: { uri: s.from.uri },
            },
            { parent: this },
          ),
        );
      seedsOf.set(part, made);
    }
    const placed = parts.flatMap((part) =>
      part.plan.members.map((m) => ({
        m,
        uri: part.uri,
        host: part.host,
        templateDigest: part.plan.templateDigest,
        hold: part.reachable ? {} : { ignoreChanges: ["*"] },
        seeds: seedsOf.get(part) ?? new Map<string, DiskImage>(),
      })),
    );
    const position = new Map(keys.map((k, i) => [k, i]));
    placed.sort((a, b) => (position.get(a.m.key) ?? 0) - (position.get(b.m.key) ?? 0));
    for (const { m, uri, host, templateDigest, hold, seeds } of placed) {
      /** The source of a member image, and what it waits for: a seed's path when the host lacks the image. */
      const from = (source: string): { source: pulumi.Input<string>; dependsOn: pulumi.Resource[] } => {
        const seed = seeds.get(source);
        return seed ? { source: seed.path, dependsOn: [seed] } : { source, dependsOn: [] };
      };
      const disks: pulumi.Resource[] = [];
      for (const d of m.disks) {
        if (d.mode === "share") continue;
        const src = from(d.source);
        disks.push(
          new DiskImage(
            `${name}-${m.key}-${d.target}`,
            {
              path: d.path,
              source: src.source,
              sourceFormat: d.sourceFormat,
              mode: d.mode,
              replaceTrigger: templateDigest,
              ...(d.volume ? { connection: { uri }, pool: d.volume.pool, volume: d.volume.name } : {}),
            },
            { parent: this, ...hold, dependsOn: src.dependsOn },
          ),
        );
      }
      if (m.nvram) {
        const src = from(m.nvram.source);
        disks.push(
          new DiskImage(
            `${name}-${m.key}-nvram`,
            {
              path: m.nvram.path,
              source: src.source,
              sourceFormat: "raw",
              mode: "copy",
              replaceTrigger: templateDigest,
              ...(m.nvram.volume
                ? { connection: { uri }, pool: m.nvram.volume.pool, volume: m.nvram.volume.name }
                : {}),
            },
            { parent: this, ...hold, dependsOn: src.dependsOn },
          ),
        );
      }
      this.members[m.key] = new Domain(
        `${name}-${m.key}`,
        {
          name: m.name,
          xml: m.xml,
          hwuuid: m.hwuuid,
          connection: host ? { uri, host: host.name } : { uri },
          running: args.running ?? true,
          shutdownTimeoutSeconds: args.shutdownTimeoutSeconds,
          replaceTrigger: templateDigest,
        },
        { parent: this, dependsOn: disks, ...hold },
      );
      this.hwuuids[m.name] = m.hwuuid;
    }
    this.registerOutputs({ hwuuids: this.hwuuids });
  }
}

/**
 * The template with its `type='volume'` disks (`<source pool volume>`) resolved to their paths
 * (`virsh vol-path` over the connection) and written as `file` disks, so they are cloned like
 * any other (as volumes of that pool: see {@link withStorage}). Unchanged when it has none.
 */
function withVolumeDisksAsFiles(name: string, uri: string, templateXml: string, parent: pulumi.Resource): string {
  const refs = volumeDisksOf(templateXml);
  if (refs.length === 0 || isDirectUri(uri)) return templateXml;
  try {
    return volumeDisksAsFiles(templateXml, volumePathsSync(uri, refs));
  } catch (e) {
    const m = VirshError.isInstance(e) ? e.libvirtMessage : (e as Error).message;
    throw new FleetPlanError(
      `cannot resolve the template's volume disks on ${uri}: ${m}`,
      { path: `fleet ${name}`, fix: `check that \`virsh -c ${uri} vol-list POOL\` lists them` },
      parent,
    );
  }
}

/**
 * Decides how the fleet makes its images ({@link fleetStorage}: a remote URI always through
 * libvirt's storage API, a local one when every template image it copies or overlays is a pool
 * volume, QEMU-direct never) and, for volumes, places each member image in the pool of its
 * directory. A directory that is no pool's is refused, naming the disk, the directory and the
 * fix, or with `definePools` gets a `dir` pool defined and started (said in the program's log).
 * Plans with refusals are returned as they are (the caller throws).
 */
function withStorage(
  name: string,
  uri: string,
  args: DomainFleetArgs,
  parent: pulumi.Resource,
  plan: FleetPlan,
  seeding?: Seeding,
): FleetPlan {
  if (plan.refusals.length > 0 || isDirectUri(uri) || imagesOf(plan).sources.length === 0) return plan;
  let view: StorageView;
  const resolve = (): StorageView => {
    try {
      return resolveStorageSync(uri, imagesOf(plan).sources);
    } catch (e) {
      const m = VirshError.isInstance(e) ? e.libvirtMessage : (e as Error).message;
      throw new FleetPlanError(
        `cannot read the storage pools of ${uri}: ${m}`,
        {
          path: `fleet ${name}`,
          fix: `check that \`virsh -c ${uri} pool-list --all\` answers (remote fleets make their images through libvirt's storage API)`,
        },
        parent,
      );
    }
  };
  if (isLocalUri(uri)) {
    // A local libvirt without its storage driver still clones with files, as before.
    try {
      view = resolveStorageSync(uri, imagesOf(plan).sources);
    } catch {
      return plan;
    }
  } else view = resolve();
  if (fleetStorage(uri, false, plan, { uri, ...view }) === "files") return plan;
  const missing = dirsWithoutPool(plan, { uri, ...view });
  if (missing.length > 0 && args.definePools) {
    for (const dir of missing) {
      const pool = definePoolSync(uri, dir);
      void pulumi.log.info(
        `fleet ${name}: defined and started the storage pool ${pool} (dir ${dir}) on ${uri}`,
        parent,
      );
    }
    view = resolve();
  }
  let facts: StorageFacts = { uri, ...view };
  let seeded: ReturnType<typeof planSeeds> | undefined;
  if (seeding) {
    seeded = planSeeds(plan, facts, {
      fleetName: name,
      host: seeding.host,
      seedImages: args.seedImages ?? false,
      candidates: seeding.candidates,
    });
    facts = { ...facts, volumes: seeded.facts.volumes };
  }
  const placed = planVolumes(plan, facts);
  return {
    ...placed.plan,
    refusals: [...placed.plan.refusals, ...placed.refusals, ...(seeded?.refusals ?? [])],
    ...(seeded && seeded.seeds.length > 0 ? { seeds: seeded.seeds } : {}),
  };
}

/** How {@link withStorage} treats template images one host of several lacks ({@link planSeeds}). */
interface Seeding {
  /** The host's name. */
  readonly host: string;
  /** The other readable hosts' images, in `hosts` order. */
  readonly candidates: () => readonly SeedCandidate[];
}

/** The template's inactive XML; a clear error when it is missing or not shut off. */
function readShutOffTemplate(uri: string, name: string, parent: pulumi.Resource): string {
  let t: { xml: string; state: string };
  try {
    t = readDomainSync(uri, name);
  } catch (e) {
    const m = VirshError.isInstance(e) || DirectError.isInstance(e) ? e.libvirtMessage : (e as Error).message;
    throw new FleetPlanError(
      `cannot read the template domain ${JSON.stringify(name)} on ${uri}: ${m}`,
      { path: "template.name", fix: "name an existing, shut-off domain" },
      parent,
    );
  }
  if (t.state !== "shut off") {
    throw new FleetPlanError(
      `the template ${JSON.stringify(name)} is ${t.state}; it must be shut off to be cloned (its disks must not change under the clones)`,
      { path: "template.name", fix: `virsh -c ${uri} shutdown ${name}` },
      parent,
    );
  }
  return t.xml;
}

/** The host name of every member of a fleet on one host (no `hosts`). */
export const SINGLE_HOST = "default";

/** The members planned for one host. */
interface HostPart {
  /** The host, when the fleet has `hosts`. */
  readonly host?: FleetHost;
  readonly uri: string;
  readonly plan: FleetPlan;
  /** False when the host could not be read: its members have a stand-in plan. */
  readonly reachable: boolean;
}

/**
 * Reads every host (template and the members found there, proven ours), places the members
 * ({@link placeMembers}), plans each host's members from that host's template, and checks names,
 * hwuuids and MACs across hosts. Members placed on a host that could not be read are planned from
 * the first readable host's template (a stand-in; their resources hold every input, see the
 * caller). Throws a {@link FleetPlanError} naming the host and its URI when a readable host has no
 * shut-off template, or when no host can be read.
 */
function planOnHosts(
  fleetName: string,
  hosts: readonly FleetHost[],
  templateName: string,
  keys: readonly string[],
  placement: Readonly<Record<string, string>> | undefined,
  common: Omit<FleetOptions, "templateXml" | "keys" | "fleetKeys">,
  parent: pulumi.Resource,
  prepare: {
    /** The template's XML as the planner reads it (volume disks as their files), per host. */
    template: (uri: string, xml: string) => string;
    /** The host's plan with its images placed (files or volumes), per host; images it lacks seeded or refused. */
    storage: (uri: string, plan: FleetPlan, seeding: Seeding) => FleetPlan;
  },
): { parts: HostPart[]; plan: FleetPlan; hostOf: Record<string, string> } {
  const pattern = common.namePattern ?? "{stack}-{fleet}-{key}";
  const lookups = keys.map((key, i) => ({
    key,
    name: expandName(pattern, common.stack, fleetName, key, i + 1),
    ownerId: `${common.project}/${common.stack}/${fleetName}-${key}`,
  }));
  const observed: Record<string, HostObservation> = {};
  const unreachable = new Map<string, string>();
  const templates = new Map<string, string>();
  for (const h of hosts) {
    const r = readFleetHostSync(h.uri, templateName, lookups);
    if (!r.reachable) {
      observed[h.name] = { reachable: false, error: r.error };
      unreachable.set(h.name, r.error);
      void pulumi.log.warn(
        `host ${h.name} (${h.uri}) cannot be reached while planning: ${r.error}; members not found on another host are placed on it and fail naming it (never created elsewhere) until it answers`,
        parent,
      );
      continue;
    }
    if (!r.template)
      throw new FleetPlanError(
        `cannot read the template domain ${JSON.stringify(templateName)} on host ${h.name} (${h.uri}): no domain of that name`,
        { path: "template.name", fix: `define the template on host ${h.name} too: every host clones its own copy` },
        parent,
      );
    if (r.template.state !== "shut off")
      throw new FleetPlanError(
        `the template ${JSON.stringify(templateName)} on host ${h.name} (${h.uri}) is ${r.template.state}; it must be shut off to be cloned (its disks must not change under the clones)`,
        { path: "template.name", fix: `virsh -c ${h.uri} shutdown ${templateName}` },
        parent,
      );
    templates.set(h.name, prepare.template(h.uri, r.template.xml));
    observed[h.name] = { reachable: true, members: r.members };
  }
  const [standIn] = templates.values();
  if (standIn === undefined)
    throw new FleetPlanError(
      `no host can be read: ${hosts.map((h) => `host ${h.name} (${h.uri}): ${unreachable.get(h.name) ?? "?"}`).join("; ")}`,
      {
        path: "hosts",
        fix: "start the libvirt daemons, or correct the hosts' URIs: `virsh -c URI version` must answer",
      },
      parent,
    );
  const placed = placeMembers({ keys, hosts: hosts.map((h) => h.name), placement, observed });
  // The images each other readable host's template has (read once, only when a host lacks one).
  const imagesCache = new Map<string, SeedCandidate | undefined>();
  const imagesOn = (g: FleetHost): SeedCandidate | undefined => {
    if (imagesCache.has(g.name)) return imagesCache.get(g.name);
    let c: SeedCandidate | undefined;
    const xml = templates.get(g.name);
    if (xml !== undefined) {
      const probe = planFleet({
        ...common,
        hwuuidPolicy: { kind: "derive" },
        templateXml: xml,
        keys: ["seed-probe"],
        fleetKeys: ["seed-probe"],
      });
      try {
        const view = resolveStorageSync(g.uri, imagesOf(probe).sources);
        c = {
          host: g.name,
          uri: g.uri,
          images: new Map([...view.volumes.values()].map((v) => [posix.basename(v.path), v])),
        };
      } catch {
        c = undefined; // its storage cannot be read: not a source
      }
    }
    imagesCache.set(g.name, c);
    return c;
  };
  const seedCandidates = (h: FleetHost): SeedCandidate[] =>
    hosts.filter((g) => g.name !== h.name).flatMap((g) => imagesOn(g) ?? []);
  const parts: HostPart[] = [];
  for (const h of hosts) {
    const hostKeys = keys.filter((k) => placed.hostOf[k] === h.name);
    if (!hostKeys.length) continue;
    const templateXml = templates.get(h.name) ?? standIn;
    const reachable = templates.has(h.name);
    // A stand-in plan (unreachable host) is held as recorded: its images are not placed.
    const planned = planFleet({ ...common, templateXml, keys: hostKeys, fleetKeys: keys });
    const plan = reachable
      ? prepare.storage(h.uri, planned, { host: h.name, candidates: () => seedCandidates(h) })
      : planned;
    parts.push({ host: h, uri: h.uri, plan, reachable });
  }
  const order = new Map(keys.map((k, i) => [k, i]));
  const seen = new Set<string>();
  const refusals = [
    ...placed.refusals,
    ...parts.flatMap((p) => p.plan.refusals),
    ...crossHostRefusals(
      parts.flatMap((p) => p.plan.members.map((member) => ({ host: p.host!.name, member }))),
      common.hwuuidPolicy.kind === "keep",
    ),
  ].filter((r) => {
    const id = JSON.stringify([r.key, r.path, r.reason]);
    return !seen.has(id) && !!seen.add(id);
  });
  const templateDigest = createHash("sha256")
    .update(parts.map((p) => `${p.host!.name}:${p.plan.templateDigest}`).join("\n"))
    .digest("hex")
    .slice(0, 16);
  const members = parts
    .flatMap((p) => p.plan.members)
    .sort((a, b) => (order.get(a.key) ?? 0) - (order.get(b.key) ?? 0));
  return { parts, plan: { members, refusals, templateDigest }, hostOf: placed.hostOf };
}
