/**
 * Security info: the values libvirt writes into domain XML only when asked for them with
 * `VIR_DOMAIN_XML_SECURE` (`virsh dumpxml --security-info`), listed as data in
 * {@link SECURITY_INFO}. Everything that reads, compares, reports or stores domain XML asks
 * these questions: does a document hold such a value ({@link hasSecurityInfo}), is a diff path
 * one of them ({@link isSecurityInfoPath}), and what does the document look like with the values
 * replaced by a fixed marker ({@link redactSecurityInfo}). The marker is never derived from the
 * value (no hash, no length), so nothing about a password can be learnt from it.
 *
 * Pure: no I/O, no Pulumi.
 */
import { DomainDef } from "./domain";
import {
  childElements,
  cloneElement,
  escapeAttr,
  escapeText,
  getAttr,
  setAttr,
  setTextContent,
  textContent,
  XmlElement,
} from "./tree";

/** What replaces a security-info value wherever it would be shown. */
export const REDACTED = "[redacted]";

/** One kind of value libvirt formats only with `VIR_DOMAIN_XML_SECURE`. */
export interface SecurityInfoRule {
  /**
   * Where it is: element names from the root joined by `/` (`**` stands for any number of
   * elements), then `/@attribute` for an attribute value; without `@` the element's text.
   */
  readonly path: string;
  /** What it is, for people. */
  readonly what: string;
  /** The formatter in libvirt's `src/conf/domain_conf.c` that writes it only with the flag. */
  readonly libvirt: string;
}

/**
 * Everything libvirt's domain formatter keeps back without `VIR_DOMAIN_XML_SECURE`, found by
 * reading `src/conf/domain_conf.c` and checked on libvirt 9.0 and 12.9 (`dumpxml` with and
 * without `--security-info`).
 */
export const SECURITY_INFO: readonly SecurityInfoRule[] = [
  {
    path: "/domain/devices/graphics/@passwd",
    what: "the password of a VNC, SPICE or RDP display",
    libvirt: "virDomainGraphicsAuthDefFormatAttr",
  },
  {
    path: "/domain/devices/disk/**/source/cookies/cookie",
    what: "an HTTP(S) cookie value of a network disk source (backing store and mirror sources too)",
    libvirt: "virDomainDiskSourceFormatNetworkCookies",
  },
];

interface CompiledRule {
  readonly elements: string[];
  readonly attribute: string | undefined;
}

const RULES: readonly CompiledRule[] = SECURITY_INFO.map((r) => {
  const parts = r.path.split("/").filter(Boolean);
  const last = parts[parts.length - 1];
  return last?.startsWith("@")
    ? { elements: parts.slice(0, -1), attribute: last.slice(1) }
    : { elements: parts, attribute: undefined };
});

/** Whether the element-name chain `names` matches `pattern` (`**` matches any run, empty too). */
function chainMatches(pattern: readonly string[], names: readonly string[]): boolean {
  const go = (p: number, n: number): boolean => {
    if (p === pattern.length) return n === names.length;
    if (pattern[p] === "**") {
      for (let k = n; k <= names.length; k++) if (go(p + 1, k)) return true;
      return false;
    }
    return n < names.length && pattern[p] === names[n] && go(p + 1, n + 1);
  };
  return go(0, 0);
}

/** The secure attributes of an element at `names`, and whether its text is secure. */
function secureParts(names: readonly string[]): { attributes: string[]; text: boolean } {
  const attributes: string[] = [];
  let text = false;
  for (const r of RULES) {
    if (!chainMatches(r.elements, names)) continue;
    if (r.attribute === undefined) text = true;
    else attributes.push(r.attribute);
  }
  return { attributes, text };
}

