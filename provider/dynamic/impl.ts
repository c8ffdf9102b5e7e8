/**
 * The Domain resource's provider: check, diff, create, read, update, delete over the virsh
 * backend. The dynamic-provider shim in `sdk/` loads this compiled module by path; nothing here
 * is serialized, and nothing keeps state between calls except a per-process probe cache.
 *
 * Lifecycle contracts:
 * - `check` runs every validation and identity rule and probes the connection, so
 *   `pulumi preview` reports bad input per property before anything is touched. The checked
 *   `xml` input is the canonical desired XML.
 * - `create` is transactional: on failure it removes what it made; if that also fails, the
 *   error carries the id so the engine records the domain and nothing leaks.
 * - Every command addresses the domain by the uuid we recorded wherever we have one (virsh
 *   takes a bare name for an id or a uuid first, so a name like `1` could address another domain).
 * - `read`, `update` and `delete` touch a domain only while it carries our ownership mark with
 *   our whole owner identity (project/stack/resource and the connection URI) and the recorded
 *   uuid; a create takes back only a domain with that mark. `delete` never deletes disks (the
 *   Domain creates none).
 */
import { diffDomains, DomainChange, maxClass } from "../diff/semantic";
import { LibvirtCapabilities, HWUUID_MIN_LIBVIRT, compareVersions, DomainState } from "../backends/virsh/virsh-backend";
import { DomainBackend, DomainRef, backendFor } from "../backends/domain-backend";
import { isDirectUri } from "../backends/qemu/direct";
import { buildQemuArgv } from "../qemu/argv";
import { DomainXmlError } from "../xml/errors";
import { DomainDef, readDomain } from "../xml/domain";
import { composeDomain, ComposeError, notOwnedReason, OwnerIdentity, uuidPassthrough } from "../desired/compose";
import { randomUuid } from "../xml/uuid";
import {
  DEFAULT_SHUTDOWN_TIMEOUT_SECONDS,
  DEFAULT_URI,
  DomainInputs,
  InputFailure,
  validateInputs,
} from "../desired/inputs";
import { withSecrets } from "./secrets";
import { liveUpdate, pendingLines } from "../lifecycle/live";

/** The provider's view of a Domain's state (outputs include the checked inputs). */
export interface DomainOutputs extends Record<string, unknown> {
  name: string;
  xml: string;
  uuid: string;
  guestUuid: string;
  state: string;
  macAddresses: string[];
  libvirtVersion: string;
  hwuuidMode: string;
  pendingRestart: boolean;
  /** What the running guest takes only at its next restart, `PATH: why` (see `lifecycle/live.ts`). */
  pendingChanges: string[];
  /** Paths where the actual XML no longer matches the desired one (found by `read`). */
  drift: string[];
  desiredXml: string;
}

const probes = new Map<string, Promise<LibvirtCapabilities>>();

/** Probes a connection once per process. */
function probe(uri: string): Promise<LibvirtCapabilities> {
  let p = probes.get(uri);
  if (!p) {
    p = backendFor(uri).probe();
    probes.set(uri, p);
    p.catch(() => probes.delete(uri));
  }
  return p;
}

/** The connection URI of some inputs. */
export function uriOf(i: { connection?: { uri?: string } }): string {
  return i.connection?.uri ?? DEFAULT_URI;
}

/** The owner identity of some inputs or state: the resource (`project/stack/name`) and the connection URI. */
export function ownerOf(i: Record<string, unknown>): OwnerIdentity {
  return {
    ownerId: typeof i.ownerId === "string" ? i.ownerId : undefined,
    connection: uriOf(i),
  };
}

/** The uuid a state recorded, if any. */
function recordedUuid(props: Record<string, unknown>): string | undefined {
  return typeof props.uuid === "string" && props.uuid !== "" ? props.uuid.toLowerCase() : undefined;
}

/** Drops `undefined` values (protobuf refuses them), deeply. */
export function plain<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

function stripEngineKeys(o: Record<string, unknown>): Record<string, unknown> {
  const r: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (!k.startsWith("__")) r[k] = v;
  return r;
}

