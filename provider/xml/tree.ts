/**
 * The ordered XML tree: the source of truth for every document the project touches.
 *
 * Parsing keeps element order, attribute order, namespace prefixes, comments, CDATA and
 * processing instructions (`<?target data?>`, inside the root and around it, as libxml2 and so
 * libvirt keep them); the XML declaration is dropped, as libvirt's formatter writes none. Every
 * value stays a string. Formatting writes libvirt's style
 * (two-space indent, single-quoted attributes) so that what we do not model round-trips.
 * Whitespace-only text between elements is layout, not content: it is dropped on parse and
 * re-created on format.
 *
 * Pure: no I/O, no Pulumi.
 */
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { DomainXmlError } from "./errors";

/** A character XML 1.0 forbids: C0 controls but tab/LF/CR, U+FFFE/U+FFFF, and lone surrogates. */
/* eslint-disable no-control-regex -- matching the control characters XML 1.0 forbids is the point */
const NOT_XML_CHAR =
  /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/* eslint-enable no-control-regex */

/** An element: name (with its prefix, e.g. `qemu:arg`), ordered attributes and children. */
export interface XmlElement {
  readonly kind: "element";
  name: string;
  /** Attributes in document order; values decoded (no entities). */
  attrs: XmlAttr[];
  children: XmlNode[];
}

/** One attribute of an {@link XmlElement}. */
export interface XmlAttr {
  name: string;
  value: string;
}

/** Character data (entities decoded). */
export interface XmlText {
  readonly kind: "text";
  value: string;
}

/** A comment, kept verbatim. */
export interface XmlComment {
  readonly kind: "comment";
  value: string;
}

/** A CDATA section, kept as CDATA. */
export interface XmlCData {
  readonly kind: "cdata";
  value: string;
}

/** A processing instruction, `<?target value?>`, kept verbatim. */
export interface XmlProcessingInstruction {
  readonly kind: "pi";
  /** The target, e.g. `xml-stylesheet`. */
  target: string;
  /** Everything after the target and the white space that follows it; may be empty. */
  value: string;
}

/** Any node of the tree. */
export type XmlNode = XmlElement | XmlText | XmlComment | XmlCData | XmlProcessingInstruction;

/** What may stand before or after the root element: comments and processing instructions. */
export type XmlMisc = XmlComment | XmlProcessingInstruction;

/** A parsed document: the root element and the comments and processing instructions around it. */
export interface XmlDocument {
  /** Comments and processing instructions before the root element (not the XML declaration). */
  prolog: XmlMisc[];
  root: XmlElement;
  /** Comments and processing instructions after the root element. */
  epilog: XmlMisc[];
}

/** Largest document we read, in bytes: virsh's own limit for XML files (10 MiB). */
export const MAX_XML_BYTES = 10 * 1024 * 1024;

const PARSER_OPTIONS = {
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
  // Names are kept as written: fast-xml-parser renames `toString`, `valueOf`, `hasOwnProperty`...
  // (to `__toString`...) unless told not to, and refuses `__proto__`, `constructor`, `prototype`
  // unless they are mapped first. The three are mapped to a key no XML name can be (it starts
  // with `#`) and mapped back in `convert`; the raw tree is only read with `Object.keys`.
  onDangerousProperty: (name: string) => name,
  transformTagName: guardName,
  transformAttributeName: guardName,
};

/** Names fast-xml-parser refuses as object keys (prototype pollution); we map them, never refuse them. */
const CRITICAL_NAMES = new Set(["__proto__", "constructor", "prototype"]);
/** Marks a mapped name; `#` cannot start an XML name, so no real name carries it. */
const NAME_GUARD = "#name:";

function guardName(name: string): string {
  return CRITICAL_NAMES.has(name) ? NAME_GUARD + name : name;
}

function unguardName(key: string): string {
  return key.startsWith(NAME_GUARD) ? key.slice(NAME_GUARD.length) : key;
}

/**
 * Parses an XML document into an {@link XmlDocument}.
 *
 * Refuses (with a {@link DomainXmlError} at `path`): more than {@link MAX_XML_BYTES}, NUL bytes
 * or other binary data, DOCTYPE and entity declarations (never expanded), undefined entities,
 * and anything that is not well formed.
 */
