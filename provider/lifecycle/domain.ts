/**
 * The Domain lifecycle, over any {@link DomainBackend} (virsh, or QEMU directly): create (with
 * adopt and take-back), read, update (with the restart policy) and delete, each on typed inputs
 * and recorded state. The Pulumi adapter (`provider/dynamic/domain-provider.ts`) shapes the
 * engine's objects into these types and back; nothing here knows Pulumi.
 *
 * Contracts:
 * - `createDomain` is transactional: on failure it removes what it made; if that also fails, it
 *   throws a {@link DomainInitError} carrying the id so the engine records the domain and
 *   nothing leaks.
 * - Every command addresses the domain by the uuid we recorded wherever we have one (virsh
 *   takes a bare name for an id or a uuid first, so a name like `1` could address another domain).
 * - `readDomainState` and `updateDomain` touch a domain only while it carries our ownership
 *   mark with our whole owner identity (project/stack/resource and the connection URI) and the
 *   recorded uuid; a create takes back only a domain with that mark. `removeDomain` judges the
 *   same way, with the recorded uuid; only a state without a recorded uuid is judged by name.
 *   Nothing here deletes disks (the Domain creates none).
 */
import { diffDomains, DomainChange, maxClass } from "../diff/semantic";
import { backendFor, DomainBackend, DomainRef, DomainState, LibvirtCapabilities } from "../backends/domain-backend";
import { notOwnedReason, OwnerIdentity } from "../desired/compose";
import { DEFAULT_SHUTDOWN_TIMEOUT_SECONDS, DEFAULT_URI } from "../desired/inputs";
import { DomainDef, readDomain } from "../xml/domain";
import { uuidPassthrough } from "../xml/identity";
import { randomUuid } from "../xml/uuid";
import type { DomainCheckedInputs, DomainOutputs, DomainRecorded } from "../dynamic/types";
import { DomainInitError, errorText, LifecycleError } from "./errors";
import { liveUpdate, pendingLines } from "./live";

const probes = new Map<string, Promise<LibvirtCapabilities>>();

/** Probes a connection once per process (a failed probe is tried again next time). */
export function probe(uri: string): Promise<LibvirtCapabilities> {
  let p = probes.get(uri);
  if (!p) {
    p = backendFor(uri).probe();
    probes.set(uri, p);
    p.catch(() => probes.delete(uri));
  }
  return p;
}

/** The connection URI of some inputs or state. */
export function uriOf(i: { readonly connection?: { readonly uri?: string } }): string {
  return i.connection?.uri ?? DEFAULT_URI;
}

/** The owner identity of some inputs or state: the resource (`project/stack/name`) and the connection URI. */
export function ownerOf(i: {
  readonly ownerId?: unknown;
  readonly connection?: { readonly uri?: string };
}): OwnerIdentity {
  return {
    ownerId: typeof i.ownerId === "string" ? i.ownerId : undefined,
    connection: uriOf(i),
  };
}

/** The uuid a state recorded, if any. */
export function recordedUuid(props: { readonly uuid?: unknown }): string | undefined {
  return typeof props.uuid === "string" && props.uuid !== "" ? props.uuid.toLowerCase() : undefined;
}

/** Drops `undefined` values (protobuf refuses them), deeply. */
export function plain<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** The semantic changes from `actualXml` to `desiredXml` (desired must be contained in actual). */
export function xmlChanges(desiredXml: string, actualXml: string | undefined): DomainChange[] {
  if (!actualXml) return [];
  return diffDomains(DomainDef.parse(desiredXml), DomainDef.parse(actualXml)).changes.filter(
    (c) => c.path !== "/domain/uuid",
  );
}

async function outputsFor(
  backend: DomainBackend,
  inputs: DomainCheckedInputs,
  ref: DomainRef,
  pendingRestart: boolean,
  pendingChanges: string[] = [],
): Promise<DomainOutputs> {
  const [read, caps] = await Promise.all([backend.read(ref), probe(backend.uri)]);
  if (!read)
    throw new LifecycleError(
      `domain ${inputs.name} vanished from ${backend.uri} while it was being applied`,
      { path: `domain ${inputs.name}`, fix: "run `pulumi refresh`, then `pulumi up` again" },
      `domain ${inputs.name} vanished from ${backend.uri} while it was being applied`,
    );
  return buildOutputs(inputs, read, caps, pendingRestart, pendingChanges);
}

/** The strings of a list value (a state's `pendingChanges`), empty for anything else. */
function stringList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

