/**
 * {@link DomainFleet}: many domains cloned from one template domain, each with a new libvirt
 * uuid, name and MACs, copy-on-write disks, and a hardware UUID chosen by policy.
 */
import * as pulumi from "@pulumi/pulumi";
import { DiskMode, FleetPlan, planFleet } from "../provider/fleet/plan";
import { readDomainSync } from "../provider/backends/backend";
import { Domain } from "./domain";
import { DomainDisk } from "./disk";

/** How fleet members get their hardware UUID. */
export type FleetHwuuidPolicy =
  /** The template's guest-visible UUID; one member only (replacing a single machine). */
  | "keep"
  /** Stable per member key, distinct across projects, stacks and fleets (UUIDv5). */
  | "derive"
  /** Given per member key. */
  | { readonly explicit: Readonly<Record<string, string>> };

/** The inputs of a {@link DomainFleet}. Plain values: the plan is made while the program runs. */
export interface DomainFleetArgs {
  /** The template domain; it must be shut off, and it is never modified. */
  readonly template: { readonly name: string; readonly uri?: string };
  /** How many members (keys "1".."N"), or their keys. Keys are stable: scaling keeps the others. */
  readonly members: number | readonly string[];
  /** Member names; `{stack}`, `{fleet}`, `{key}`, `{index}` are replaced. @default `{stack}-{fleet}-{key}` */
  readonly namePattern?: string;
  /** @default "derive" */
  readonly hwuuidPolicy?: FleetHwuuidPolicy;
  /** Writable disks: `overlay` (qcow2 backed by the template image), `copy`, or `share` (read-only/shareable only). @default "overlay" */
  readonly diskMode?: DiskMode;
  /** Where member images go. @default beside the template's image */
  readonly imageDir?: string;
  /** @default true */
  readonly running?: boolean;
  /** @default 60 */
  readonly shutdownTimeoutSeconds?: number;
}

/** A refusal to plan the fleet, shown at preview as its message alone (no stack trace). */
export class FleetPlanError extends pulumi.ResourceError {
  /** Builds it for the fleet `resource`. */
  constructor(message: string, resource: pulumi.Resource) {
    super(message, resource, true);
  }
}

/**
 * {@link DomainFleet} clones a shut-off template into members. Members are created in parallel;
 * a template change re-creates them (new uuid), each keeping its hwuuid.
 */
export class DomainFleet extends pulumi.ComponentResource {
  /** The members' Domains, by key. */
  public readonly members: Record<string, Domain>;
  /** The plan (names, hwuuids, MACs, disks). */
  public readonly plan: FleetPlan;
  /** Member name -> guest-visible UUID. */
  public readonly hwuuids: Record<string, string | undefined>;

  /** Declares a fleet. */
  constructor(name: string, args: DomainFleetArgs, opts?: pulumi.ComponentResourceOptions) {
    super("libvirt-domain:index:DomainFleet", name, {}, opts);
    const uri = args.template.uri ?? new pulumi.Config("libvirt").get("uri") ?? "qemu:///system";
    const templateXml = readShutOffTemplate(uri, args.template.name, this);
    if (typeof args.members === "number" && !(Number.isInteger(args.members) && args.members >= 0 && args.members <= 1000)) {
      throw new FleetPlanError(`members: must be a whole number from 0 to 1000, or a list of member keys; got ${JSON.stringify(args.members)}; fix: write e.g. members: 3`, this);
    }
    const keys = typeof args.members === "number" ? Array.from({ length: args.members }, (_, i) => String(i + 1)) : [...args.members];
    const policy = args.hwuuidPolicy ?? "derive";
    this.plan = planFleet({
      fleetName: name,
      project: pulumi.getProject(),
      stack: pulumi.getStack(),
      templateXml,
      keys,
      namePattern: args.namePattern,
      hwuuidPolicy: policy === "keep" ? { kind: "keep" } : policy === "derive" ? { kind: "derive" } : { kind: "explicit", hwuuids: policy.explicit },
      diskMode: args.diskMode,
      imageDir: args.imageDir,
    });
    if (this.plan.refusals.length) {
      const lines = this.plan.refusals.map((r) => `- ${r.key !== undefined ? `member ${r.key}: ` : ""}${r.path}: ${r.reason}`);
      throw new FleetPlanError(`fleet ${name} cannot be planned from template ${args.template.name}:\n${lines.join("\n")}`, this);
    }
    this.members = {};
    this.hwuuids = {};
    for (const m of this.plan.members) {
      const disks: pulumi.Resource[] = [];
      for (const d of m.disks) {
        if (d.mode === "share") continue;
        disks.push(new DomainDisk(`${name}-${m.key}-${d.target}`, { path: d.path, source: d.source, sourceFormat: d.sourceFormat, mode: d.mode, replaceTrigger: this.plan.templateDigest }, { parent: this }));
      }
      if (m.nvram) {
        disks.push(new DomainDisk(`${name}-${m.key}-nvram`, { path: m.nvram.path, source: m.nvram.source, sourceFormat: "raw", mode: "copy", replaceTrigger: this.plan.templateDigest }, { parent: this }));
      }
      this.members[m.key] = new Domain(
        `${name}-${m.key}`,
        {
          name: m.name,
          xml: m.xml,
          hwuuid: m.hwuuid,
          connection: { uri },
          running: args.running ?? true,
          shutdownTimeoutSeconds: args.shutdownTimeoutSeconds,
          replaceTrigger: this.plan.templateDigest,
        },
        { parent: this, dependsOn: disks },
      );
      this.hwuuids[m.name] = m.hwuuid;
    }
    this.registerOutputs({ hwuuids: this.hwuuids });
  }
}

/** The template's inactive XML; a clear error when it is missing or not shut off. */
function readShutOffTemplate(uri: string, name: string, parent: pulumi.Resource): string {
  let t: { xml: string; state: string };
  try {
    t = readDomainSync(uri, name);
  } catch (e) {
    const m = (e as { libvirtMessage?: string }).libvirtMessage ?? (e as Error).message;
    throw new FleetPlanError(`template.name: cannot read the template domain ${JSON.stringify(name)} on ${uri}: ${m}; fix: name an existing, shut-off domain`, parent);
  }
  if (t.state !== "shut off") {
    throw new FleetPlanError(`template.name: the template ${JSON.stringify(name)} is ${t.state}; it must be shut off to be cloned (its disks must not change under the clones). Fix: virsh -c ${uri} shutdown ${name}`, parent);
  }
  return t.xml;
}