/** Resolves `auto` to a mode, or explains why the requested mode cannot be had. */
export function resolveMode(
  requested: string | undefined,
  caps: LibvirtCapabilities,
  uri: string,
): { mode?: "native" | "passthrough"; failure?: InputFailure } {
  const r = requested ?? "auto";
  if (r === "auto") {
    if (caps.hwuuidMode) return { mode: caps.hwuuidMode };
    return {
      failure: {
        property: "hwuuidMode",
        reason: `hwuuidMode: ${caps.hwuuidUnsupportedReason}; fix: connect to a QEMU/KVM libvirt`,
      },
    };
  }
  if (r === "native" && compareVersions(caps.libvirtVersion, HWUUID_MIN_LIBVIRT) < 0) {
    return {
      failure: {
        property: "hwuuidMode",
        reason: `hwuuidMode: "native" needs libvirt >= ${HWUUID_MIN_LIBVIRT}, but the daemon at ${uri} runs libvirt ${caps.libvirtVersion}; fix: use hwuuidMode "auto" or "passthrough" (the <qemu:commandline> -uuid fallback), or upgrade libvirt`,
      },
    };
  }
  if (r === "passthrough" && caps.hypervisor !== "QEMU") {
    return {
      failure: {
        property: "hwuuidMode",
        reason: `hwuuidMode: "passthrough" needs the QEMU driver; ${uri} runs ${caps.hypervisor}; fix: use "auto"`,
      },
    };
  }
  return { mode: r as "native" | "passthrough" };
}

/** `check`: validate, probe, compose; the checked `xml` is the canonical desired XML. */
export async function check(
  _olds: Record<string, unknown>,
  news: Record<string, unknown>,
): Promise<{ inputs: Record<string, unknown>; failures: InputFailure[] }> {
  const inputs = stripEngineKeys(news) as unknown as DomainInputs & Record<string, unknown>;
  const failures = validateInputs(inputs);
  // No usable connection or name: report without probing (a probe of the default URI would be a guess).
  if (failures.some((f) => f.property.startsWith("connection") || f.property === "name"))
    return { inputs: news, failures };
  const uri = uriOf(inputs);
  let caps: LibvirtCapabilities;
  try {
    caps = await probe(uri);
  } catch (e) {
    const msg = errorText(e);
    failures.push({
      property: "connection.uri",
      reason: `connection.uri: cannot reach libvirt at ${JSON.stringify(uri)}: ${msg}; fix: start the daemon or correct the URI (stack config libvirt:uri)`,
    });
    return { inputs: news, failures };
  }
  const { mode, failure } = resolveMode(inputs.hwuuidMode, caps, uri);
  if (failure) failures.push(failure);
  if (failures.length || !mode) return { inputs: news, failures };
  try {
    const composed = composeDomain(inputs, mode, inputs.adopt === true);
    if (isDirectUri(uri)) {
      // Without libvirt, what our command line builder cannot express is refused here, at preview.
      try {
        buildQemuArgv(ensureUuid(composed.def));
      } catch (e) {
        if (DomainXmlError.isInstance(e))
          return { inputs: news, failures: [{ property: "xml", reason: `xml: ${e.message}` }] };
        throw e;
      }
    }
    return { inputs: { ...news, xml: composed.xml, resolvedHwuuidMode: mode }, failures: [] };
  } catch (e) {
    if (e instanceof ComposeError || (e as ComposeError).failures)
      return { inputs: news, failures: (e as ComposeError).failures };
    throw e;
  }
}

/** A copy with a placeholder uuid, for checking that a command line can be built. */
function ensureUuid(def: DomainDef): DomainDef {
  const d = def.clone();
  if (!d.childText("uuid")) d.setChildText("uuid", "00000000-0000-4000-8000-000000000001");
  return d;
}

/** The message of a backend error: libvirt's text where there is one. */
function errorText(e: unknown): string {
  const m = (e as { libvirtMessage?: unknown }).libvirtMessage;
  return typeof m === "string" ? m : (e as Error).message;
}

const REPLACE_KEYS = ["name", "replaceTrigger"];

function domainType(xml: unknown): string | undefined {
  try {
    return typeof xml === "string" ? DomainDef.parse(xml).type : undefined;
  } catch {
    return undefined;
  }
}

/** The semantic changes from `actualXml` to `desiredXml` (desired must be contained in actual). */
export function xmlChanges(desiredXml: string, actualXml: string | undefined): DomainChange[] {
  if (!actualXml) return [];
  return diffDomains(DomainDef.parse(desiredXml), DomainDef.parse(actualXml)).changes.filter(
    (c) => c.path !== "/domain/uuid",
  );
}