export function parseXml(text: string, path = "/"): XmlDocument {
  if (Buffer.byteLength(text, "utf8") > MAX_XML_BYTES) {
    throw new DomainXmlError("document too large", {
      path,
      value: `${Buffer.byteLength(text, "utf8")} bytes`,
      allowed: `at most ${MAX_XML_BYTES} bytes (10 MiB)`,
      fix: "pass a domain XML document, not an image or an archive",
    });
  }
  // XML 1.0 characters only (U+FFFD is one); a lone surrogate cannot even be written as UTF-8.
  const bad = NOT_XML_CHAR.exec(text);
  if (bad) {
    throw new DomainXmlError("not an XML text document", {
      path,
      value: `character U+${bad[0].charCodeAt(0).toString(16).padStart(4, "0")} at offset ${bad.index}`,
      allowed: "UTF-8 text of XML 1.0 characters (no control characters other than tab, newline, carriage return)",
      fix: "pass a domain XML document (is this a binary file?)",
    });
  }
  const markup = stripCommentsAndCData(text);
  if (/<!DOCTYPE/i.test(markup) || /<!ENTITY/i.test(markup)) {
    throw new DomainXmlError("DOCTYPE and entity declarations are not allowed", {
      path,
      value: (/<!(DOCTYPE|ENTITY)[^>]{0,60}/i.exec(markup) ?? [""])[0],
      allowed: "a plain document whose root is <domain>",
      fix: "remove the <!DOCTYPE ...> block; libvirt domain XML never needs one",
    });
  }
  const valid = XMLValidator.validate(text, { allowBooleanAttributes: false });
  if (valid !== true) {
    throw new DomainXmlError("XML is not well formed", {
      path,
      value: `line ${valid.err.line}, column ${valid.err.col}: ${valid.err.msg}`,
      fix: "correct the XML syntax at that position",
    });
  }
  // fast-xml-parser reads a processing instruction's data as attributes (losing anything else):
  // the text of each comes from our own scan, in document order, which is the order convert() meets them.
  const pis = checkLikeLibxml2(text, path);
  const raw = new XMLParser(PARSER_OPTIONS).parse(text) as RawNode[];
  const prolog: XmlMisc[] = [];
  const epilog: XmlMisc[] = [];
  let root: XmlElement | undefined;
  for (const n of raw) {
    const node = convert(n, path, pis);
    if (!node) continue;
    if (node.kind === "element") {
      if (root)
        throw new DomainXmlError("more than one root element", {
          path,
          value: node.name,
          fix: "keep one root element, <domain>",
        });
      root = node;
    } else if (node.kind === "comment" || node.kind === "pi") {
      (root ? epilog : prolog).push(node);
    } else if (node.kind === "text" && node.value.trim() !== "") {
      throw new DomainXmlError("text outside the root element", {
        path,
        value: node.value.trim(),
        fix: "remove the text before or after the root element",
      });
    }
  }
  if (!root) {
    throw new DomainXmlError("empty document", {
      path,
      allowed: "a document whose root is <domain>",
      fix: "pass a domain XML document",
    });
  }
  return { prolog, root, epilog };
}

type RawNode = Record<string, unknown>;

/**
 * Converts one node of fast-xml-parser's ordered output; `pis` holds the processing instructions
 * not yet met, in document order (each is taken off as its node is met).
 */
function convert(n: RawNode, path: string, pis: XmlProcessingInstruction[]): XmlNode | undefined {
  const attrsRaw = (n[":@"] ?? {}) as Record<string, string>;
  for (const key of Object.keys(n)) {
    if (key === ":@") continue;
    const val = n[key];
    if (key === "#text") {
      return { kind: "text", value: decodeEntities(String(val), path) };
    }
    if (key === "#comment") {
      return { kind: "comment", value: textOf(val as RawNode[]) };
    }
    if (key === "#cdata") {
      return { kind: "cdata", value: textOf(val as RawNode[]) };
    }
    if (key.startsWith("?")) {
      const pi = pis.shift();
      if (!pi || pi.target !== key.slice(1)) {
        throw new DomainXmlError("processing instruction out of step with the parser", {
          path,
          value: key.slice(1),
          fix: "report this bug with the document; meanwhile remove the processing instruction",
        });
      }
      return pi;
    }
    const children: XmlNode[] = [];
    for (const c of val as RawNode[]) {
      const cn = convert(c, path, pis);
      if (cn) children.push(cn);
    }
    const attrs = Object.keys(attrsRaw).map((name) => ({
      name: unguardName(name),
      value: decodeEntities(String(attrsRaw[name]), path),
    }));
    const el: XmlElement = { kind: "element", name: unguardName(key), attrs, children };
    dropLayoutWhitespace(el);
    return el;
  }
  return undefined;
}

