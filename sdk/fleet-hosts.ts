/**
 * What a fleet spread over several hosts reads from each host while the program runs: the
 * template (inactive XML with security info, and its state) and which members already live there,
 * proven ours the way the Domain proves it (our ownership mark naming the member's resource and
 * that host's URI, not the name alone). Synchronous: the plan is made before resources are declared.
 */
import { QemuDirectBackend, isDirectUri } from "../provider/backends/qemu/direct";
import { runVirshSync, VirshError } from "../provider/backends/virsh/exec";
import { parseUuidNameList, splitStateAndXml, virshQuote } from "../provider/backends/virsh/virsh-backend";
import { notOwnedReason } from "../provider/desired/compose";
import { DomainDef } from "../provider/xml/domain";

/** A member to look for on a host: its key, planned domain name and owner id (`project/stack/resource`). */
export interface MemberLookup {
  readonly key: string;
  readonly name: string;
  readonly ownerId: string;
}

/** What one host holds for a fleet. */
export type FleetHostRead =
  /** The host answered. `template` is undefined when it has no domain of the template's name. */
  | {
      readonly reachable: true;
      readonly template: { readonly xml: string; readonly state: string } | undefined;
      /** Keys of the members found there and proven ours. */
      readonly members: Set<string>;
    }
  /** The host could not be listed; `error` is libvirt's message. */
  | { readonly reachable: false; readonly error: string };

/** Bound on each virsh call while planning: an unanswering host must not stall the program. */
const HOST_READ_TIMEOUT_MS = 30000;

function messageOf(e: unknown): string {
  return VirshError.isInstance(e) ? e.libvirtMessage : (e as Error).message;
}

/** True when `xml` is a domain owned by `ownerId` through `uri`. */
function provenOurs(xml: string, ownerId: string, uri: string): boolean {
  try {
    return notOwnedReason(DomainDef.parse(xml), { ownerId, connection: uri }) === undefined;
  } catch {
    return false;
  }
}

/**
 * Reads the template and the fleet's members on one host: two virsh calls at most (the list, then
 * the template and every listed member in one), each bounded ({@link HOST_READ_TIMEOUT_MS}).
 * Never throws: a host that cannot be listed is `reachable: false`.
 */
export function readFleetHostSync(uri: string, templateName: string, lookups: readonly MemberLookup[]): FleetHostRead {
  if (isDirectUri(uri)) {
    try {
      const b = new QemuDirectBackend(uri);
      const members = new Set<string>();
      for (const l of lookups) {
        const r = b.readSync(l.name);
        if (r && provenOurs(r.xml, l.ownerId, uri)) members.add(l.key);
      }
      return { reachable: true, template: b.readSync(templateName), members };
    } catch (e) {
      return { reachable: false, error: messageOf(e) };
    }
  }
  let listed: Map<string, string>;
  try {
    listed = parseUuidNameList(
      runVirshSync(uri, ["list", "--all", "--uuid", "--name"], { timeoutMs: HOST_READ_TIMEOUT_MS }),
    );
  } catch (e) {
    return { reachable: false, error: messageOf(e) };
  }
  const templateUuid = listed.get(templateName);
  const found = lookups.filter((l) => listed.has(l.name));
  // By uuid (read from the name list): a name that is another domain's id or uuid reads nothing else.
  const commands: string[][] = [];
  if (templateUuid)
    commands.push(["domstate", templateUuid], ["dumpxml", "--inactive", "--security-info", templateUuid]);
  for (const l of found) commands.push(["dumpxml", "--inactive", listed.get(l.name)!]);
  if (!commands.length) return { reachable: true, template: undefined, members: new Set() };
  let out: string;
  try {
    out = runVirshSync(uri, [commands.map((c) => c.map(virshQuote).join(" ")).join(" ; ")], {
      timeoutMs: HOST_READ_TIMEOUT_MS,
    });
  } catch (e) {
    return { reachable: false, error: messageOf(e) };
  }
  const docs = out.split(/(?<=<\/domain>)\n?/).filter((d) => d.trim() !== "");
  let template: { xml: string; state: string } | undefined;
  if (templateUuid) {
    const t = splitStateAndXml(docs.shift() ?? "");
    template = { xml: t.xml, state: t.state };
  }
  const members = new Set<string>();
  found.forEach((l, i) => {
    const xml = docs[i];
    if (xml !== undefined && provenOurs(xml, l.ownerId, uri)) members.add(l.key);
  });
  return { reachable: true, template, members };
}
