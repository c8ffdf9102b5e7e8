/**
 * Helpers for lab tests of the Domain provider: apply inputs the way the engine does (check,
 * then create), count what exists, and clean up only the domains a test made (by name prefix).
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { VirshBackend } from "../../provider/backends/virsh/virsh-backend";
import * as impl from "../../provider/dynamic/impl";

/** A unique prefix for this test run's domain names. */
export const RUN_PREFIX = `t${process.pid.toString(36)}`;

/** check + create, as `pulumi up` does; fails the test on check failures. */
export async function checkAndCreate(
  inputs: Record<string, unknown>,
): Promise<{ id: string; inputs: Record<string, unknown>; outs: impl.DomainOutputs }> {
  const c = await impl.check({}, inputs);
  expect(c.failures, "check failures").to.deep.equal([]);
  const r = await impl.create(c.inputs);
  return { id: r.id, inputs: c.inputs, outs: r.outs };
}

/** Removes every domain whose name starts with `prefix` (test debris only). */
export async function removeDomains(uri: string, prefix: string): Promise<void> {
  const b = new VirshBackend(uri);
  for (const n of await b.listNames()) {
    if (!n.startsWith(prefix)) continue;
    await b.destroy(n).catch(() => undefined);
    await b.undefine(n).catch(() => undefined);
  }
}

/** Names of domains starting with `prefix`. */
export async function domainsWithPrefix(uri: string, prefix: string): Promise<string[]> {
  return (await new VirshBackend(uri).listNames()).filter((n) => n.startsWith(prefix));
}

/** Files in a directory (recursively), for before/after comparisons. */
export function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

/** Creates a small qcow2 image. */
export function makeQcow2(path: string, size = "16M"): void {
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", path, size]);
}
