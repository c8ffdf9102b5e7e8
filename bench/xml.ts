/**
 * XML parse + normalize + semantic diff per domain over a corpus (the golden inputs and outputs
 * that libvirt accepts, plus generated domains with many devices), against a bare
 * fast-xml-parser parse of the same documents in the same run.
 */
import { XMLParser } from "fast-xml-parser";
import * as fs from "node:fs";
import * as path from "node:path";
import { diffDomains } from "../provider/diff/semantic";
import { DomainDef } from "../provider/xml/domain";
import { normalizeIdentity } from "../provider/xml/identity";
import { measure, table } from "./harness";

/** The corpus: every golden document that parses and passes the identity rules, plus generated ones. */
export function corpus(repo: string): string[] {
  const dir = path.join(repo, "test", "data");
  const docs: string[] = [];
  for (const f of fs
    .readdirSync(dir)
    .filter((x) => x.endsWith(".xml"))
    .sort()) {
    const text = fs.readFileSync(path.join(dir, f), "utf8");
    try {
      normalizeIdentity(DomainDef.parse(text));
      docs.push(text);
    } catch {
      // refused documents are not domains
    }
  }
  for (let i = 0; i < 20; i++) {
    const disks = Array.from(
      { length: 1 + (i % 8) },
      (_, k) =>
        `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/img/g${i}-${k}.qcow2'/><target dev='vd${String.fromCharCode(97 + k)}' bus='virtio'/><address type='pci' domain='0x0000' bus='0x00' slot='0x${(4 + k).toString(16)}' function='0x0'/></disk>`,
    ).join("");
    const nics = Array.from(
      { length: 1 + (i % 4) },
      (_, k) =>
        `<interface type='user'><mac address='52:54:00:00:${i.toString(16).padStart(2, "0")}:${k.toString(16).padStart(2, "0")}'/><model type='virtio'/></interface>`,
    ).join("");
    docs.push(
      `<domain type='qemu'><name>gen-${i}</name><uuid>33721861-ccee-4dc2-858c-5f1e46297${String(i).padStart(3, "0")}</uuid><memory unit='MiB'>${64 * (1 + i)}</memory><vcpu>${1 + (i % 4)}</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/><apic/></features><devices>${disks}${nics}<serial type='pty'/><console type='pty'/><memballoon model='virtio'/></devices></domain>`,
    );
  }
  return docs;
}

/** Runs the XML benchmark; returns Markdown. */
export async function benchXml(repo: string, reps: number, rounds = 20): Promise<string> {
  const docs = corpus(repo);
  const parser = new XMLParser({ preserveOrder: true, ignoreAttributes: false, parseTagValue: false });
  const n = docs.length * rounds;
  const base = await measure(`bare fast-xml-parser parse`, reps, async () => {
    for (let r = 0; r < rounds; r++) for (const d of docs) parser.parse(d);
  });
  const ours = await measure(`parse + normalize + diff (desired vs formatted actual)`, reps, async () => {
    for (let r = 0; r < rounds; r++) {
      for (const d of docs) {
        const desired = DomainDef.parse(d);
        normalizeIdentity(desired);
        diffDomains(desired, DomainDef.parse(desired.format()));
      }
    }
  });
  const per = (s: typeof base) => ({ label: `${s.label}, per domain`, ms: s.ms.map((x) => x / n) });
  return table(
    `XML per domain over a corpus of ${docs.length} domain XMLs (${reps} reps x ${rounds} rounds)`,
    per(base),
    [per(ours)],
  );
}