/** The outputs of a domain: the checked inputs, and what libvirt reports of it now. */
export function buildOutputs(
  inputs: DomainCheckedInputs,
  read: { xml: string; state: DomainState },
  caps: LibvirtCapabilities,
  pendingRestart: boolean,
  pendingChanges: string[] = [],
): DomainOutputs {
  const actual = DomainDef.parse(read.xml);
  const view = readDomain(actual);
  const hw = view.hwuuid ?? uuidPassthrough(actual);
  const uuid = actual.childText("uuid") ?? "";
  const desiredXml = inputs.xml;
  return plain({
    ...inputs,
    name: inputs.name,
    desiredXml,
    xml: read.xml,
    uuid,
    guestUuid: hw ?? uuid,
    state: read.state,
    macAddresses: view.interfaces.map((i) => (i.mac ?? "").toLowerCase()).filter(Boolean),
    libvirtVersion: caps.libvirtVersion,
    hwuuidMode: inputs.resolvedHwuuidMode ?? caps.hwuuidMode ?? "",
    pendingRestart,
    pendingChanges: pendingRestart ? pendingChanges : [],
    drift: xmlChanges(desiredXml, read.xml).map((c) => c.path),
  });
}

/** Creates a domain (define, validated; start when running); on failure removes what it made. */
export async function createDomain(inputs: DomainCheckedInputs): Promise<DomainOutputs> {
  const backend = backendFor(uriOf(inputs));
  return backend.withLock(inputs.name, () => createLocked(backend, inputs));
}

async function createLocked(backend: DomainBackend, inputs: DomainCheckedInputs): Promise<DomainOutputs> {
  const name = inputs.name;
  const uri = backend.uri;
  const adopt = inputs.adopt === true;
  const desired = DomainDef.parse(inputs.xml);
  if (adopt) {
    if (!(await backend.exists(name))) {
      throw new LifecycleError(`no domain named ${JSON.stringify(name)} exists on ${uri} to adopt`, {
        path: "adopt",
        fix: "correct the name, or remove adopt to create it",
      });
    }
    // Keep the adopted domain's uuid: it is the same domain, now ours.
    desired.setChildText("uuid", await backend.domuuid(name));
  }
  // The new domain's uuid, chosen here (random v4, as libvirt would) so that every later command
  // of the same virsh process addresses this domain and no other.
  if (!adopt) desired.setChildText("uuid", randomUuid());
  const uuid = desired.childText("uuid")!;
  const wantRunning = inputs.running !== false;
  let read: { xml: string; state: DomainState };
  try {
    // libvirt itself refuses a name in use (no separate, racy existence check).
    read = await backend.defineStartRead(desired.format(), uuid, wantRunning);
  } catch (e) {
    const why = errorText(e);
    const failedAt = (e as { step?: string }).step;
    if (failedAt !== "start") {
      const taken = /already exists with uuid ([0-9a-fA-F-]{36})/.exec(why)?.[1]?.toLowerCase();
      if (!taken)
        throw new LifecycleError(
          `define ${name} on ${uri} failed: ${why}`,
          {
            path: `domain ${name}`,
            fix: "correct what libvirt refused (its message above), then run `pulumi up` again",
          },
          `define ${name} on ${uri} failed: ${why}`,
          e,
        );
      return takeBack(backend, inputs, desired, taken, e);
    }
    if (adopt)
      throw new DomainInitError(
        `adopted ${name} but could not start it: ${why}`,
        { path: `domain ${name}`, fix: "fix what keeps it from starting, then run `pulumi up` again" },
        name,
        plain(inputs),
      );
    try {
      await backend.destroyAndUndefineByUuid(uuid, name);
    } catch (cleanup) {
      throw new DomainInitError(
        `start ${name} failed (${why}) and removing it failed too (${(cleanup as Error).message}); it stays in the state for the next up or destroy`,
        { path: `domain ${name}`, fix: "fix what keeps it from starting, then run `pulumi up` or `pulumi destroy`" },
        name,
        plain(inputs),
      );
    }
    throw new LifecycleError(
      `start ${name} on ${uri} failed: ${why}; the domain was removed again`,
      {
        path: `domain ${name}`,
        fix: "correct what keeps it from starting (the message above), then run `pulumi up` again",
      },
      `start ${name} on ${uri} failed: ${why}; the domain was removed again`,
      e,
    );
  }
  return buildOutputs(inputs, read, await probe(uri), false);
}

/**
 * Takes back our own domain from an interrupted run (defined, never recorded), named by libvirt
 * as holding the name with uuid `taken`. It is read by that uuid and must carry our mark with
 * our whole owner identity; anything else is refused.
 */