/** `diff`: replaces only for name, domain type, connection or the explicit trigger. */
export async function diff(
  _id: string,
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
): Promise<{ changes: boolean; replaces: string[]; deleteBeforeReplace: boolean }> {
  const replaces = REPLACE_KEYS.filter((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]));
  if (uriOf(olds) !== uriOf(news)) replaces.push("connection");
  if (domainType(olds.xml) !== domainType(news.xml) && domainType(news.xml) !== undefined) replaces.push("xml");
  const o = stripEngineKeys(olds);
  const n = stripEngineKeys(news);
  const inputKeys = new Set(Object.keys(n));
  let changes = replaces.length > 0;
  // An input that changed (the desired XML text included).
  // `xml` and `hwuuidMode` are inputs and outputs at once (desired vs actual, requested vs
  // resolved): they are compared through desiredXml and resolvedHwuuidMode instead.
  for (const k of inputKeys) {
    if (OUTPUT_SHADOWED.has(k)) continue;
    if (JSON.stringify(o[k]) !== JSON.stringify(n[k])) changes = true;
  }
  for (const k of Object.keys(o)) if (!inputKeys.has(k) && isInputKey(k) && !OUTPUT_SHADOWED.has(k)) changes = true;
  const desiredNow = typeof n.xml === "string" ? n.xml : undefined;
  if (desiredNow && desiredNow !== o.desiredXml) changes = true;
  // Drift: the actual XML (from the last create/update/refresh) lacks what is desired.
  if (desiredNow && typeof o.xml === "string" && xmlChanges(desiredNow, o.xml).length) changes = true;
  const wantRunning = n.running !== false;
  if (typeof o.state === "string" && (o.state === "running") !== wantRunning) changes = true;
  const nameStays = !replaces.includes("name");
  return { changes, replaces, deleteBeforeReplace: replaces.length > 0 && nameStays };
}

/** Inputs whose output of the same name means something else. */
const OUTPUT_SHADOWED = new Set(["xml", "hwuuidMode"]);

const INPUT_KEYS = new Set([
  "name",
  "hwuuid",
  "xml",
  "memory",
  "vcpus",
  "machine",
  "firmware",
  "disks",
  "interfaces",
  "connection",
  "running",
  "shutdownTimeoutSeconds",
  "restartOnChange",
  "adopt",
  "hwuuidMode",
  "replaceTrigger",
  "ownerId",
]);
function isInputKey(k: string): boolean {
  return INPUT_KEYS.has(k);
}

async function outputsFor(
  backend: DomainBackend,
  inputs: Record<string, unknown>,
  ref: DomainRef,
  extra: { pendingRestart: boolean; pendingChanges?: string[] },
): Promise<DomainOutputs> {
  const name = inputs.name as string;
  const [read, caps] = await Promise.all([backend.read(ref), probe(backend.uri)]);
  if (!read) throw new Error(`domain ${name} vanished from ${backend.uri} while it was being applied`);
  return buildOutputs(inputs, read, caps, extra.pendingRestart, extra.pendingChanges);
}

/** The strings of a list value (a state's `pendingChanges`), empty for anything else. */
function stringList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

function buildOutputs(
  inputs: Record<string, unknown>,
  read: { xml: string; state: DomainState },
  caps: LibvirtCapabilities,
  pendingRestart: boolean,
  pendingChanges: string[] = [],
): DomainOutputs {
  const actual = DomainDef.parse(read.xml);
  const view = readDomain(actual);
  const hw = view.hwuuid ?? uuidPassthrough(actual);
  const uuid = actual.childText("uuid") ?? "";
  const desiredXml = inputs.xml as string;
  return plain({
    ...stripEngineKeys(inputs),
    name: inputs.name as string,
    desiredXml,
    xml: read.xml,
    uuid,
    guestUuid: hw ?? uuid,
    state: read.state,
    macAddresses: view.interfaces.map((i) => (i.mac ?? "").toLowerCase()).filter(Boolean),
    libvirtVersion: caps.libvirtVersion,
    hwuuidMode: (inputs.resolvedHwuuidMode as string) ?? caps.hwuuidMode ?? "",
    pendingRestart,
    pendingChanges: pendingRestart ? pendingChanges : [],
    drift: xmlChanges(desiredXml, read.xml).map((c) => c.path),
  });
}

/** An error that records a half-made domain in the state (the engine's ErrorResourceInitFailed). */
export class DomainInitError extends Error {
  /** The domain name: the resource id. */
  public readonly id: string;
  /** What is known of it. */
  public readonly properties: Record<string, unknown>;
  /** Why it failed. */
  public readonly reasons: string[];
  /** Builds it. */
  constructor(message: string, id: string, properties: Record<string, unknown>) {
    super(message);
    this.id = id;
    this.properties = properties;
    this.reasons = [message];
  }
}

