/**
 * The Domain resource's Pulumi adapter: check, diff, create, read, update, delete as the
 * dynamic-provider host calls them, over the lifecycle in `provider/lifecycle/domain.ts` (virsh
 * or QEMU directly, by the connection URI). It views the engine's untyped objects through the
 * types of `./types.ts` where they come in, and shapes the results back; nothing here is
 * serialized, and nothing keeps state between calls except the lifecycle's per-process probe cache.
 *
 * - `check` runs every validation and identity rule and probes the connection, so
 *   `pulumi preview` reports bad input per property before anything is touched. The checked
 *   `xml` input is the canonical desired XML.
 * - `diff` replaces only for name, domain type, connection or the explicit trigger.
 * - {@link provider} puts it all behind the secrets boundary (`withSecrets`).
 */
import { resolveMode } from "../backends/capabilities";
import type { LibvirtCapabilities } from "../backends/domain-backend";
import { readFirmwareDescriptors } from "../backends/qemu/firmware-descriptors";
import { directChannelDir, hostMemoryInfo, isDirectUri } from "../backends/qemu/direct";
import { composeDomain, ComposeError } from "../desired/compose";
import { InputFailure, validateInputs } from "../desired/inputs";
import {
  createDomain,
  probe,
  readDomainState,
  removeDomain,
  updateDomain,
  uriOf,
  xmlChanges,
} from "../lifecycle/domain";
import { errorText, LifecycleError } from "../lifecycle/errors";
import { buildQemuArgv } from "../qemu/argv";
import { DomainDef } from "../xml/domain";
import { DomainXmlError } from "../xml/errors";
import { DomainProviderMethods, withSecrets } from "./secrets";
import { DOMAIN_INPUT_KEYS, DomainCheckedInputs, DomainInputs, DomainOutputs, DomainRecorded } from "./types";

/** An object as the engine sends it: any keys, engine-private ones (`__provider`) included. */
type EngineObject = Record<string, unknown>;

/** The object without the engine's own keys (`__provider`, ...). */
function stripEngineKeys(o: EngineObject): EngineObject {
  const r: EngineObject = {};
  for (const [k, v] of Object.entries(o)) if (!k.startsWith("__")) r[k] = v;
  return r;
}

/**
 * The engine's inputs as checked inputs: `check` validated and composed them (`xml` is the
 * desired XML) before the engine passes them to create or update.
 */
function checkedInputs(o: EngineObject): DomainCheckedInputs {
  return stripEngineKeys(o) as unknown as DomainCheckedInputs;
}

/** A recorded state as the engine hands it back (any key may be missing). */
function recorded(o: EngineObject): DomainRecorded {
  return stripEngineKeys(o);
}

/** Outputs as the engine takes them. */
function toEngine(o: DomainOutputs): EngineObject {
  return { ...o };
}

/** `check`: validate, probe, compose; the checked `xml` is the canonical desired XML. */
export async function check(
  olds: EngineObject,
  news: EngineObject,
): Promise<{ inputs: EngineObject; failures: InputFailure[] }> {
  // Not yet validated: `validateInputs` checks every key's type before anything uses it.
  const inputs = stripEngineKeys(news) as unknown as DomainInputs;
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
    if (hostLabel(inputs)) return uncheckedOnHost(olds, news, inputs);
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
        const def = ensureUuid(composed.def);
        // QEMU runs on this host: its NUMA nodes, hugetlbfs, firmware descriptors; the guest agent's socket in the domain's directory
        buildQemuArgv(def, {
          ...hostMemoryInfo(),
          firmware: readFirmwareDescriptors(),
          channelTargetDir: directChannelDir(uri, def.name ?? ""),
        });
      } catch (e) {
        if (DomainXmlError.isInstance(e))
          return { inputs: news, failures: [{ property: "xml", reason: `xml: ${e.message}` }] };
        throw e;
      }
    }
    const checked = { xml: composed.xml, resolvedHwuuidMode: mode } satisfies Partial<DomainCheckedInputs>;
    return { inputs: { ...news, ...checked }, failures: [] };
  } catch (e) {
    if (ComposeError.isInstance(e)) return { inputs: news, failures: e.failures };
    throw e;
  }
}

