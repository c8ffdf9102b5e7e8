/** File helpers of the tests. */
import { createHash } from "node:crypto";
import * as fs from "node:fs";

/** The SHA-256 of a file's content, hex: proof that a template image was left unchanged. */
export function sha256File(file: string): string {
  return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}