/** `create`: define (validated), start when running; on failure remove what it made. */
export async function create(inputs: Record<string, unknown>): Promise<{ id: string; outs: DomainOutputs }> {
  const name = inputs.name as string;
  const uri = uriOf(inputs);
  const backend = backendFor(uri);
  return backend.withLock(name, () => createLocked(backend, inputs));
}

async function createLocked(
  backend: DomainBackend,
  inputs: Record<string, unknown>,
): Promise<{ id: string; outs: DomainOutputs }> {
  const name = inputs.name as string;
  const uri = backend.uri;
  const adopt = inputs.adopt === true;
  const desired = DomainDef.parse(inputs.xml as string);
  if (adopt) {
    if (!(await backend.exists(name))) {
      throw new Error(
        `adopt: no domain named ${JSON.stringify(name)} exists on ${uri} to adopt; fix: correct the name, or remove adopt to create it`,
      );
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
      if (!taken) throw new Error(`define ${name} on ${uri} failed: ${why}`, { cause: e });
      // Our own domain from an interrupted run (defined, never recorded): take it back. It is
      // read by the uuid libvirt named, and must carry our mark with our whole owner identity.
      const existing = await backend.read({ name, uuid: taken }, { fresh: true });
      const existingDef = existing && DomainDef.parse(existing.xml);
      const notOurs =
        !existingDef || existingDef.name !== name
          ? "it is gone or renamed"
          : inputs.ownerId === undefined
            ? "no owner id was given"
            : notOwnedReason(existingDef, ownerOf(inputs));
      if (!existing || notOurs) {
        throw new Error(
          `name: a domain named ${JSON.stringify(name)} already exists on ${uri} (uuid ${taken}) and is not one this resource left behind: ${notOurs}; fix: choose another name, or set adopt: true to take it over`,
          { cause: e },
        );
      }
      const ref = { name, uuid: taken };
      desired.setChildText("uuid", taken);
      await backend.define(desired.format());
      if (wantRunning && existing.state !== "running") await backend.start(ref);
      return { id: name, outs: await outputsFor(backend, inputs, ref, { pendingRestart: false }) };
    }
    if (adopt)
      throw new DomainInitError(`adopted ${name} but could not start it: ${why}`, name, plain(stripEngineKeys(inputs)));
    try {
      await backend.destroyAndUndefineByUuid(uuid, name);
    } catch (cleanup) {
      throw new DomainInitError(
        `start ${name} failed (${why}) and removing it failed too (${(cleanup as Error).message}); it stays in the state for the next up or destroy`,
        name,
        plain(stripEngineKeys(inputs)),
      );
    }
    throw new Error(`start ${name} on ${uri} failed: ${why}; the domain was removed again`, { cause: e });
  }
  return { id: name, outs: buildOutputs(inputs, read, await probe(uri), false) };
}

/**
 * `read`: the actual state, read by the recorded uuid. A vanished domain, one renamed, or one
 * without our mark and whole owner identity gives an empty id (not ours: nothing of it is shown).
 */
export async function read(
  id: string,
  props: Record<string, unknown>,
): Promise<{ id: string; props: Record<string, unknown> }> {
  const backend = backendFor(uriOf(props));
  const uuid = recordedUuid(props);
  const r = await backend.read({ name: id, uuid });
  if (!r) return { id: "", props: {} };
  const actual = DomainDef.parse(r.xml);
  if (uuid && actual.childText("uuid")?.toLowerCase() !== uuid) return { id: "", props: {} };
  if (actual.name !== id || notOwnedReason(actual, ownerOf(props))) return { id: "", props: {} };
  const caps = await probe(backend.uri);
  const outs = buildOutputs(
    { ...props, xml: props.desiredXml ?? props.xml },
    r,
    caps,
    props.pendingRestart === true,
    stringList(props.pendingChanges),
  );
  // Drift shows in the refresh diff: the actual XML, the power state and `running`. A running
  // domain keeps `running` as the program gave it (absent stays absent: an added key would be a
  // change on every later preview); a stopped one reads `running: false`, which is drift unless
  // the program asked for it.
  const running = r.state === "running" ? props.running : false;
  return { id, props: running === undefined ? outs : { ...outs, running } };
}