/**
 * `check` of a member of a fleet on several hosts (its connection names its host) whose host does
 * not answer. Not a check failure: that would stop the whole deployment, every other host's
 * members with it. A member recorded before is composed with its recorded hwuuid mode (no
 * capabilities needed), so an unchanged member shows no change and is left alone; anything else
 * goes on unchecked (no resolved mode), and `create`/`update` refuse it naming the host.
 */
function uncheckedOnHost(
  olds: EngineObject,
  news: EngineObject,
  inputs: DomainInputs,
): { inputs: EngineObject; failures: InputFailure[] } {
  const mode = olds.resolvedHwuuidMode;
  if (mode === "native" || mode === "passthrough") {
    try {
      const composed = composeDomain(inputs, mode, inputs.adopt === true);
      return { inputs: { ...news, xml: composed.xml, resolvedHwuuidMode: mode }, failures: [] };
    } catch (e) {
      if (!ComposeError.isInstance(e)) throw e;
      return { inputs: news, failures: e.failures };
    }
  }
  const { resolvedHwuuidMode: _unchecked, ...rest } = news;
  return { inputs: rest, failures: [] };
}

/** Refuses inputs `check` could not check (their host did not answer), naming the host. */
function requireChecked(i: EngineObject): void {
  if (i.resolvedHwuuidMode === "native" || i.resolvedHwuuidMode === "passthrough") return;
  const uri = uriOf(i);
  throw new LifecycleError(`libvirt at ${uri} did not answer when this domain was checked, so it was not composed`, {
    path: "connection.uri",
    fix: `start the libvirt daemon on that host (\`virsh -c ${uri} version\` must answer), then run \`pulumi up\` again`,
  });
}

/** ` (host NAME)` when the connection names its host (a DomainFleet on several hosts), else empty. */
function hostLabel(i: { readonly connection?: { readonly host?: unknown } }): string {
  const h = i.connection?.host;
  return typeof h === "string" && h !== "" ? ` (host ${h})` : "";
}

/**
 * Runs a create, update or delete. An error from it names the host and its URI first when the
 * connection names its host (a DomainFleet on several hosts): message and reasons, changed in place
 * as the secrets boundary does. A half-made domain's error (a DomainInitError: the engine
 * records its `properties`) keeps the engine's `__provider` key, so a `destroy` right after can
 * load the provider to remove it.
 */
async function onHost<T>(i: EngineObject, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const conn = i.connection as { uri?: string; host?: unknown } | undefined;
    const err = e as { message?: unknown; stack?: unknown; reasons?: unknown; properties?: unknown };
    if (hostLabel({ connection: conn }) && e instanceof Error && !e.message.startsWith("host ")) {
      const head = `host ${String(conn?.host)} (${uriOf({ connection: conn })}): `;
      const was = e.message;
      e.message = head + was;
      if (typeof err.stack === "string") err.stack = err.stack.replace(was, e.message);
      if (Array.isArray(err.reasons))
        err.reasons = err.reasons.map((r: unknown) => (typeof r === "string" ? head + r : r));
    }
    if (typeof err.properties === "object" && err.properties !== null && i.__provider !== undefined)
      (err.properties as EngineObject).__provider ??= i.__provider;
    throw e;
  }
}

/** A copy with a placeholder uuid, for checking that a command line can be built. */
function ensureUuid(def: DomainDef): DomainDef {
  const d = def.clone();
  if (!d.childText("uuid")) d.setChildText("uuid", "00000000-0000-4000-8000-000000000001");
  return d;
}