/** Splits a diff path (`/domain/devices/graphics[type=vnc]/@passwd`) into element names and the attribute. */
function splitPath(path: string): { names: string[]; attribute: string | undefined } {
  const segments: string[] = [];
  let cur = "";
  let depth = 0;
  for (const ch of path) {
    if (ch === "[") depth++;
    else if (ch === "]") depth = Math.max(0, depth - 1);
    if (ch === "/" && depth === 0) {
      if (cur) segments.push(cur);
      cur = "";
    } else {
      cur += ch;
    }
  }
  if (cur) segments.push(cur);
  const names = segments.map((s) => s.replace(/\[.*\]$/, ""));
  const last = names[names.length - 1];
  if (last !== undefined && last.startsWith("@")) return { names: names.slice(0, -1), attribute: last.slice(1) };
  return { names, attribute: undefined };
}

/**
 * Whether a path of the semantic diff (an attribute `.../@passwd`, or an element whose text is
 * compared) addresses a security-info value.
 */
export function isSecurityInfoPath(path: string): boolean {
  const { names, attribute } = splitPath(path);
  const s = secureParts(names);
  return attribute !== undefined ? s.attributes.includes(attribute) : s.text;
}

/** Visits every element under `el` (itself included) with its element-name chain. */
function walk(el: XmlElement, names: string[], visit: (el: XmlElement, names: string[]) => void): void {
  visit(el, names);
  for (const c of childElements(el)) walk(c, [...names, c.name], visit);
}

/** The security-info values found under `el`, whose own chain is `names`. */
function collect(el: XmlElement, names: string[]): string[] {
  const values: string[] = [];
  walk(el, names, (e, n) => {
    const s = secureParts(n);
    for (const a of s.attributes) {
      const v = getAttr(e, a);
      if (v !== undefined) values.push(v);
    }
    if (s.text) values.push(textContent(e) ?? "");
  });
  return values;
}

/** Replaces, in place, the security-info values under `el`, whose own chain is `names`. */
function redactInPlace(el: XmlElement, names: string[]): void {
  walk(el, names, (e, n) => {
    const s = secureParts(n);
    for (const a of s.attributes) if (getAttr(e, a) !== undefined) setAttr(e, a, REDACTED);
    if (s.text) setTextContent(e, REDACTED);
  });
}

/** Whether the domain holds any security-info value (an empty password counts: it is set). */
export function hasSecurityInfo(def: DomainDef): boolean {
  let found = false;
  walk(def.root, [def.root.name], (e, n) => {
    if (found) return;
    const s = secureParts(n);
    if (s.text || s.attributes.some((a) => getAttr(e, a) !== undefined)) found = true;
  });
  return found;
}

/** The security-info values of a domain (the passwords themselves), for scrubbing messages. */
export function securityInfoValues(def: DomainDef): string[] {
  return collect(def.root, [def.root.name]);
}

/** A copy of the domain with every security-info value replaced by {@link REDACTED}. */
export function redactSecurityInfo(def: DomainDef): DomainDef {
  const copy = def.clone();
  redactInPlace(copy.root, [copy.root.name]);
  return copy;
}

/**
 * A copy of an element found at the diff path `path` (e.g. `/domain/devices/graphics[type=vnc]`)
 * with the security-info values of its subtree replaced by {@link REDACTED}.
 */
export function redactElement(el: XmlElement, path: string): XmlElement {
  const copy = cloneElement(el);
  redactInPlace(copy, splitPath(path).names);
  return copy;
}

/** Attribute and element names the text fallback knows (from {@link SECURITY_INFO}). */
const TEXT_ATTRIBUTES = [...new Set(RULES.map((r) => r.attribute).filter((a): a is string => a !== undefined))];
const TEXT_ELEMENTS = [
  ...new Set(RULES.filter((r) => r.attribute === undefined).map((r) => r.elements[r.elements.length - 1])),
];

function textPatterns(): { attr: RegExp; elem: RegExp } {
  return {
    attr: new RegExp(`(\\s(?:${TEXT_ATTRIBUTES.join("|")})\\s*=\\s*)(?:'([^']*)'|"([^"]*)")`, "g"),
    elem: new RegExp(
      `(<(?:${TEXT_ELEMENTS.join("|")})(?:\\s[^>]*)?>)([\\s\\S]*?)(</(?:${TEXT_ELEMENTS.join("|")})\\s*>)`,
      "g",
    ),
  };
}

