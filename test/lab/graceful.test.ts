/**
 * Graceful stop and delete of a real guest (the tiny guest, scripts/guest.sh) through the Domain
 * provider, on libvirt 12.x, libvirt 9.0 and QEMU-direct (QEMU 7.2 and 11.x): with the default
 * `shutdownTimeoutSeconds` the guest powers itself off on the ACPI button in seconds (its console
 * says `poweroff acpi`), even when the stop comes while it still boots (a press then is lost:
 * the backends press again); a guest that ignores the button (`lvd.acpi=ignore`) is destroyed
 * when the timeout ends. The four targets run at once (each row boots three guests under TCG).
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { backendFor } from "../../provider/backends/domain-backend";
import { DEFAULT_SHUTDOWN_TIMEOUT_SECONDS } from "../../provider/desired/inputs";
import * as impl from "../../provider/dynamic/impl";
import { checkAndCreate, RUN_PREFIX } from "../support/domains";
import {
  GUEST_TARGET_LABELS,
  GuestConsole,
  guestDomainXml,
  GuestTarget,
  guestTarget,
  GuestTargetKind,
  inParallel,
} from "../support/guest";

const H = "7c0b3f0e-52a4-4d8e-9d55-1f3e2a6b9c41";
const KINDS: readonly GuestTargetKind[] = ["libvirt-12", "libvirt-9", "direct-7.2", "direct-11"];
/**
 * A stop sent while the guest boots: its boot (about 7 s under TCG alone, 20-25 s when this file's
 * guests boot together on 2 cores) and its power-off, short of the default timeout (60 s): the
 * console's `poweroff acpi` shows it ended by ACPI, not by the destroy after the timeout.
 */
const DURING_BOOT_BOUND_SECONDS = 50;
/** A stop or delete once the guest is ready: its power-off alone. */
const READY_BOUND_SECONDS = 15;
/** The timeout of the guest that ignores ACPI. */
const IGNORE_TIMEOUT_SECONDS = 6;

const seconds = (t0: number): number => (performance.now() - t0) / 1000;

async function stateOf(uri: string, name: string): Promise<string | undefined> {
  return (await backendFor(uri).read(name, { fresh: true }))?.state;
}

/** Create; stop at once (while it boots); start; delete once it is ready: each by ACPI in seconds. */
async function gracefulRow(t: GuestTarget, name: string, timings: string[]): Promise<void> {
  const consolePath = path.join(t.consoleDir, `${name}.console`);
  fs.rmSync(consolePath, { force: true });
  const con = new GuestConsole(consolePath);
  const inputs = {
    name,
    hwuuid: H,
    xml: guestDomainXml({ name, image: t.image, consolePath }),
    connection: { uri: t.uri },
  }; // shutdownTimeoutSeconds: the default
  const a = await checkAndCreate(inputs);
  expect(a.outs.state).to.equal("running");
  expect(a.inputs.shutdownTimeoutSeconds ?? DEFAULT_SHUTDOWN_TIMEOUT_SECONDS).to.equal(60);

  // Stop while the guest still boots: the first press is lost; the backend presses again.
  let t0 = performance.now();
  const off = await impl.update(name, a.outs, (await impl.check(a.outs, { ...inputs, running: false })).inputs);
  const stopSeconds = seconds(t0);
  timings.push(`stopped during boot in ${stopSeconds.toFixed(1)} s`);
  expect(off.outs.state).to.equal("shut off");
  expect(stopSeconds, `${t.label}: seconds to stop (the default timeout is 60)`).to.be.below(DURING_BOOT_BOUND_SECONDS);
  await con.waitFor("poweroff acpi", { timeoutMs: 1000 });

  // Start again (a fresh console), wait until the guest is ready, then delete.
  fs.rmSync(consolePath, { force: true });
  const on = await impl.update(name, off.outs, (await impl.check(off.outs, inputs)).inputs);
  expect(on.outs.state).to.equal("running");
  await con.waitFor("ready");
  t0 = performance.now();
  await impl.remove(name, on.outs);
  const deleteSeconds = seconds(t0);
  timings.push(`deleted once ready in ${deleteSeconds.toFixed(1)} s`);
  expect(deleteSeconds, `${t.label}: seconds to delete (the default timeout is 60)`).to.be.below(READY_BOUND_SECONDS);
  await con.waitFor("poweroff acpi", { timeoutMs: 1000 });
  expect(await stateOf(t.uri, name), "the domain after delete").to.equal(undefined);
}

