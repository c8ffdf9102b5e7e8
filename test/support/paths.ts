/** Paths the tests share. Tests run from `dist/test/...`; data stays in the source tree. */
import * as path from "node:path";

/** The repository root. */
export const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");
/** Golden data: `NAME.xml` -> `NAME.out.xml` / `NAME.args` / `NAME.identity.json` / `NAME.err`. */
export const GOLDEN_DIR = path.join(REPO_ROOT, "test", "data");
