/**
 * test/corpus/known-differences.txt: the one list of known, genuine differences of the corpus
 * checks, each with the reason of its class.
 *
 * Format (whitespace separated, `#` starts a comment line):
 *
 *     corpus libvirt VERSION                    the corpus the list was made for
 *     class CHECK CLASS KIND REASON...          a class of difference and why it exists
 *     CHECK CASE CLASS                          a case (or, for silent-drop, an element path) and its class
 *
 * KIND is `gap` (the project is wrong: a fix removes the entry) or `genuine` (libvirt's
 * output really differs from the input, e.g. libvirt rewrites or drops a value: the entry stays).
 * A case with differences of several classes has one line per class.
 */
import * as fs from "node:fs";
import { CheckName, CheckResult } from "./checks";

/** One class of difference and its reason. */
export interface KnownClass {
  check: CheckName;
  cls: string;
  kind: "gap" | "genuine";
  reason: string;
}

/** The parsed file. */
export interface KnownDifferences {
  version: string | undefined;
  classes: Map<string, KnownClass>;
  /** `CHECK CASE CLASS` entries. */
  entries: Set<string>;
}

/** The key of an entry or class: `CHECK\tCASE\tCLASS` / `CHECK\tCLASS`. */
export const entryKey = (check: string, key: string, cls: string) => `${check}\t${key}\t${cls}`;
const classKey = (check: string, cls: string) => `${check}\t${cls}`;

/** Reads the file (an absent file is an empty list). */
export function readKnown(file: string): KnownDifferences {
  const known: KnownDifferences = { version: undefined, classes: new Map(), entries: new Set() };
  if (!fs.existsSync(file)) return known;
  fs.readFileSync(file, "utf8")
    .split("\n")
    .forEach((line, i) => {
      const t = line.trim();
      if (t === "" || t.startsWith("#")) return;
      const w = t.split(/\s+/);
      if (w[0] === "corpus") {
        known.version = w.slice(1).join(" ");
      } else if (w[0] === "class") {
        if (w.length < 5 || (w[3] !== "gap" && w[3] !== "genuine")) {
          throw new Error(`${file}:${i + 1}: expected "class CHECK CLASS gap|genuine REASON...", got: ${t}`);
        }
        known.classes.set(classKey(w[1]!, w[2]!), {
          check: w[1] as CheckName,
          cls: w[2]!,
          kind: w[3],
          reason: w.slice(4).join(" "),
        });
      } else {
        if (w.length !== 3) throw new Error(`${file}:${i + 1}: expected "CHECK CASE CLASS", got: ${t}`);
        known.entries.add(entryKey(w[0]!, w[1]!, w[2]!));
      }
    });
  return known;
}

/** Looks a class up. */
export function knownClass(known: KnownDifferences, check: string, cls: string): KnownClass | undefined {
  return known.classes.get(classKey(check, cls));
}

/** How a check's findings stand against the list. */
export interface Reconciliation {
  /** Differing keys (cases or paths) all of whose classes are listed. */
  listed: number;
  /** `CHECK CASE CLASS` found but not listed. */
  unlisted: string[];
  /** `CHECK CASE CLASS` listed but no longer found. */
  stale: string[];
  /** Classes found that have no `class` line (no reason). */
  unexplained: string[];
  /** Count of differing keys per class. */
  perClass: Map<string, number>;
}

/** Holds one check's findings against the list. */
export function reconcile(result: CheckResult, known: KnownDifferences): Reconciliation {
  const found = new Set<string>();
  const perClass = new Map<string, number>();
  let listed = 0;
  for (const [key, findings] of result.findings) {
    let all = true;
    for (const f of findings) {
      const k = entryKey(result.check, key, f.cls);
      found.add(k);
      perClass.set(f.cls, (perClass.get(f.cls) ?? 0) + 1);
      if (!known.entries.has(k)) all = false;
    }
    if (all) listed++;
  }
  const unlisted = [...found].filter((k) => !known.entries.has(k)).sort();
  const stale = [...known.entries].filter((k) => k.startsWith(result.check + "\t") && !found.has(k)).sort();
  const unexplained = [...perClass.keys()].filter((c) => !knownClass(known, result.check, c)).sort();
  return { listed, unlisted, stale, unexplained, perClass };
}

/**
 * Writes the list anew from the results: every finding an entry, the class lines kept from the
 * old file (a class without one gets a `TODO` reason, which the suite refuses).
 */
export function writeKnown(
  file: string,
  version: string,
  results: CheckResult[],
  old: KnownDifferences,
  header: string,
): void {
  const lines: string[] = [header.trimEnd(), "", `corpus libvirt ${version}`, ""];
  for (const r of results) {
    const classes = new Map<string, number>();
    for (const fs_ of r.findings.values()) for (const f of fs_) classes.set(f.cls, (classes.get(f.cls) ?? 0) + 1);
    if (classes.size === 0) continue;
    lines.push(`# ---- ${r.check} ----`);
    for (const cls of [...classes.keys()].sort()) {
      const k = knownClass(old, r.check, cls);
      lines.push(
        `class ${r.check} ${cls} ${k?.kind ?? "gap"} ${k?.reason ?? "TODO: the cause of this class, and where libvirt does it"}`,
      );
    }
    const entries: string[] = [];
    for (const [key, fs_] of r.findings) for (const f of fs_) entries.push(`${r.check} ${key} ${f.cls}`);
    lines.push(...entries.sort(), "");
  }
  fs.writeFileSync(file, lines.join("\n"));
}