async function takeBack(
  backend: DomainBackend,
  inputs: DomainCheckedInputs,
  desired: DomainDef,
  taken: string,
  cause: unknown,
): Promise<DomainOutputs> {
  const name = inputs.name;
  const existing = await backend.read({ name, uuid: taken }, { fresh: true });
  const existingDef = existing && DomainDef.parse(existing.xml);
  const notOurs =
    !existingDef || existingDef.name !== name
      ? "it is gone or renamed"
      : inputs.ownerId === undefined
        ? "no owner id was given"
        : notOwnedReason(existingDef, ownerOf(inputs));
  if (!existing || notOurs) {
    throw new LifecycleError(
      `a domain named ${JSON.stringify(name)} already exists on ${backend.uri} (uuid ${taken}) and is not one this resource left behind: ${notOurs}`,
      { path: "name", fix: "choose another name, or set adopt: true to take it over" },
      undefined,
      cause,
    );
  }
  const ref = { name, uuid: taken };
  desired.setChildText("uuid", taken);
  await backend.define(desired.format());
  if (inputs.running !== false && existing.state !== "running") await backend.start(ref);
  return outputsFor(backend, inputs, ref, false);
}

/**
 * The actual state of a recorded domain, read by the recorded uuid, or undefined when it is not
 * ours any more: vanished, renamed, or without our mark and whole owner identity (nothing of it
 * is shown then). A running domain keeps `running` as recorded (absent stays absent: an added key
 * would be a change on every later preview); a stopped one reads `running: false`, which is
 * drift unless the program asked for it.
 */
export async function readDomainState(id: string, props: DomainRecorded): Promise<DomainOutputs | undefined> {
  const backend = backendFor(uriOf(props));
  const uuid = recordedUuid(props);
  const r = await backend.read({ name: id, uuid });
  if (!r) return undefined;
  const actual = DomainDef.parse(r.xml);
  if (uuid && actual.childText("uuid")?.toLowerCase() !== uuid) return undefined;
  if (actual.name !== id || notOwnedReason(actual, ownerOf(props))) return undefined;
  const caps = await probe(backend.uri);
  // The recorded state as the inputs it was made from: the desired XML is the checked `xml`.
  const recorded = { ...props, xml: props.desiredXml ?? props.xml } as DomainCheckedInputs;
  const outs = buildOutputs(recorded, r, caps, props.pendingRestart === true, stringList(props.pendingChanges));
  const running = r.state === "running" ? props.running : false;
  return running === undefined ? outs : { ...outs, running };
}

/** Redefines keeping the uuid; starts/stops to match `running`; restarts only when needed and allowed. */
export async function updateDomain(
  id: string,
  olds: DomainRecorded,
  news: DomainCheckedInputs,
): Promise<DomainOutputs> {
  const backend = backendFor(uriOf(news));
  return backend.withLock(id, () => updateLocked(backend, id, olds, news));
}

