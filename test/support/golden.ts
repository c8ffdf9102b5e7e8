/**
 * The golden-case engine shared by the unit suite (expected files) and the lab suite (libvirt's
 * own answers): runs parse -> identity -> format -> QEMU argv on one input and collects what
 * each step produced, or the first error as libvirt would print it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { DomainDef } from "../../provider/xml/domain";
import { DomainXmlError } from "../../provider/xml/errors";
import { normalizeIdentity } from "../../provider/xml/identity";
import { buildQemuArgv } from "../../provider/qemu/argv";
import { GOLDEN_DIR } from "./paths";

/** The expected-file suffixes, in the order they are produced. */
export const OUTPUT_SUFFIXES = [".identity.json", ".out.xml", ".args", ".err"] as const;
/** One suffix. */
export type OutputSuffix = (typeof OUTPUT_SUFFIXES)[number];

/** What one case produced, by suffix. */
export type GoldenOutputs = Partial<Record<OutputSuffix, string>>;

function errText(e: unknown): string {
  // libvirt's own errors as libvirt prints them; ours name the element too.
  if (DomainXmlError.isInstance(e)) {
    return (e.mirrorsLibvirt ? e.libvirtMessage : `${e.libvirtMessage}: ${e.path}`) + "\n";
  }
  throw e;
}

/** Runs one case. */
export function computeGolden(text: string): GoldenOutputs {
  const out: GoldenOutputs = {};
  let def: DomainDef;
  try {
    def = DomainDef.parse(text);
    const id = normalizeIdentity(def);
    out[".identity.json"] =
      JSON.stringify({ name: id.name, uuid: id.uuid, hwuuid: id.hwuuid, guestUuid: id.guestUuid }) + "\n";
    out[".out.xml"] = def.format();
  } catch (e) {
    out[".err"] = errText(e);
    return out;
  }
  try {
    out[".args"] = buildQemuArgv(def).argv.join("\n") + "\n";
  } catch (e) {
    out[".err"] = errText(e);
  }
  return out;
}

/** The case names (inputs `NAME.xml`, not outputs), sorted. */
export function goldenCases(): string[] {
  return fs
    .readdirSync(GOLDEN_DIR)
    .filter((f) => f.endsWith(".xml") && !f.endsWith(".out.xml"))
    .map((f) => f.slice(0, -".xml".length))
    .sort();
}

/** Reads a case's input. */
export function readCase(name: string): string {
  return fs.readFileSync(path.join(GOLDEN_DIR, `${name}.xml`), "utf8");
}
