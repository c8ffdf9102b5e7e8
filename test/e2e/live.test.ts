/**
 * Ten running domains change memory in one `pulumi up` (the real Pulumi CLI): a live change
 * (`setmem --live --config` within `<memory>`), so no domain restarts (same QEMU pids), none
 * fails, `pendingRestart` stays false, and the following preview shows no changes. For the
 * record: terraform-provider-libvirt 0.9.7 power-cycled each of ten and then failed all ten
 * ("Provider produced inconsistent result after apply").
 */
import { expect } from "chai";
import * as path from "node:path";
import { DomainDef } from "../../provider/xml/domain";
import { removeDomains, RUN_PREFIX } from "../support/domains";
import { Lab, requireLab } from "../support/lab";
import { REPO_ROOT } from "../support/paths";
import { PulumiStack } from "../support/pulumi";
import { qemuPid } from "../support/qemu-pid";

for (const labName of ["new", "host"] as const) {
  describe(`pulumi CLI end to end: ten running domains change memory live (${labName} lab)`, function () {
    this.timeout(900000);
    let lab: Lab;
    let s: PulumiStack;
    const prefix = `${RUN_PREFIX}-lm${labName[0]}-`;
    const names = Array.from({ length: 10 }, (_, i) => `${prefix}${i}`);
    before(async () => {
      lab = await requireLab(labName);
      s = new PulumiStack(
        path.join(REPO_ROOT, "test", "e2e", "programs", "live-memory"),
        `live-memory-${labName}`,
        "e2e",
      );
      s.init({ "libvirt:uri": lab.uri, prefix, currentMiB: "96" });
    });
    after(async () => {
      s?.run("destroy", "--yes");
      if (lab) await removeDomains(lab.uri, prefix);
    });

    it("one up changes all ten with no failure and no restart; the next preview shows no changes", async () => {
      s.ok("up", "--yes");
      const pids = names.map((n) => qemuPid(n));
      expect(
        pids.every((p) => typeof p === "number"),
        `QEMU pids ${JSON.stringify(pids)}`,
      ).to.equal(true);

      s.setConfig("currentMiB", "64");
      const up = s.ok("up", "--yes");
      expect(up.stdout).to.match(/10 updated/);
      const out = s.outputs();
      expect(out.pendingRestart, "no restart pending").to.deep.equal(Array(10).fill(false));
      expect(out.states).to.deep.equal(Array(10).fill("running"));
      for (const x of out.xmls as string[])
        expect(DomainDef.parse(x).currentMemoryKiB, "the definition's currentMemory").to.equal(64n * 1024n);
      expect(
        names.map((n) => qemuPid(n)),
        "the same QEMU processes: none restarted",
      ).to.deep.equal(pids);
      // (These guests run no OS, so no balloon driver gives the memory back: libvirt's live
      // <currentMemory> stays what the guest holds. test/lab/live.test.ts has a guest that does.)
      s.ok("preview", "--expect-no-changes");
      s.ok("refresh", "--yes");
      s.ok("preview", "--expect-no-changes");
    });
  });
}
