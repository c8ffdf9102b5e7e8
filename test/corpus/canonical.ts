/**
 * The canonical form the corpus round trip compares: what "lossless" means, computed without
 * the project's own tree code (provider/xml/tree.ts), straight from the XML parser's tokens.
 *
 * Two documents are the same document when their canonical forms are equal. The canonical form
 * keeps, in document order:
 * - every element, by its qualified name as written (prefix included: `qemu:arg` and `ns0:arg`
 *   are different names even when both prefixes are bound to the same namespace URI);
 * - its attributes as a set of (qualified name, value) pairs, values with character and entity
 *   references decoded (attribute order carries no meaning in XML); namespace declarations
 *   (`xmlns`, `xmlns:p`) are attributes like any other, so a dropped or changed declaration is
 *   a loss;
 * - character data, with CDATA sections and entity references decoded and adjacent runs merged
 *   (`a<![CDATA[b]]>` is `ab`), byte for byte: no trimming;
 * - comments, verbatim, inside the root and around it;
 * - processing instructions other than the XML declaration.
 * It drops only the whitespace-only character data of element content (the text between child
 * elements of an element that has no other character data): that is layout, which the
 * formatter re-creates. Whitespace in mixed content is kept.
 *
 * Not compared: the XML declaration (version/encoding; the formatter writes UTF-8 without one,
 * as virsh dumpxml does), the quote style of attributes and the spelling of empty elements.
 */
import { XMLParser } from "fast-xml-parser";

type Raw = Record<string, unknown>;

const RAW_OPTIONS = {
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: "",
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  commentPropName: "#comment",
  cdataPropName: "#cdata",
  processEntities: false,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: false,
  allowBooleanAttributes: false,
  removeNSPrefix: false,
} as const;

const NAMED: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

function decode(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);/g, (_, body: string) =>
    body[0] === "#"
      ? String.fromCodePoint(body[1] === "x" ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10))
      : (NAMED[body] ?? `&${body};`),
  );
}

function textOf(list: Raw[]): string {
  return list.map((x) => String((x["#text"] ?? "") as string | number | boolean)).join("");
}

/** One canonical node: `E name attrs [children]`, `T text`, `C comment`, `P target data`. */
type Canon = string | [string, string[], Canon[]];

function canonNodes(list: Raw[]): Canon[] {
  const out: Canon[] = [];
  let text: string | undefined;
  const flush = () => {
    if (text !== undefined) out.push("T" + text);
    text = undefined;
  };
  for (const n of list) {
    const key = Object.keys(n).find((k) => k !== ":@");
    if (key === undefined) continue;
    const v = n[key];
    if (key === "#text") {
      text = (text ?? "") + decode(String(v));
    } else if (key === "#cdata") {
      text = (text ?? "") + textOf(v as Raw[]);
    } else if (key === "#comment") {
      flush();
      out.push("C" + textOf(v as Raw[]));
    } else if (key.startsWith("?")) {
      flush();
      if (key === "?xml") continue;
      const attrs = (n[":@"] ?? {}) as Record<string, string>;
      out.push("P" + key.slice(1) + " " + JSON.stringify(attrs));
    } else {
      flush();
      const attrs = (n[":@"] ?? {}) as Record<string, string>;
      const pairs = Object.keys(attrs)
        .map((a) => `${a}=${JSON.stringify(decode(String(attrs[a])))}`)
        .sort();
      out.push([key, pairs, dropLayout(canonNodes(v as Raw[]))]);
    }
  }
  flush();
  return out;
}

/** Whitespace-only text between children is layout when the element has no other text. */
function dropLayout(children: Canon[]): Canon[] {
  const structured = children.some((c) => typeof c !== "string" || c[0] === "C" || c[0] === "P");
  const mixed = children.some((c) => typeof c === "string" && c[0] === "T" && c.slice(1).trim() !== "");
  if (!structured || mixed) return children;
  return children.filter((c) => !(typeof c === "string" && c[0] === "T"));
}

/**
 * The canonical form of a document, as one string (one node a line, indented by depth), or
 * throws when the parser cannot read it.
 */
export function canonicalXml(text: string): string {
  const raw = new XMLParser(RAW_OPTIONS).parse(text) as Raw[];
  const top = canonNodes(raw).filter((c) => !(typeof c === "string" && c[0] === "T" && c.slice(1).trim() === ""));
  const lines: string[] = [];
  const emit = (c: Canon, depth: number) => {
    const pad = " ".repeat(depth);
    if (typeof c === "string") {
      lines.push(pad + JSON.stringify(c));
      return;
    }
    lines.push(`${pad}<${c[0]}${c[1].length ? " " + c[1].join(" ") : ""}>`);
    for (const k of c[2]) emit(k, depth + 1);
  };
  for (const c of top) emit(c, 0);
  return lines.join("\n");
}

/** The first line where two canonical forms differ, for a readable report. */
export function firstDifference(a: string, b: string): string {
  const al = a.split("\n");
  const bl = b.split("\n");
  for (let i = 0; i < Math.max(al.length, bl.length); i++) {
    if (al[i] !== bl[i]) return `node ${i + 1}: ${al[i] ?? "(none)"} -> ${bl[i] ?? "(none)"}`;
  }
  return "";
}