/**
 * Domain XML text with every security-info value replaced by {@link REDACTED}. A document that
 * does not parse is redacted by its text (every `passwd='...'` attribute and `<cookie>` text,
 * wherever they are), so that even broken input never shows a password.
 */
export function redactSecurityInfoXml(xml: string): string {
  try {
    return redactSecurityInfo(DomainDef.parse(xml)).format();
  } catch {
    const p = textPatterns();
    return xml
      .replace(
        p.attr,
        (_w, head: string, sq?: string) => `${head}${sq !== undefined ? `'${escapeAttr(REDACTED)}'` : `"${REDACTED}"`}`,
      )
      .replace(p.elem, (_w, open: string, _v: string, close: string) => `${open}${escapeText(REDACTED)}${close}`);
  }
}

/**
 * Whether XML text holds security info. A document that does not parse counts when its text
 * looks like it does (a `passwd=` attribute or a `<cookie>`): in doubt, treat it as secret.
 */
export function xmlHasSecurityInfo(xml: string): boolean {
  try {
    return hasSecurityInfo(DomainDef.parse(xml));
  } catch {
    const p = textPatterns();
    return p.attr.test(xml) || p.elem.test(xml);
  }
}

/** The security-info values in XML text, both as written (escaped) and decoded; for scrubbing messages. */
export function xmlSecurityInfoValues(xml: string): string[] {
  const values = new Set<string>();
  try {
    for (const v of securityInfoValues(DomainDef.parse(xml))) values.add(v);
  } catch {
    // Not parseable: the text patterns below still find them.
  }
  const p = textPatterns();
  for (const m of xml.matchAll(p.attr)) values.add(m[2] ?? m[3] ?? "");
  for (const m of xml.matchAll(p.elem)) values.add(m[2] ?? "");
  for (const v of [...values]) values.add(escapeAttr(v)).add(escapeText(v));
  values.delete("");
  return [...values];
}

/** Values shorter than this are replaced only where they stand quoted or after `=`. */
const SHORT_VALUE = 4;

/**
 * `text` with security info replaced by {@link REDACTED}: first by pattern (any `passwd='...'`
 * attribute and `<cookie>` text, whatever the value: covers values the caller does not know,
 * such as a password changed behind our back), then every occurrence of the given values,
 * longest first. A short value (under 4 characters) is replaced only where it stands quoted or
 * after `=`: replacing each bare occurrence of a one-letter password would show where its
 * letters are in the rest of the text. A quoted entity fragment (`"&..."`) that is part of a
 * value is replaced too: an error about a malformed entity inside a password quotes that part.
 */
export function scrubSecurityInfo(text: string, values: readonly string[] = []): string {
  const p = textPatterns();
  let out = text
    .replace(
      p.attr,
      (_w, head: string, sq?: string) => `${head}${sq !== undefined ? `'${REDACTED}'` : `"${REDACTED}"`}`,
    )
    .replace(p.elem, (_w, open: string, _v: string, close: string) => `${open}${REDACTED}${close}`);
  const vs = [...new Set(values)].filter((v) => v !== "").sort((a, b) => b.length - a.length);
  if (vs.length === 0) return out;
  for (const v of vs) {
    if (v.length >= SHORT_VALUE) {
      out = out.split(v).join(REDACTED);
    } else {
      const e = v.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      out = out.replace(new RegExp(`(['"])${e}\\1|=${e}(?=[\\s,;)>/]|$)`, "g"), (w) =>
        w.startsWith("=") ? `=${REDACTED}` : `${w[0]}${REDACTED}${w[0]}`,
      );
    }
  }
  return out.replace(/"(&[^"]*)"/g, (whole, fragment: string) =>
    vs.some((v) => v.includes(fragment)) ? `"${REDACTED}"` : whole,
  );
}
