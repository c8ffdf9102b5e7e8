/**
 * Recording `pulumi preview --json` documents from end-to-end runs: into `.e2e-work/previews/`,
 * and with RECORD_PREVIEWS=1 also into `test/data/previews/` (the preview-report unit tests read
 * them there).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "./paths";

const PREVIEWS = path.join(REPO_ROOT, ".e2e-work", "previews");

/** Drops what is machine-specific and large (the serialized provider, stack traces). */
export function scrubPreview(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(scrubPreview);
  if (v && typeof v === "object") {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v))
      if (k !== "__provider" && k !== "stackTrace" && k !== "sourcePosition") o[k] = scrubPreview(x);
    return o;
  }
  return v;
}

/** Writes one scrubbed preview document as `NAME.json`. */
export function recordPreview(name: string, json: unknown): void {
  fs.mkdirSync(PREVIEWS, { recursive: true });
  const text = JSON.stringify(scrubPreview(json), null, 2) + "\n";
  fs.writeFileSync(path.join(PREVIEWS, `${name}.json`), text);
  if (process.env.RECORD_PREVIEWS === "1") {
    const dir = path.join(REPO_ROOT, "test", "data", "previews");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `${name}.json`), text);
  }
}
