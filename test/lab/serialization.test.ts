/**
 * The provider survives serialization: it is serialized exactly as `dynamic.Resource` does
 * (`serializeFunction(() => provider, { allowSecrets: true })`), then loaded the way the
 * dynamic-provider host loads it (`requireFromString(text).handler()`) in a fresh node process
 * started outside the repository, and drives a real domain on the lab.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { domainProvider } from "../../sdk/provider";
import { VirshBackend } from "../../provider/backends/virsh/virsh-backend";
import { RUN_PREFIX, removeDomains } from "../support/domains";
import { requireLab, Lab } from "../support/lab";
import { REPO_ROOT } from "../support/paths";

const H = "5d5b0f1d-128b-4517-8e65-b258a8734c1d";

describe("the serialized provider in a fresh process (lab)", function () {
  let lab: Lab;
  const name = `${RUN_PREFIX}-ser`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-ser-"));
  before(async () => {
    lab = await requireLab("new");
  });
  after(async () => {
    fs.rmSync(tmp, { recursive: true, force: true });
    await removeDomains(lab.uri, name);
  });

  it("is small, captures no project code by value, and runs check/create/read/delete", async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const sc = require("@pulumi/pulumi/runtime/closure/serializeClosure");
    const sf = await sc.serializeFunction(() => domainProvider, { allowSecrets: true });
    const text: string = sf.text;
    expect(text.length).to.be.below(8000);
    expect(text).to.not.contain("VirshBackend");
    fs.writeFileSync(path.join(tmp, "provider.js.txt"), text);
    const pulumiDir = path.dirname(require.resolve("@pulumi/pulumi/package.json", { paths: [REPO_ROOT] }));
    const script = `
      const rfs = require(require.resolve("require-from-string", { paths: [${JSON.stringify(pulumiDir)}] }));
      const provider = rfs(require("fs").readFileSync("provider.js.txt", "utf8")).handler();
      (async () => {
        const inputs = { name: ${JSON.stringify(name)}, hwuuid: ${JSON.stringify(H)}, connection: { uri: ${JSON.stringify(lab.uri)} }, shutdownTimeoutSeconds: 0 };
        const c = await provider.check({}, inputs);
        if (c.failures.length) throw new Error(JSON.stringify(c.failures));
        const r = await provider.create(c.inputs);
        const d = await provider.diff(r.id, r.outs, c.inputs);
        const rd = await provider.read(r.id, r.outs);
        process.stdout.write(JSON.stringify({ id: r.id, uuid: r.outs.uuid, guestUuid: r.outs.guestUuid, changes: d.changes, readId: rd.id }) + "\\n");
        await provider.delete(r.id, rd.props);
      })().catch((e) => { console.error(e); process.exit(1); });
    `;
    const out = execFileSync(process.execPath, ["-e", script], {
      cwd: tmp,
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "" },
    });
    const got = JSON.parse(out);
    expect(got).to.include({ id: name, guestUuid: H, changes: false, readId: name });
    expect(await new VirshBackend(lab.uri).exists(name)).to.equal(false);
  });
});