/** Inputs whose change re-creates the domain. */
const REPLACE_KEYS = ["name", "replaceTrigger"] as const satisfies readonly (keyof DomainInputs)[];

/** Inputs whose output of the same name means something else. */
const OUTPUT_SHADOWED: ReadonlySet<string> = new Set<keyof DomainInputs>(["xml", "hwuuidMode"]);

/** The Domain's input keys (from {@link DOMAIN_INPUT_KEYS}). */
const INPUT_KEYS: ReadonlySet<string> = new Set(DOMAIN_INPUT_KEYS);

function domainType(xml: unknown): string | undefined {
  try {
    return typeof xml === "string" ? DomainDef.parse(xml).type : undefined;
  } catch {
    return undefined;
  }
}

/** `diff`: replaces only for name, domain type, connection or the explicit trigger. */
export async function diff(
  _id: string,
  olds: EngineObject,
  news: EngineObject,
): Promise<{ changes: boolean; replaces: string[]; deleteBeforeReplace: boolean }> {
  const replaces: string[] = REPLACE_KEYS.filter((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]));
  if (uriOf(recorded(olds)) !== uriOf(recorded(news))) replaces.push("connection");
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
  for (const k of Object.keys(o)) if (!inputKeys.has(k) && INPUT_KEYS.has(k) && !OUTPUT_SHADOWED.has(k)) changes = true;
  const desiredNow = typeof n.xml === "string" ? n.xml : undefined;
  if (desiredNow && desiredNow !== o.desiredXml) changes = true;
  // Drift: the actual XML (from the last create/update/refresh) lacks what is desired.
  if (desiredNow && typeof o.xml === "string" && xmlChanges(desiredNow, o.xml).length) changes = true;
  const wantRunning = n.running !== false;
  if (typeof o.state === "string" && (o.state === "running") !== wantRunning) changes = true;
  const nameStays = !replaces.includes("name");
  return { changes, replaces, deleteBeforeReplace: replaces.length > 0 && nameStays };
}

/** `create`: define (validated), start when running; on failure remove what it made. */
export async function create(inputs: EngineObject): Promise<{ id: string; outs: DomainOutputs }> {
  const i = checkedInputs(inputs);
  return { id: i.name, outs: await createDomain(i) };
}

/**
 * `read`: the actual state, read by the recorded uuid. A vanished domain, one renamed, or one
 * without our mark and whole owner identity gives an empty id (not ours: nothing of it is shown).
 */
export async function read(id: string, props: EngineObject): Promise<{ id: string; props: EngineObject }> {
  const outs = await readDomainState(id, recorded(props));
  return outs ? { id, props: toEngine(outs) } : { id: "", props: {} };
}

/** `update`: redefine keeping the uuid; start/stop to match `running`; restart only when needed and allowed. */
export async function update(id: string, olds: EngineObject, news: EngineObject): Promise<{ outs: DomainOutputs }> {
  return { outs: await updateDomain(id, recorded(olds), checkedInputs(news)) };
}

/** `delete`: graceful shutdown, then undefine with NVRAM; refuses domains that are not ours. */
export async function remove(id: string, props: EngineObject): Promise<void> {
  return removeDomain(id, recorded(props));
}

/**
 * The provider object the shim forwards to (DynamicProvider's method names), behind the secrets
 * boundary: domain XML holding a password goes back to the engine as a secret, and no error or
 * check failure quotes a password.
 */
export const provider: DomainProviderMethods = withSecrets({
  check,
  diff,
  create: async (inputs) => {
    const r = await onHost(inputs, () => (requireChecked(inputs), create(inputs)));
    return { id: r.id, outs: toEngine(r.outs) };
  },
  read,
  update: async (id, olds, news) => ({
    outs: toEngine((await onHost(news, () => (requireChecked(news), update(id, olds, news)))).outs),
  }),
  delete: (id, props) => onHost(props, () => remove(id, props)),
} satisfies DomainProviderMethods);