/** `update`: redefine keeping the uuid; start/stop to match `running`; restart only when needed and allowed. */
export async function update(
  id: string,
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
): Promise<{ outs: DomainOutputs }> {
  const backend = backendFor(uriOf(news));
  return backend.withLock(id, () => updateLocked(backend, id, olds, news));
}

async function updateLocked(
  backend: DomainBackend,
  id: string,
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
): Promise<{ outs: DomainOutputs }> {
  const current = await backend.read({ name: id, uuid: recordedUuid(olds) }, { fresh: true });
  if (!current) {
    // Recorded by a create that failed before the domain existed: finish creating it.
    if (olds.uuid === undefined) return { outs: (await createLocked(backend, news)).outs };
    throw new Error(
      `domain ${id} no longer exists on ${backend.uri}; fix: run \`pulumi refresh\`, then \`pulumi up\` re-creates it`,
    );
  }
  const currentDef = DomainDef.parse(current.xml);
  const notOurs =
    currentDef.name !== id
      ? `it is now named ${JSON.stringify(currentDef.name)}`
      : notOwnedReason(currentDef, ownerOf(olds));
  if (notOurs)
    throw new Error(`refusing to update domain ${id} on ${backend.uri}: ${notOurs}; fix: run \`pulumi refresh\``);
  const ref = { name: id, uuid: currentDef.childText("uuid")!.toLowerCase() };
  const desired = DomainDef.parse(news.xml as string);
  desired.setChildText("uuid", ref.uuid);
  const changes = xmlChanges(news.xml as string, current.xml);
  const textChanged = news.xml !== olds.desiredXml;
  // Classified against the running state; what libvirt can apply live is applied first (lifecycle/live.ts).
  const live = await liveUpdate(backend, ref, changes, desired, currentDef, current.state);
  if (live.remaining.length || (textChanged && changes.length === 0)) {
    try {
      await backend.define(desired.format());
    } catch (e) {
      const kept = live.applied.length
        ? `the changes applied live (${live.applied.map((c) => c.path).join(", ")}) stay; the rest of the definition is the previous one`
        : "the domain keeps its previous definition";
      throw new Error(`redefine ${id} failed: ${errorText(e)}; ${kept}`, { cause: e });
    }
  }
  const needsRestart =
    maxClass(live.remaining.map((c) => c.class)) === "restart" ||
    (textChanged &&
      changes.length === 0 &&
      olds.desiredXml !== undefined &&
      xmlChanges(olds.desiredXml as string, news.xml as string).some((c) => c.class === "restart"));
  const timeout = (news.shutdownTimeoutSeconds as number | undefined) ?? DEFAULT_SHUTDOWN_TIMEOUT_SECONDS;
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
  return { outs: await outputsFor(backend, news, ref, { pendingRestart, pendingChanges }) };
}

/** `delete`: graceful shutdown, then undefine with NVRAM; refuses domains that are not ours. */
export async function remove(id: string, props: Record<string, unknown>): Promise<void> {
  const backend = backendFor(uriOf(props));
  return backend.withLock(id, () => removeLocked(backend, id, props));
}

async function removeLocked(backend: DomainBackend, id: string, props: Record<string, unknown>): Promise<void> {
  const timeout = (props.shutdownTimeoutSeconds as number | undefined) ?? DEFAULT_SHUTDOWN_TIMEOUT_SECONDS;
  const uuid = recordedUuid(props);
  // Ours only with our mark and whole owner identity, and the recorded uuid; a domain renamed
  // behind our back is no longer the one this resource names, and is left alone (as a gone one).
  const judge = (r: { xml: string }): "remove" | "gone" => {
    const actual = DomainDef.parse(r.xml);
    if (uuid && actual.childText("uuid")?.toLowerCase() !== uuid) {
      throw new Error(
        `refusing to delete domain ${id} on ${backend.uri}: its uuid ${actual.childText("uuid")} is not the recorded ${uuid} (another domain took the name); fix: \`pulumi refresh\``,
      );
    }
    if (actual.name !== id) return "gone";
    const notOurs = notOwnedReason(actual, ownerOf(props));
    if (notOurs)
      throw new Error(
        `refusing to delete domain ${id} on ${backend.uri}: ${notOurs}; fix: remove it from the state with \`pulumi state delete\``,
      );
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

/**
 * The provider object the shim forwards to (DynamicProvider's method names), behind the secrets
 * boundary: domain XML holding a password goes back to the engine as a secret, and no error or
 * check failure quotes a password.
 */
export const provider = withSecrets({ check, diff, create, read, update, delete: remove });