async function updateLocked(
  backend: DomainBackend,
  id: string,
  olds: DomainRecorded,
  news: DomainCheckedInputs,
): Promise<DomainOutputs> {
  const current = await backend.read({ name: id, uuid: recordedUuid(olds) }, { fresh: true });
  if (!current) {
    // Recorded by a create that failed before the domain existed: finish creating it.
    if (olds.uuid === undefined) return createLocked(backend, news);
    throw new LifecycleError(
      `domain ${id} no longer exists on ${backend.uri}`,
      {
        path: `domain ${id}`,
        fix: "run `pulumi refresh`, then `pulumi up` re-creates it",
      },
      `domain ${id} no longer exists on ${backend.uri}; fix: run \`pulumi refresh\`, then \`pulumi up\` re-creates it`,
    );
  }
  const currentDef = DomainDef.parse(current.xml);
  const notOurs =
    currentDef.name !== id
      ? `it is now named ${JSON.stringify(currentDef.name)}`
      : notOwnedReason(currentDef, ownerOf(olds));
  if (notOurs)
    throw new LifecycleError(
      `refusing to update domain ${id} on ${backend.uri}: ${notOurs}`,
      { path: `domain ${id}`, fix: "run `pulumi refresh`" },
      `refusing to update domain ${id} on ${backend.uri}: ${notOurs}; fix: run \`pulumi refresh\``,
    );
  const ref = { name: id, uuid: currentDef.childText("uuid")!.toLowerCase() };
  const desired = DomainDef.parse(news.xml);
  desired.setChildText("uuid", ref.uuid);
  const changes = xmlChanges(news.xml, current.xml);
  const textChanged = news.xml !== olds.desiredXml;
  // Classified against the running state; what libvirt can apply live is applied first (./live.ts).
  const live = await liveUpdate(backend, ref, changes, desired, currentDef, current.state);
  if (live.remaining.length || (textChanged && changes.length === 0)) {
    try {
      await backend.define(desired.format());
    } catch (e) {
      const kept = live.applied.length
        ? `the changes applied live (${live.applied.map((c) => c.path).join(", ")}) stay; the rest of the definition is the previous one`
        : "the domain keeps its previous definition";
      const message = `redefine ${id} failed: ${errorText(e)}; ${kept}`;
      throw new LifecycleError(
        message,
        { path: `domain ${id}`, fix: "correct what libvirt refused (its message above), then run `pulumi up` again" },
        message,
        e,
      );
    }
  }
  const needsRestart =
    maxClass(live.remaining.map((c) => c.class)) === "restart" ||
    (textChanged &&
      changes.length === 0 &&
      olds.desiredXml !== undefined &&
      xmlChanges(olds.desiredXml, news.xml).some((c) => c.class === "restart"));
  const timeout = news.shutdownTimeoutSeconds ?? DEFAULT_SHUTDOWN_TIMEOUT_SECONDS;
  let pendingRestart = olds.pendingRestart === true;
  const state = await backend.domstate(ref);
  const wantRunning = news.running !== false;
  if (!wantRunning) {
    if (state !== "shut off") await backend.shutdown(ref, timeout);
    pendingRestart = false;
  } else if (state !== "running") {
    await backend.start(ref);
    pendingRestart = false;
  } else if (needsRestart || pendingRestart) {
    if (news.restartOnChange === true) {
      await backend.shutdown(ref, timeout);
      await backend.start(ref);
      pendingRestart = false;
    } else {
      pendingRestart = true;
    }
  }
  const pendingChanges = pendingRestart
    ? [...new Set([...stringList(olds.pendingChanges), ...pendingLines(live.remaining, live.refused)])]
    : [];
  return outputsFor(backend, news, ref, pendingRestart, pendingChanges);
}

/** Graceful shutdown, then undefine with NVRAM; refuses domains that are not ours. */
export async function removeDomain(id: string, props: DomainRecorded): Promise<void> {
  const backend = backendFor(uriOf(props));
  return backend.withLock(id, () => removeLocked(backend, id, props));
}

async function removeLocked(backend: DomainBackend, id: string, props: DomainRecorded): Promise<void> {
  const timeout = props.shutdownTimeoutSeconds ?? DEFAULT_SHUTDOWN_TIMEOUT_SECONDS;
  const uuid = recordedUuid(props);
  // Ours only with our mark and whole owner identity, and the recorded uuid; a domain renamed
  // behind our back is no longer the one this resource names, and is left alone (as a gone one).
  const judge = (r: { xml: string }): "remove" | "gone" => {
    const actual = DomainDef.parse(r.xml);
    if (uuid && actual.childText("uuid")?.toLowerCase() !== uuid) {
      const reason = `refusing to delete domain ${id} on ${backend.uri}: its uuid ${actual.childText("uuid")} is not the recorded ${uuid} (another domain took the name)`;
      throw new LifecycleError(
        reason,
        { path: `domain ${id}`, fix: "`pulumi refresh`" },
        `${reason}; fix: \`pulumi refresh\``,
      );
    }
    if (actual.name !== id) return "gone";
    const notOurs = notOwnedReason(actual, ownerOf(props));
    if (notOurs) {
      const reason = `refusing to delete domain ${id} on ${backend.uri}: ${notOurs}`;
      const fix = "remove it from the state with `pulumi state delete`";
      throw new LifecycleError(reason, { path: `domain ${id}`, fix }, `${reason}; fix: ${fix}`);
    }
    return "remove";
  };
  if (timeout === 0 && uuid) {
    // No graceful wait: read, judge and remove in one step (one virsh process).
    await backend.destroyAndUndefineIf({ name: id, uuid }, judge);
    return;
  }
  const r = await backend.read({ name: id, uuid }, { fresh: true });
  if (!r || judge(r) === "gone") return;
  const ref = { name: id, uuid: DomainDef.parse(r.xml).childText("uuid")!.toLowerCase() };
  if (r.state !== "shut off" && timeout > 0) await backend.shutdown(ref, timeout);
  await backend.destroyAndUndefine(ref);
}