function textOf(list: RawNode[]): string {
  return list.map((x) => String((x["#text"] ?? "") as string | number | boolean)).join("");
}

function dropLayoutWhitespace(el: XmlElement): void {
  const hasStructure = el.children.some((c) => c.kind !== "text");
  if (!hasStructure) return;
  el.children = el.children.filter((c) => !(c.kind === "text" && c.value.trim() === ""));
}

function stripCommentsAndCData(text: string): string {
  return text.replace(/<!--[\s\S]*?-->/g, "").replace(/<!\[CDATA\[[\s\S]*?\]\]>/g, "");
}

const NAMED: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

/** Decodes the five XML entities and character references; anything else is an error. */
function decodeEntities(s: string, path: string): string {
  if (!s.includes("&")) return s;
  return s.replace(/&([^;&\s]*);?/g, (whole, body: string) => {
    if (!whole.endsWith(";")) {
      throw new DomainXmlError("unterminated entity reference", { path, value: whole, fix: "write & as &amp;" });
    }
    const named = Object.hasOwn(NAMED, body) ? NAMED[body] : undefined;
    if (named !== undefined) return named;
    const ref = /^#(x[0-9a-fA-F]+|[0-9]+)$/.exec(body)?.[1];
    if (ref !== undefined) {
      const cp = ref.startsWith("x") ? parseInt(ref.slice(1), 16) : parseInt(ref, 10);
      if (isXmlChar(cp)) return String.fromCodePoint(cp);
      throw new DomainXmlError("character reference to a character XML 1.0 forbids", {
        path,
        value: whole,
        allowed: "&#9; &#10; &#13;, U+0020-U+D7FF, U+E000-U+FFFD, U+10000-U+10FFFF (libxml2 refuses the others)",
        fix: "remove the reference; control characters cannot be carried in XML",
      });
    }
    throw new DomainXmlError("undefined entity", {
      path,
      value: whole,
      allowed: "&lt; &gt; &amp; &quot; &apos; and character references",
      fix: "entities are never expanded here; write the text itself",
    });
  });
}