/** A guest that ignores the button: stop and delete each wait the whole timeout, then destroy it. */
async function ignoringRow(t: GuestTarget, name: string, timings: string[]): Promise<void> {
  const consolePath = path.join(t.consoleDir, `${name}.console`);
  fs.rmSync(consolePath, { force: true });
  const con = new GuestConsole(consolePath);
  const inputs = {
    name,
    xml: guestDomainXml({ name, image: t.image, consolePath, extraCmdline: "lvd.acpi=ignore" }),
    connection: { uri: t.uri },
    shutdownTimeoutSeconds: IGNORE_TIMEOUT_SECONDS,
  };
  const a = await checkAndCreate(inputs);
  const forced = async (what: string, fn: () => Promise<void>): Promise<void> => {
    await con.waitFor("ready");
    const t0 = performance.now();
    await fn();
    const took = seconds(t0);
    timings.push(`ignoring guest ${what} after ${took.toFixed(1)} s`);
    expect(took, `${t.label}: seconds to ${what}`).to.be.at.least(IGNORE_TIMEOUT_SECONDS - 0.5);
    expect(took, `${t.label}: seconds to ${what}`).to.be.below(IGNORE_TIMEOUT_SECONDS + 20);
    expect(con.lines(), "the guest saw the button and ignored it").to.include("poweroff ignored");
    expect(con.lines()).to.not.include("poweroff acpi");
  };
  let off: impl.DomainOutputs | undefined;
  await forced("stopped", async () => {
    off = (await impl.update(name, a.outs, (await impl.check(a.outs, { ...inputs, running: false })).inputs)).outs;
  });
  expect(off!.state).to.equal("shut off");
  fs.rmSync(consolePath, { force: true });
  const on = await impl.update(name, off!, (await impl.check(off!, inputs)).inputs);
  expect(on.outs.state).to.equal("running");
  await forced("deleted", () => impl.remove(name, on.outs));
  expect(await stateOf(t.uri, name), "the domain after delete").to.equal(undefined);
}

describe("graceful stop and delete of a real guest (Domain provider, default shutdownTimeoutSeconds)", function () {
  this.timeout(600000);
  const prefix = `${RUN_PREFIX}-gr-`;
  let work: string;
  const targets = new Map<GuestTargetKind, GuestTarget>();
  const made: { uri: string; name: string; consolePath: string }[] = [];
  const results = new Map<string, Promise<void>>();
  const timings = new Map<GuestTargetKind, string[]>(KINDS.map((k) => [k, []]));
  const rows = KINDS.flatMap((kind) => [
    { kind, title: "ACPI", name: `${prefix}${kind.replace(/\./g, "")}-acpi`, run: gracefulRow },
    { kind, title: "ignored", name: `${prefix}${kind.replace(/\./g, "")}-ign`, run: ignoringRow },
  ]);

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-graceful-"));
    for (const kind of KINDS) targets.set(kind, await guestTarget(kind, work));
    const jobs = rows.map((r) => async () => {
      const t = targets.get(r.kind)!;
      made.push({ uri: t.uri, name: r.name, consolePath: path.join(t.consoleDir, `${r.name}.console`) });
      await r.run(t, r.name, timings.get(r.kind)!);
    });
    inParallel(jobs, 4).forEach((p, i) => results.set(`${rows[i]!.kind}/${rows[i]!.title}`, p));
  });
  after(async () => {
    // One line a target: how long each stop and delete took (the README quotes them).
    for (const [kind, lines] of timings) console.log(`    ${GUEST_TARGET_LABELS[kind]}: ${lines.join("; ")}`);
    for (const m of made) {
      const b = backendFor(m.uri);
      if (await b.exists(m.name).catch(() => false)) await b.destroyAndUndefine(m.name).catch(() => undefined);
      fs.rmSync(m.consolePath, { force: true });
    }
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  for (const kind of KINDS) {
    describe(GUEST_TARGET_LABELS[kind], () => {
      it("stop and delete power the guest off by ACPI in seconds, a stop during boot too (console: poweroff acpi)", () =>
        results.get(`${kind}/ACPI`));
      it(`stop and delete of a guest that ignores ACPI destroy it when the timeout (${IGNORE_TIMEOUT_SECONDS} s) ends (console: poweroff ignored)`, () =>
        results.get(`${kind}/ignored`));
    });
  }
});
