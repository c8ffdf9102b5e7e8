/**
 * The CI preview report: `pulumi preview --json` in, Markdown out. Per domain: the action
 * (create, update, replace, delete), the semantic XML changes by path (old -> new), each with its
 * class against the domain's state (`live`: applied to the running guest; `next-boot`;
 * `restart`; `replace`), which need a restart, and the guest UUID before -> after.
 *
 * Secrets: `pulumi preview --json` shows a secret value as `"[secret]"`; the Domain's XML is a
 * secret when it holds security info (a graphics password), so the report says that the XML
 * changes of that domain are hidden. Where the XML is readable anyway (a state written before
 * the XML was made secret, or a preview run with secrets shown), the semantic diff redacts the
 * passwords at the source, so the report never carries one.
 *
 * Pure: no I/O, no Pulumi.
 */
import { classifyChanges, diffDomains, DomainChange, maxClass } from "../diff/semantic";
import { DomainDef } from "../xml/domain";
import { resolveIdentity, uuidPassthrough } from "../xml/identity";
import { normalizeUuid } from "../xml/uuid";

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
  /** The XML is a secret in the preview (it holds a password): its changes (or guest UUID) cannot be shown. */
  readonly xmlHidden: boolean;
  /** With the XML hidden: the other inputs that change (typed fields, which are not secret), as JSON. */
  readonly inputChanges: { readonly input: string; readonly old: string | null; readonly new: string | null }[];
}

/** Typed inputs whose change needs a restart of a running domain. */
const RESTART_INPUTS = new Set([
  "memory",
  "vcpus",
  "machine",
  "firmware",
  "disks",
  "interfaces",
  "hwuuid",
  "resolvedHwuuidMode",
]);

/** Inputs that change between two input sets, leaving out the XML and the engine's keys. */
function changedInputs(olds: Record<string, unknown>, news: Record<string, unknown>): DomainPreview["inputChanges"] {
  const keys = [...new Set([...Object.keys(olds), ...Object.keys(news)])]
    .filter((k) => k !== "xml" && k !== "desiredXml" && !k.startsWith("__"))
    .sort();
  const json = (v: unknown) => (v === undefined ? null : JSON.stringify(v));
  return keys
    .filter((k) => json(olds[k]) !== json(news[k]))
    .map((k) => ({ input: k, old: json(olds[k]), new: json(news[k]) }));
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

/** Pulumi's secret sentinel (`specialSigKey`, `specialSecretSig`), as it may appear in JSON. */
const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

/**
 * A domain XML value of a preview: the parsed domain, `hidden` when it is a secret (`"[secret]"`,
 * or a wrapped secret without its plaintext), or undefined when absent.
 */
function xmlValue(v: unknown): DomainDef | "hidden" | undefined {
  if (typeof v === "object" && v !== null && (v as Record<string, unknown>)[SECRET_SIG_KEY] === SECRET_SIG) {
    return xmlValue((v as Record<string, unknown>).value) ?? "hidden";
  }
  if (typeof v !== "string") return undefined;
  return v === "[secret]" ? "hidden" : DomainDef.parse(v);
}

function guestUuidOf(def: DomainDef | "hidden" | undefined): string | null {
  if (def === undefined || def === "hidden") return null;
  try {
    return resolveIdentity(def).hwuuid ?? uuidPassthrough(def) ?? null;
  } catch {
    return null;
  }
}

/**
 * The connection URI of a step (the default when none is given). A `qemu-direct:` URI names the
 * QEMU-direct backend, which applies no change live.
 */
function connectionUri(...props: Record<string, unknown>[]): string {
  for (const p of props) {
    const uri = (p.connection as { uri?: unknown } | undefined)?.uri;
    if (typeof uri === "string") return uri;
  }
  return "qemu:///system";
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
    const name =
      [newIn.name, oldOut.name].find((n): n is string => typeof n === "string") ?? s.urn.split("::").pop() ?? "";
    let changes: DomainChange[] = [];
    const desired = xmlValue(newIn.xml);
    const actual = xmlValue(oldOut.xml);
    const xmlHidden =
      (action !== "delete" && desired === "hidden") ||
      ((action === "update" || action === "replace") && actual === "hidden");
    if ((action === "update" || action === "replace") && desired instanceof DomainDef && actual instanceof DomainDef) {
      // Classified against the state the domain was in (as the update will): live where libvirt
      // applies it to the running guest, next-boot for a stopped domain.
      changes = classifyChanges(
        diffDomains(desired, actual).changes.filter((c) => c.path !== "/domain/uuid"),
        {
          running: oldOut.state !== "shut off",
          liveCapable: !connectionUri(newIn, oldOut).startsWith("qemu-direct:"),
          desired,
          actual,
        },
      );
    }
    const inputChanges =
      xmlHidden && (action === "update" || action === "replace") ? changedInputs(s.oldState?.inputs ?? {}, newIn) : [];
    const before = action === "create" ? null : ((oldOut.guestUuid as string | undefined) ?? null);
    // A hidden XML still has its hwuuid input beside it.
    const after =
      action === "delete"
        ? null
        : (guestUuidOf(desired) ??
          (desired === "hidden" && typeof newIn.hwuuid === "string" ? (normalizeUuid(newIn.hwuuid) ?? null) : null));
    out.push({
      name,
      action,
      changes,
      restart:
        action === "replace" ||
        maxClass(changes.map((c) => c.class)) === "restart" ||
        inputChanges.some((c) => RESTART_INPUTS.has(c.input)),
      guestUuidBefore: before,
      guestUuidAfter: after,
      replaceReasons: s.replaceReasons ?? [],
      xmlHidden,
      inputChanges,
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
  if (p.action === "create")
    return a ? `new: ${cell(a)}` : p.xmlHidden ? "new (not shown: secret XML)" : "new (the libvirt uuid)";
  if (p.action === "delete") return `${cell(b)} -> gone`;
  if (a === null && p.xmlHidden) return `${cell(b)} -> not shown (secret XML)`;
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
    const restart =
      p.action === "replace"
        ? "re-created"
        : p.action === "update"
          ? p.restart
            ? "needed"
            : p.xmlHidden
              ? "unknown (secret XML)"
              : "no"
          : "-";
    lines.push(
      `| ${cell(p.name)} | ${p.action}${p.replaceReasons.length ? ` (${p.replaceReasons.join(", ")})` : ""} | ${restart} | ${guestCell(p)} |`,
    );
  }
  for (const p of previews.filter((x) => x.xmlHidden && (x.action === "update" || x.action === "replace"))) {
    lines.push(
      "",
      `### ${p.name}: ${p.action}`,
      "",
      "The XML changes of this domain are hidden: its XML holds secrets (a graphics password), which the preview shows only as `[secret]`.",
    );
    if (p.inputChanges.length) {
      lines.push("", "| input | old | new |", "|---|---|---|");
      for (const c of p.inputChanges) lines.push(`| ${cell(c.input)} | ${cell(c.old)} | ${cell(c.new)} |`);
    }
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
