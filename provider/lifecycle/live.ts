/**
 * Live changes: what libvirt can apply to a running guest is applied to it and to the persistent
 * definition at once (`--live --config`), before anything else of an update, so the guest need
 * not restart for it. Each change was classified beforehand against the running state
 * (`classifyAgainst` in `diff/semantic.ts`): only changes of class `live` reach this module.
 *
 * A live change libvirt refuses changes nothing (libvirt applies `--live --config` to both or to
 * neither); it is handed back with libvirt's reason and waits for a restart like any other
 * change. A device unplug the guest has not completed within a bound is handed back the same way:
 * the definition no longer has the device, the running guest still does, and the outputs say so.
 */
import { classifyChanges, ClassifyContext, DomainChange, deviceAt, liveKind, LiveKind } from "../diff/semantic";
import type { DomainBackend, DomainRef, LiveDomainOps } from "../backends/domain-backend";
import { DomainDef } from "../xml/domain";
import { errorText, LifecycleError } from "./errors";
import { firstChild, formatElement, getAttr, XmlElement } from "../xml/tree";

/** A live change libvirt did not (or not yet) apply to the running guest, and why. */
export interface RefusedChange {
  /** The change, as classified (`live`). */
  readonly change: DomainChange;
  /** libvirt's reason, or what the guest has not done. */
  readonly reason: string;
}

/** What {@link applyLiveChanges} did. */
export interface LiveOutcome {
  /** Applied to the running guest and to the definition. */
  readonly applied: DomainChange[];
  /** Not applied to the running guest: they wait for its next restart. */
  readonly refused: RefusedChange[];
}

/** How long a device unplug may take the guest (ACPI eject under TCG) before it counts as not done. */
export const DETACH_WAIT_MS = 15000;

/** The order live changes are made in: unplug before plug (free slots), CPUs before memory. */
const ORDER: readonly LiveKind[] = ["detach", "attach", "change-media", "setvcpus", "setmem"];

/** The XML of a device element as it is (not redacted: it goes to libvirt in a 0600 file). */
function deviceXml(el: XmlElement): string {
  const out: string[] = [];
  formatElement(el, "", out);
  return out.join("").trim();
}

/** The device key of a device path (`disk[target=vdb]`), undefined for other paths. */
function deviceKey(path: string): string | undefined {
  return /^\/domain\/devices\/([^/]+)/.exec(path)?.[1];
}

/**
 * Classifies the changes of an update against the domain's state: the backend's live
 * capability, the power state and, for a running domain, its live definition.
 */
export function classifyForUpdate(
  changes: readonly DomainChange[],
  backend: Pick<DomainBackend, "live">,
  ctx: Omit<ClassifyContext, "liveCapable">,
): DomainChange[] {
  return classifyChanges(changes, { ...ctx, liveCapable: backend.live !== undefined });
}

/**
 * Applies the `live` changes to the running guest `ref`, each with `--live --config`; returns
 * what was applied and what was not (with libvirt's reason). Unplugs are waited for (bounded by
 * `detachWaitMs`): one the guest has not completed is returned as refused.
 */
export async function applyLiveChanges(
  ops: LiveDomainOps,
  ref: DomainRef,
  changes: readonly DomainChange[],
  desired: DomainDef,
  actual: DomainDef,
  detachWaitMs = DETACH_WAIT_MS,
): Promise<LiveOutcome> {
  const ctx = { desired, actual };
  const planned = changes
    .filter((c) => c.class === "live")
    .map((c) => ({ change: c, kind: liveKind(c, ctx, changes) }))
    .filter((p): p is { change: DomainChange; kind: LiveKind } => p.kind !== undefined)
    .sort((a, b) => ORDER.indexOf(a.kind) - ORDER.indexOf(b.kind));
  const applied: DomainChange[] = [];
  const refused: RefusedChange[] = [];
  const detached: DomainChange[] = [];
  for (const { change, kind } of planned) {
    try {
      await applyOne(ops, ref, change, kind, desired, actual);
      if (kind === "detach") detached.push(change);
      else applied.push(change);
    } catch (e) {
      refused.push({ change, reason: `libvirt refused to apply it live: ${errorText(e)}` });
    }
  }
  if (detached.length) {
    const still = await waitForUnplug(ops, ref, detached, detachWaitMs);
    for (const c of detached) {
      if (still.has(c.path))
        refused.push({
          change: c,
          reason: `the running guest has not released the device within ${detachWaitMs / 1000} s (libvirt asked it to; the definition no longer has it)`,
        });
      else applied.push(c);
    }
  }
  return { applied, refused };
}

