/**
 * The CI preview report: `pulumi preview --json` in, Markdown out. Per domain: the action
 * (create, update, replace, delete), the semantic XML changes by path (old -> new), which need a
 * restart, and the guest UUID before -> after.
 *
 * Pure: no I/O, no Pulumi.
 */
import { diffDomains, DomainChange, maxClass } from "../diff/semantic";
import { DomainDef } from "../xml/domain";
import { resolveIdentity } from "../xml/identity";
import { uuidPassthrough } from "../spec/compose";

/** What one domain's preview step means. */
export interface DomainPreview {
  readonly name: string;
  readonly action: "create" | "update" | "replace" | "delete";
  readonly changes: DomainChange[];
  /** Some change needs a restart of a running domain (or the domain is re-created). */
  readonly restart: boolean;
  readonly guestUuidBefore: string | null;
  readonly guestUuidAfter: string | null;
  /** Why the engine replaces it (property names), for replace. */
  readonly replaceReasons: string[];
}

/** The part of `pulumi preview --json` we read. */
interface PreviewStep {
  op: string;
  urn: string;
  oldState?: { type?: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> };
  newState?: { type?: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> };
  replaceReasons?: string[];
}

const ACTIONS: Record<string, DomainPreview["action"] | undefined> = {
  create: "create",
  update: "update",
  replace: "replace",
  "create-replacement": "replace",
  "delete-replaced": "replace",
  delete: "delete",
};

function isDomain(s: PreviewStep): boolean {
  const t = s.newState?.type ?? s.oldState?.type ?? s.urn.split("::")[2] ?? "";
  return t.includes("dynamic/libvirt-domain:Resource") || t.endsWith("libvirt-domain:Domain");
}

function guestUuidOf(xml: unknown): string | null {
  if (typeof xml !== "string") return null;
  try {
    const def = DomainDef.parse(xml);
    return resolveIdentity(def).hwuuid ?? uuidPassthrough(def) ?? null;
  } catch {
    return null;
  }
}

/** Reads the domain steps of a `pulumi preview --json` document. */
export function readPreview(json: unknown): DomainPreview[] {
  const steps = ((json as { steps?: PreviewStep[] })?.steps ?? []).filter(isDomain);
  const seen = new Set<string>();
  const out: DomainPreview[] = [];
  for (const s of steps) {
    const action = ACTIONS[s.op];
    if (!action || seen.has(s.urn)) continue;
    seen.add(s.urn);
    const oldOut = s.oldState?.outputs ?? {};
    const newIn = s.newState?.inputs ?? {};
    const name = String(newIn.name ?? oldOut.name ?? s.urn.split("::").pop());
    let changes: DomainChange[] = [];
    if ((action === "update" || action === "replace") && typeof newIn.xml === "string" && typeof oldOut.xml === "string") {
      changes = diffDomains(DomainDef.parse(newIn.xml), DomainDef.parse(oldOut.xml)).changes.filter((c) => c.path !== "/domain/uuid");
    }
    const before = action === "create" ? null : (oldOut.guestUuid as string | undefined) ?? null;
    const after = action === "delete" ? null : guestUuidOf(newIn.xml);
    out.push({
      name,
      action,
      changes,
      restart: action === "replace" || maxClass(changes.map((c) => c.class)) === "restart",
      guestUuidBefore: before,
      guestUuidAfter: after,
      replaceReasons: s.replaceReasons ?? [],
    });
  }
  return out;
}

function cell(s: string | null | undefined): string {
  if (s === null || s === undefined || s === "") return "-";
  const one = s.replace(/\s*\n\s*/g, " ").replace(/\|/g, "\\|");
  return "`" + (one.length > 120 ? one.slice(0, 117) + "..." : one).replace(/`/g, "'") + "`";
}

function guestCell(p: DomainPreview): string {
  const b = p.guestUuidBefore;
  const a = p.guestUuidAfter;
  if (p.action === "create") return a ? `new: ${cell(a)}` : "new (the libvirt uuid)";
  if (p.action === "delete") return `${cell(b)} -> gone`;
  if (a === null && p.action === "replace") return `${cell(b)} -> a new libvirt uuid (no hwuuid)`;
  if (b === a || (a === null && p.action === "update")) return `${cell(b)} (unchanged)`;
  return `${cell(b)} -> ${cell(a)}`;
}

/** Formats the report as Markdown. */
export function formatPreviewReport(previews: DomainPreview[], summary?: Record<string, number>): string {
  const lines: string[] = ["## Libvirt domains in this preview", ""];
  if (previews.length === 0) {
    lines.push("No domain changes.");
    return lines.join("\n") + "\n";
  }
  lines.push("| domain | action | restart | guest UUID |", "|---|---|---|---|");
  for (const p of previews) {
    const restart = p.action === "replace" ? "re-created" : p.action === "update" ? (p.restart ? "needed" : "no") : "-";
    lines.push(`| ${cell(p.name)} | ${p.action}${p.replaceReasons.length ? ` (${p.replaceReasons.join(", ")})` : ""} | ${restart} | ${guestCell(p)} |`);
  }
  for (const p of previews.filter((x) => x.changes.length > 0)) {
    lines.push("", `### ${p.name}: ${p.action}`, "", "| path | old | new | applies |", "|---|---|---|---|");
    for (const c of p.changes) lines.push(`| ${cell(c.path)} | ${cell(c.old)} | ${cell(c.new)} | ${c.class} |`);
  }
  if (summary) {
    const parts = Object.entries(summary).map(([k, v]) => `${v} ${k}`);
    lines.push("", `Resources: ${parts.join(", ")}.`);
  }
  return lines.join("\n") + "\n";
}

/** The whole step: JSON text in, Markdown out. */
export function previewReport(jsonText: string): string {
  const json = JSON.parse(jsonText) as { changeSummary?: Record<string, number> };
  return formatPreviewReport(readPreview(json), json.changeSummary);
}
