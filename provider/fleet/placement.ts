/**
 * Where the members of a fleet spread over several hosts live, and the checks that keep a guest
 * identity single across those hosts.
 *
 * The placement rule ({@link placeMembers}), in order, for each member key:
 * 1. Explicit: a key in `placement` goes to the host named there.
 * 2. Stays: a member found at plan time on a reachable listed host, and proven ours there (the
 *    domain of its planned name carries our ownership mark naming this member's resource and that
 *    host's URI), stays on that host; found on several, it stays on the first of them in `hosts`
 *    order (the engine removes the other copy it recorded).
 * 3. Conservative when a host is unreachable: a member neither placed nor found may live on a host
 *    that could not be read, so it is never put on a reachable host (that could make a second copy
 *    of its guest identity): it goes to an unreachable host (the one of them with the fewest
 *    members of this fleet, ties by `hosts` order), where it fails naming that host until the host
 *    answers again.
 * 4. Spread: every other member, in key order, goes to the host with the fewest members of this
 *    fleet so far (placed, stayed or spread), ties by the order of `hosts`.
 *
 * So adding a host moves no member (every member is found where it is), and removing a host
 * moves only the members that were on it (they are spread over the rest).
 *
 * Pure: no I/O, no Pulumi.
 */
import type { MemberPlan, PlanRefusal } from "./plan";

/** What planning found on one host. */
export type HostObservation =
  /** The host answered: these member keys live there and are proven ours. */
  | { readonly reachable: true; readonly members: ReadonlySet<string> }
  /** The host could not be read; `error` says why. */
  | { readonly reachable: false; readonly error: string };

/** The inputs of {@link placeMembers}. */
export interface PlacementInput {
  /** Member keys, in order. */
  readonly keys: readonly string[];
  /** Host names, in the fleet's order (ties go to the earlier one). */
  readonly hosts: readonly string[];
  /** Explicit placement: member key -> host name. */
  readonly placement?: Readonly<Record<string, string>>;
  /** What each host holds, by host name; a host missing here counts as reachable and empty. */
  readonly observed?: Readonly<Record<string, HostObservation>>;
}

/** Why a member went where it did. */
export type PlacementReason = "explicit" | "stays" | "unreachable" | "spread";

/** Where the members go, and why. */
export interface Placement {
  /** Member key -> host name. */
  readonly hostOf: Record<string, string>;
  /** Member key -> the rule that placed it. */
  readonly reason: Record<string, PlacementReason>;
  /** Placement arguments that cannot be used (an unknown host or key). */
  readonly refusals: PlanRefusal[];
}

/** Places each member on a host by the rule in this module's description. Never throws. */
export function placeMembers(p: PlacementInput): Placement {
  const hostOf: Record<string, string> = {};
  const reason: Record<string, PlacementReason> = {};
  const refusals: PlanRefusal[] = [];
  const hostSet = new Set(p.hosts);
  const keySet = new Set(p.keys);
  const count = new Map(p.hosts.map((h) => [h, 0]));
  const put = (key: string, host: string, why: PlacementReason) => {
    hostOf[key] = host;
    reason[key] = why;
    count.set(host, (count.get(host) ?? 0) + 1);
  };
  const observed = (h: string): HostObservation => p.observed?.[h] ?? { reachable: true, members: new Set() };
  for (const [key, host] of Object.entries(p.placement ?? {})) {
    if (!keySet.has(key))
      refusals.push({ key, path: `placement.${key}`, reason: `no member has the key ${JSON.stringify(key)}` });
    else if (!hostSet.has(host))
      refusals.push({
        key,
        path: `placement.${key}`,
        reason: `${JSON.stringify(host)} is not one of the hosts (${p.hosts.join(", ")})`,
      });
  }
  // 1. explicit
  for (const key of p.keys) {
    const host = p.placement?.[key];
    if (host !== undefined && hostSet.has(host)) put(key, host, "explicit");
  }
  // 2. stays where it is found
  for (const key of p.keys) {
    if (hostOf[key] !== undefined) continue;
    const found = p.hosts.find((h) => {
      const o = observed(h);
      return o.reachable && o.members.has(key);
    });
    if (found !== undefined) put(key, found, "stays");
  }
  // 3. an unreachable host may hold any member not found elsewhere
  const unreachable = p.hosts.filter((h) => !observed(h).reachable);
  // 4. spread (over the unreachable hosts only, when there are some)
  const targets = unreachable.length ? unreachable : p.hosts;
  for (const key of p.keys) {
    if (hostOf[key] !== undefined || !targets.length) continue;
    let best = targets[0]!;
    for (const h of targets) if ((count.get(h) ?? 0) < (count.get(best) ?? 0)) best = h;
    put(key, best, unreachable.length ? "unreachable" : "spread");
  }
  return { hostOf, reason, refusals };
}

/** One member's plan and its host, for {@link crossHostRefusals}. */
export interface PlacedMember {
  readonly host: string;
  readonly member: Pick<MemberPlan, "key" | "name" | "hwuuid" | "macs">;
}

/**
 * Names, hwuuids and MACs are global to a fleet: refusals for every two members on different
 * hosts that would share one (members on one host are checked by the planner itself).
 * @param allowSharedHwuuid true for the `keep` policy of a one-member fleet
 */
export function crossHostRefusals(members: readonly PlacedMember[], allowSharedHwuuid = false): PlanRefusal[] {
  const refusals: PlanRefusal[] = [];
  const seen = {
    name: new Map<string, PlacedMember>(),
    hwuuid: new Map<string, PlacedMember>(),
    MAC: new Map<string, PlacedMember>(),
  };
  const check = (kind: keyof typeof seen, value: string | undefined, m: PlacedMember, path: string) => {
    if (value === undefined) return;
    const v = value.toLowerCase();
    const other = seen[kind].get(v);
    if (other && other.host !== m.host)
      refusals.push({
        key: m.member.key,
        path,
        reason: `members ${other.member.key} (host ${other.host}) and ${m.member.key} (host ${m.host}) would share the ${kind} ${value}; names, hwuuids and MACs are global to a fleet`,
      });
    if (!other) seen[kind].set(v, m);
  };
  for (const m of members) {
    check("name", m.member.name, m, "namePattern");
    if (!allowSharedHwuuid) check("hwuuid", m.member.hwuuid, m, "hwuuidPolicy");
    for (const mac of m.member.macs) check("MAC", mac, m, "template interface MAC");
  }
  return refusals;
}