/** Why a change classified live could not be applied live: it waits for the next restart instead. */
function notLive(change: DomainChange, reason: string): LifecycleError {
  return new LifecycleError(reason, {
    path: change.path,
    fix: "nothing to do now: the change is in the definition and takes effect at the next restart",
  });
}

async function applyOne(
  ops: LiveDomainOps,
  ref: DomainRef,
  change: DomainChange,
  kind: LiveKind,
  desired: DomainDef,
  actual: DomainDef,
): Promise<void> {
  const key = deviceKey(change.path) ?? "";
  switch (kind) {
    case "attach": {
      const el = deviceAt(desired, key, "desired");
      if (!el) throw notLive(change, "the device is not in the desired XML");
      return ops.attachDeviceLive(ref, deviceXml(el));
    }
    case "detach": {
      const el = deviceAt(actual, key, "actual");
      if (!el) throw notLive(change, "the device is not in the domain's XML");
      return ops.detachDeviceLive(ref, deviceXml(el));
    }
    case "change-media": {
      const el = deviceAt(desired, key, "desired");
      const target = getAttr(el && firstChild(el, "target"), "dev");
      const file = getAttr(el && firstChild(el, "source"), "file");
      if (target === undefined || file === undefined) throw notLive(change, "no target or source file");
      return ops.changeMediaLive(ref, target, file);
    }
    case "setmem": {
      const kib = desired.currentMemoryKiB;
      if (kib === undefined) throw notLive(change, "no <currentMemory> in the desired XML");
      return ops.setMemoryLive(ref, kib);
    }
    case "setvcpus": {
      const count = Number(getAttr(firstChild(desired.root, "vcpu"), "current"));
      return ops.setVcpusLive(ref, count);
    }
  }
}

/**
 * Waits (bounded) until the running guest no longer has the unplugged devices; returns the paths
 * of those it still has.
 */
async function waitForUnplug(
  ops: LiveDomainOps,
  ref: DomainRef,
  detached: DomainChange[],
  waitMs: number,
): Promise<Set<string>> {
  const end = Date.now() + waitMs;
  for (;;) {
    const live = DomainDef.parse(await ops.dumpxmlLive(ref));
    const still = new Set(
      detached.filter((c) => deviceAt(live, deviceKey(c.path) ?? "", "actual") !== undefined).map((c) => c.path),
    );
    if (still.size === 0 || Date.now() >= end) return still;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The lines of the `pendingChanges` output for changes that wait for a restart: `PATH: why`. */
export function pendingLines(waiting: readonly DomainChange[], refused: readonly RefusedChange[]): string[] {
  const refusedPaths = new Set(refused.map((r) => r.change.path));
  const lines = [
    ...refused.map((r) => `${r.change.path}: ${r.reason}`),
    ...waiting
      .filter((c) => c.class === "restart" && !refusedPaths.has(c.path))
      .map((c) => `${c.path}: needs a restart (${c.kind})`),
  ];
  return [...new Set(lines)];
}

/** What {@link liveUpdate} did, for the update to go on with. */
export interface LiveUpdate {
  /** Every change, classified against the domain's state. */
  readonly classified: DomainChange[];
  /** Applied live (and to the definition). */
  readonly applied: DomainChange[];
  /** Live changes libvirt refused, with its reason. */
  readonly refused: RefusedChange[];
  /** What the redefine still has to apply: every change not applied live (refused ones included). */
  readonly remaining: DomainChange[];
}

/**
 * The live step of an update: classifies `changes` (desired vs libvirt's inactive XML) against
 * the domain's state and, when it runs and the backend can, applies the `live` ones.
 */
export async function liveUpdate(
  backend: Pick<DomainBackend, "live">,
  ref: DomainRef,
  changes: readonly DomainChange[],
  desired: DomainDef,
  actual: DomainDef,
  state: string,
): Promise<LiveUpdate> {
  const running = state !== "shut off";
  const ops = backend.live;
  // The live XML is read only when some change could be applied live (one virsh process).
  const candidates = running && ops && changes.some((c) => liveKind(c, { desired, actual }, changes) !== undefined);
  const live = candidates ? DomainDef.parse(await ops.dumpxmlLive(ref)) : undefined;
  const classified = classifyForUpdate(changes, backend, { running, desired, actual, live });
  if (!ops || !classified.some((c) => c.class === "live"))
    return { classified, applied: [], refused: [], remaining: classified };
  const { applied, refused } = await applyLiveChanges(ops, ref, classified, desired, actual);
  const done = new Set(applied);
  // A refused live change waits for a restart like any other.
  const remaining = classified
    .filter((c) => !done.has(c))
    .map((c) => (c.class === "live" ? { ...c, class: "restart" as const } : c));
  return { classified, applied, refused, remaining };
}