/** XML 1.0's `Char` production: what a character reference may name. */
function isXmlChar(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

/**
 * Refuses what libxml2 (and so libvirt) refuses but fast-xml-parser's validator lets through,
 * so that a bad document fails at preview, not at define: `--` inside a comment, `]]>` in
 * text, text after a self-closed root, `<` in an attribute value, an XML declaration anywhere
 * but at the start (or without a version, or with a bad `standalone`), a processing
 * instruction named `xml` in any case or without a target, markup declarations, and CDATA
 * outside the root. An encoding other than UTF-8 is refused too: the text is passed on as
 * UTF-8. Runs on a document the validator has accepted, so tags, comments, CDATA and quotes
 * are balanced. Returns the processing instructions (but the XML declaration) in document order.
 */
function checkLikeLibxml2(text: string, path: string): XmlProcessingInstruction[] {
  const pis: XmlProcessingInstruction[] = [];
  const refuse = (reason: string, at: number, fix: string): never => {
    // Where, never what: the text there may be inside an attribute value (a graphics password).
    const before = text.slice(0, at);
    const line = before.split("\n").length;
    const column = at - before.lastIndexOf("\n");
    throw new DomainXmlError(reason, { path, value: `line ${line}, column ${column}`, fix });
  };
  let depth = 0;
  let i = 0;
  const start = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  while (i < text.length) {
    const lt = text.indexOf("<", i);
    const chars = text.slice(i, lt < 0 ? text.length : lt);
    const cdataEnd = chars.indexOf("]]>");
    if (cdataEnd >= 0) refuse('"]]>" in text', i + cdataEnd, 'write "]]&gt;"');
    if (depth === 0 && /[^ \t\r\n]/.test(chars.slice(i === 0 ? start : 0)))
      refuse("text outside the root element", i, "remove the text before or after the root element");
    if (lt < 0) break;
    if (text.startsWith("<!--", lt)) {
      const end = text.indexOf("-->", lt + 4);
      if (end < 0) break;
      const body = text.slice(lt + 4, end);
      if (body.includes("--") || body.endsWith("-"))
        refuse('"--" inside a comment', lt, 'XML forbids "--" in comments; write "- -" or remove the comment');
      i = end + 3;
    } else if (text.startsWith("<![CDATA[", lt)) {
      if (depth === 0) refuse("CDATA outside the root element", lt, "move the CDATA section inside <domain>");
      const end = text.indexOf("]]>", lt + 9);
      if (end < 0) break;
      i = end + 3;
    } else if (text.startsWith("<!", lt)) {
      refuse(
        "markup declarations are not allowed",
        lt,
        "remove the <!...> declaration; libvirt domain XML never needs one",
      );
    } else if (text.startsWith("<?", lt)) {
      const end = text.indexOf("?>", lt + 2);
      if (end < 0) break;
      const body = text.slice(lt + 2, end);
      const target = /^[^\s?]*/.exec(body)![0];
      if (target === "")
        refuse("processing instruction without a target", lt, "name the target, e.g. <?app data?>, or remove it");
      if (target.toLowerCase() === "xml") {
        if (target !== "xml" || lt !== start)
          refuse(
            "XML declaration allowed only at the start of the document",
            lt,
            "move <?xml ...?> to the very start, or remove it",
          );
        if (!/^\s+version\s*=\s*(['"])1\.[0-9]+\1/.test(body.slice(3)))
          refuse("XML declaration without a version", lt, "write <?xml version='1.0'?>");
        const sa = /\sstandalone\s*=\s*(['"])(.*?)\1/.exec(body);
        if (sa && sa[2] !== "yes" && sa[2] !== "no")
          refuse("standalone accepts only 'yes' or 'no'", lt, "write standalone='yes', or remove it");
        // The text is handed on as UTF-8: another declared encoding would be decoded wrongly (or refused).
        const encoding = /\sencoding\s*=\s*(['"])(.*?)\1/.exec(body)?.[2];
        if (encoding !== undefined && !/^utf-?8$/i.test(encoding))
          refuse(
            `encoding ${JSON.stringify(encoding)} is not UTF-8`,
            lt,
            "write encoding='UTF-8', or remove the encoding",
          );
      } else {
        pis.push({ kind: "pi", target, value: body.slice(target.length).replace(/^[ \t\r\n]+/, "") });
      }
      i = end + 2;
    } else {
      // A tag: skip to its '>' honouring quoted attribute values.
      let k = lt + 1;
      while (k < text.length && text[k] !== ">") {
        const c = text[k];
        if (c === "'" || c === '"') {
          const e = text.indexOf(c, k + 1);
          if (e < 0) return pis;
          const lessThan = text.slice(k + 1, e).indexOf("<");
          if (lessThan >= 0) refuse('"<" in an attribute value', k + 1 + lessThan, 'write "&lt;"');
          k = e + 1;
        } else k++;
      }
      if (text[lt + 1] === "/") depth--;
      else if (text[k - 1] !== "/") depth++;
      i = k + 1;
    }
  }
  return pis;
}

/** Escapes character data for an element's text. */
export function escapeText(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Escapes an attribute value for a single-quoted attribute. */
export function escapeAttr(s: string): string {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/'/g, "&apos;")
    .replace(/"/g, "&quot;")
    .replace(/\n/g, "&#10;")
    .replace(/\r/g, "&#13;")
    .replace(/\t/g, "&#9;");
}

/** Formats a document in libvirt's style: two-space indent, single-quoted attributes, trailing newline. */
export function formatXml(doc: XmlDocument): string {
  const out: string[] = [];
  for (const c of doc.prolog) out.push(inlineNode(c) + "\n");
  formatElement(doc.root, "", out);
  for (const c of doc.epilog) out.push(inlineNode(c) + "\n");
  return out.join("");
}

/** Formats one element (and its subtree) at the given indent. */
export function formatElement(el: XmlElement, indent: string, out: string[]): void {
  const attrs = el.attrs.map((a) => ` ${a.name}='${escapeAttr(a.value)}'`).join("");
  if (el.children.length === 0) {
    out.push(`${indent}<${el.name}${attrs}/>\n`);
    return;
  }
  const structured = el.children.some((c) => c.kind === "element" || c.kind === "comment" || c.kind === "pi");
  const mixed = el.children.some((c) => c.kind === "text" && c.value.trim() !== "");
  if (!structured || mixed) {
    const inner = el.children.map(inlineNode).join("");
    out.push(`${indent}<${el.name}${attrs}>${inner}</${el.name}>\n`);
    return;
  }
  out.push(`${indent}<${el.name}${attrs}>\n`);
  const inner = indent + "  ";
  for (const c of el.children) {
    if (c.kind === "element") formatElement(c, inner, out);
    else out.push(inner + inlineNode(c) + "\n");
  }
  out.push(`${indent}</${el.name}>\n`);
}

function inlineNode(n: XmlNode): string {
  switch (n.kind) {
    case "text":
      return escapeText(n.value);
    case "cdata":
      return `<![CDATA[${n.value}]]>`;
    case "comment":
      return `<!--${n.value}-->`;
    case "pi":
      return `<?${n.target}${n.value ? ` ${n.value}` : ""}?>`;
    case "element": {
      const out: string[] = [];
      formatElement(n, "", out);
      return out.join("").replace(/\n$/, "");
    }
  }
}

/** A new element with attributes given in order. */
export function element(name: string, attrs: Record<string, string> = {}, children: XmlNode[] = []): XmlElement {
  return { kind: "element", name, attrs: Object.entries(attrs).map(([n, v]) => ({ name: n, value: v })), children };
}

/** The element children of `el`, optionally only those named `name`. */
export function childElements(el: XmlElement, name?: string): XmlElement[] {
  return el.children.filter((c): c is XmlElement => c.kind === "element" && (name === undefined || c.name === name));
}

/** The first element child named `name`. */
export function firstChild(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c): c is XmlElement => c.kind === "element" && c.name === name);
}

/** Follows a `/`-separated chain of first children (`os/type`). */
export function findPath(el: XmlElement, path: string): XmlElement | undefined {
  let cur: XmlElement | undefined = el;
  for (const part of path.split("/")) {
    if (!cur) return undefined;
    cur = firstChild(cur, part);
  }
  return cur;
}

/** An attribute's value, or undefined when absent. */
export function getAttr(el: XmlElement | undefined, name: string): string | undefined {
  return el?.attrs.find((a) => a.name === name)?.value;
}

/** Sets (in place, keeping its position) or adds an attribute; `undefined` removes it. */
export function setAttr(el: XmlElement, name: string, value: string | undefined): void {
  const i = el.attrs.findIndex((a) => a.name === name);
  if (value === undefined) {
    if (i >= 0) el.attrs.splice(i, 1);
  } else if (i >= 0) {
    el.attrs[i]!.value = value;
  } else {
    el.attrs.push({ name, value });
  }
}

/** The text content of an element (text and CDATA of its subtree), as XPath `string()` gives it. */
export function textContent(el: XmlElement | undefined): string | undefined {
  if (!el) return undefined;
  return el.children
    .map((c) =>
      c.kind === "element" ? (textContent(c) ?? "") : c.kind === "comment" || c.kind === "pi" ? "" : c.value,
    )
    .join("");
}

/** Replaces the children of `el` with one text node. */
export function setTextContent(el: XmlElement, value: string): void {
  el.children = value === "" ? [] : [{ kind: "text", value }];
}

/** Removes `child` from `parent`; returns whether it was there. */
export function removeChild(parent: XmlElement, child: XmlElement): boolean {
  const i = parent.children.indexOf(child);
  if (i < 0) return false;
  parent.children.splice(i, 1);
  return true;
}

/**
 * Inserts `child` into `parent` at the place `order` gives it: after the last existing child
 * whose name comes earlier in `order`. Names not in `order` keep their place.
 */
export function insertOrdered(parent: XmlElement, child: XmlElement, order: readonly string[]): void {
  const rank = order.indexOf(child.name);
  if (rank < 0) {
    parent.children.push(child);
    return;
  }
  let at = 0;
  parent.children.forEach((c, i) => {
    if (c.kind === "element") {
      const r = order.indexOf(c.name);
      if (r >= 0 && r <= rank) at = i + 1;
    }
  });
  parent.children.splice(at, 0, child);
}

/** Deep copy of an element. */
export function cloneElement(el: XmlElement): XmlElement {
  return JSON.parse(JSON.stringify(el)) as XmlElement;
}
