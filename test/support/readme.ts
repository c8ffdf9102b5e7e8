/**
 * The README's user section as steps a test runs: fenced `sh` blocks are commands (one a line,
 * run without a shell, so shell syntax is refused), blocks with `file=NAME` in their info string
 * are files to write. `only=ts` or `only=js` limits a block to TypeScript or JavaScript programs;
 * a `.ts` or `.js` file is for its own language. Any other block fails the parse, so the section
 * cannot show what the test does not run.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "./paths";

/** The language of a Pulumi program. */
export type ProgramLanguage = "ts" | "js";

/** One thing the README tells a user to do. */
export type ReadmeStep =
  | {
      readonly kind: "command";
      readonly words: readonly string[];
      readonly line: number;
      readonly only?: ProgramLanguage;
    }
  | {
      readonly kind: "file";
      readonly name: string;
      readonly content: string;
      readonly line: number;
      readonly only?: ProgramLanguage;
    };

/** The heading of the section for users. */
export const INSTALL_HEADING = "## Install (for users)";

/** The text of the section under `heading` (to the next `## ` heading), and its first line's number. */
export function readmeSection(markdown: string, heading: string): { text: string; firstLine: number } {
  const lines = markdown.split("\n");
  const start = lines.findIndex((l) => l.trim() === heading);
  if (start < 0) throw new Error(`README.md has no section "${heading}"`);
  let end = lines.findIndex((l, i) => i > start && /^## /.test(l));
  if (end < 0) end = lines.length;
  return { text: lines.slice(start + 1, end).join("\n"), firstLine: start + 2 };
}

function languageOf(v: string | undefined, where: string): ProgramLanguage | undefined {
  if (v === undefined) return undefined;
  if (v === "ts" || v === "js") return v;
  throw new Error(`${where}: only=${v} is not a program language; write only=ts or only=js`);
}

/** The steps of a section, in order; `firstLine` numbers lines as in the README. */
export function parseSteps(section: string, firstLine = 1): ReadmeStep[] {
  const steps: ReadmeStep[] = [];
  const lines = section.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(.*)$/.exec(lines[i]!);
    if (open?.[1] === undefined) continue;
    const where = `README.md line ${firstLine + i}`;
    const [lang, ...attrWords] = open[1].trim().split(/\s+/);
    const attrs: Record<string, string> = {};
    for (const w of attrWords) {
      const [, key, value] = /^(\w+)=(.+)$/.exec(w) ?? [];
      if (key === undefined || value === undefined)
        throw new Error(`${where}: "${w}" in the block's info string is not key=value`);
      attrs[key] = value;
    }
    const end = lines.findIndex((l, j) => j > i && l === "```");
    if (end < 0) throw new Error(`${where}: the code block is not closed`);
    const body = lines.slice(i + 1, end);
    if (attrs.file !== undefined) {
      const ext = path.extname(attrs.file);
      const only = languageOf(attrs.only, where) ?? (ext === ".ts" ? "ts" : ext === ".js" ? "js" : undefined);
      steps.push({ kind: "file", name: attrs.file, content: body.join("\n") + "\n", line: firstLine + i, only });
    } else if (lang === "sh") {
      const only = languageOf(attrs.only, where);
      body.forEach((text, k) => {
        const cmd = text.replace(/(^|\s)#.*$/, "").trim();
        if (!cmd) return;
        const lineWhere = `README.md line ${firstLine + i + 1 + k}`;
        if (/[|&;<>()$`\\"'*?{}[\]~]/.test(cmd))
          throw new Error(
            `${lineWhere}: "${cmd}" uses shell syntax; the test runs commands without a shell: write plain words`,
          );
        steps.push({ kind: "command", words: cmd.split(/\s+/), line: firstLine + i + 1 + k, only });
      });
    } else {
      throw new Error(
        `${where}: a \`${lang || "(no language)"}\` block without file=NAME; the test runs only sh blocks and writes only file=NAME blocks`,
      );
    }
    i = end;
  }
  return steps;
}

/** The steps of the README's user section that apply to a program in `lang`. */
export function installSteps(lang: ProgramLanguage, readmePath = path.join(REPO_ROOT, "README.md")): ReadmeStep[] {
  const { text, firstLine } = readmeSection(fs.readFileSync(readmePath, "utf8"), INSTALL_HEADING);
  return parseSteps(text, firstLine).filter((s) => s.only === undefined || s.only === lang);
}
