/**
 * Domain create / read / delete through the provider against the same virsh commands run by a
 * shell loop (define+start, dumpxml, destroy+undefine), N domains per phase, per domain.
 * And refresh: the provider's read of 50 domains against `virsh dumpxml` of the same 50.
 * Provider creates and deletes run one after another; reads run concurrently, as
 * `pulumi refresh` calls them (the loop stays a plain sequential loop).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { VirshBackend } from "../provider/backends/virsh/virsh-backend";
import * as impl from "../provider/dynamic/impl";
import { measure, table } from "./harness";

function domainXml(name: string): string {
  return `<domain type='qemu'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices><serial type='pty'/></devices></domain>`;
}

function loop(uri: string, body: string, names: string[], dir: string): void {
  // The baseline: a plain shell loop of virsh processes, one command each.
  const script = `for n in ${names.join(" ")}; do ${body}; done`;
  execFileSync("bash", ["-c", script], {
    env: { ...process.env, URI: uri, DIR: dir },
    stdio: ["ignore", "ignore", "inherit"],
  });
}

/** The provider outputs recorded for `name` (throws when its create did not record them). */
function outsOf(outs: Record<string, Record<string, unknown>>, name: string): Record<string, unknown> {
  const o = outs[name];
  if (!o) throw new Error(`bench crud: no provider outputs recorded for ${name}`);
  return o;
}

/** Runs crud and refresh; returns Markdown. */
export async function benchCrud(uri: string, reps: number, n: number, refreshN: number): Promise<string> {
  // Leftovers of an interrupted run of this benchmark (its own names only).
  const v = new VirshBackend(uri);
  for (const n of await v.listNames()) {
    if (/^bench-(crud|refresh)-\d+$/.test(n)) await v.destroyAndUndefine(n);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-bench-"));
  const names = Array.from({ length: n }, (_, i) => `bench-crud-${i}`);
  for (const name of names) fs.writeFileSync(path.join(dir, `${name}.xml`), domainXml(name));
  const inputs = await Promise.all(
    names.map(
      async (name) =>
        (await impl.check({}, { name, connection: { uri }, shutdownTimeoutSeconds: 0, xml: domainXml(name) })).inputs,
    ),
  );
  const outs: Record<string, Record<string, unknown>> = {};
  const out: string[] = [];
  try {
    const lc: number[] = [];
    const lr: number[] = [];
    const ld: number[] = [];
    const pc: number[] = [];
    const pr: number[] = [];
    const pd: number[] = [];
    const time = (f: () => void | Promise<void>, into: number[]) => async () => {
      const t0 = process.hrtime.bigint();
      await f();
      into.push(Number(process.hrtime.bigint() - t0) / 1e6 / n);
    };
    for (let r = 0; r < reps; r++) {
      process.stderr.write(`[bench crud] rep ${r + 1}/${reps}\n`);
      await time(
        () =>
          loop(
            uri,
            `virsh -q -c "$URI" define "$DIR/$n.xml" >/dev/null && virsh -q -c "$URI" start "$n" >/dev/null`,
            names,
            dir,
          ),
        lc,
      )();
      await time(() => loop(uri, `virsh -q -c "$URI" dumpxml --inactive "$n" >/dev/null`, names, dir), lr)();
      await time(
        () =>
          loop(
            uri,
            `virsh -q -c "$URI" destroy "$n" >/dev/null && virsh -q -c "$URI" undefine --nvram "$n" >/dev/null`,
            names,
            dir,
          ),
        ld,
      )();
      await time(async () => {
        for (const i of inputs) outs[i.name as string] = (await impl.create(i)).outs;
      }, pc)();
      await time(async () => {
        // As `pulumi refresh` calls them: concurrently.
        await Promise.all(names.map((name) => impl.read(name, outsOf(outs, name))));
      }, pr)();
      await time(async () => {
        for (const name of names) await impl.remove(name, outsOf(outs, name));
      }, pd)();
    }
    out.push(
      table(
        `Create (define + start), per domain, ${n} domains (${reps} reps)`,
        { label: "shell loop: virsh define; virsh start", ms: lc },
        [{ label: "provider create", ms: pc }],
      ),
    );
    out.push(
      table(`Read, per domain, ${n} domains (${reps} reps)`, { label: "shell loop: virsh dumpxml", ms: lr }, [
        { label: "provider read: state + XML + drift (concurrent, as pulumi refresh calls it)", ms: pr },
      ]),
    );
    out.push(
      table(
        `Delete (destroy + undefine), per domain, ${n} domains (${reps} reps)`,
        { label: "shell loop: virsh destroy; virsh undefine", ms: ld },
        [{ label: "provider delete (ownership checked)", ms: pd }],
      ),
    );

    // Refresh of many defined domains.
    const rnames = Array.from({ length: refreshN }, (_, i) => `bench-refresh-${i}`);
    const routs: Record<string, Record<string, unknown>> = {};
    for (const name of rnames) {
      const c = await impl.check({}, { name, running: false, connection: { uri }, xml: domainXml(name) });
      routs[name] = (await impl.create(c.inputs)).outs;
    }
    try {
      const base = await measure(`shell loop: virsh dumpxml x ${refreshN}`, reps, async () =>
        loop(uri, `virsh -q -c "$URI" dumpxml --inactive "$n" >/dev/null`, rnames, dir),
      );
      const prov = await measure(
        `provider read x ${refreshN} (concurrent, as pulumi refresh calls it)`,
        reps,
        async () => {
          await Promise.all(rnames.map((name) => impl.read(name, outsOf(routs, name))));
        },
      );
      out.push(table(`Refresh of ${refreshN} domains, whole refresh (${reps} reps)`, base, [prov]));
    } finally {
      for (const [name, o] of Object.entries(routs)) await impl.remove(name, o).catch(() => undefined);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return out.join("\n");
}
