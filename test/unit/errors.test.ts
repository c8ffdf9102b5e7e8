/**
 * One error family: every error class the provider can raise extends (or, for `FleetPlanError`,
 * is branded into) `LibvirtDomainError`, has its own brand and `isInstance`, carries a `fix`, and
 * writes its message in the one format (`PATH: REASON; got "VALUE"; allowed: ...; fix: ...`).
 * Each class is provoked here through the code that raises it, without a lab. A static check
 * then holds that no provider or SDK code raises a plain `Error` any more.
 */
import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { DomainXmlError, formatErrorMessage, LibvirtDomainError } from "../../provider/xml/errors";
import { DomainDef } from "../../provider/xml/domain";
import { composeDomain, ComposeError } from "../../provider/desired/compose";
import { runVirsh, runVirshSync, VirshError } from "../../provider/backends/virsh/exec";
import { QmpError, QmpSession } from "../../provider/backends/qemu/qmp";
import { DirectError, parseDirectUri, QemuDirectBackend } from "../../provider/backends/qemu/direct";
import { DirectLock } from "../../provider/backends/qemu/lock";
import { copyImage, createOverlay, ImageError } from "../../provider/backends/image";
import { checkVolumeName, VolumeError } from "../../provider/xml/volume";
import { COMMANDS, UsageError } from "../../provider/cli/main";
import { DomainFleet, DomainFleetArgs, FleetPlanError } from "../../sdk/fleet";
import { REPO_ROOT } from "../support/paths";
import { rejection } from "../support/async";
import { usePulumiMocks } from "../support/pulumi-mocks";

/** What `fn` throws (or the promise rejects with). */
async function caught(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  throw new Error("expected an error, got none");
}

/** The family's fields of `e`, as {@link formatErrorMessage} takes them. */
function details(e: LibvirtDomainError | FleetPlanError) {
  return { path: e.path, value: e.value, allowed: e.allowed, fix: e.fix };
}

/**
 * Holds the family's promises for `e`: branded into the family and its own class, a non-empty
 * fix, and the one message format (for errors listing several problems: one a line, each with
 * its fix; for an image error the reason names the image, so the path is not repeated).
 */
function expectFamily(e: unknown, isOwn: (e: unknown) => boolean, kind: "one" | "list" | "reason-names-path" = "one") {
  expect(LibvirtDomainError.isInstance(e), String(e)).to.equal(true);
  expect(isOwn(e), `its own isInstance: ${String(e)}`).to.equal(true);
  const err = e as LibvirtDomainError;
  expect(err.fix, err.message).to.be.a("string").and.not.equal("");
  expect(err.message, "one spelling: fix: in lower case").to.not.contain("Fix:");
  if (kind === "one") expect(err.message).to.equal(formatErrorMessage(err.reason, details(err)));
  else if (kind === "reason-names-path") {
    expect(err.message).to.equal(formatErrorMessage(err.reason, { ...details(err), path: "" }));
    expect(err.reason).to.contain(err.path);
  } else {
    const lines = err.message.split("\n").filter((l) => !/:$/.test(l));
    expect(lines.length, err.message).to.be.above(0);
    for (const l of lines) expect(l, err.message).to.match(/^(- )?[^:]+: .*fix: \S/);
  }
}

describe("one error family: every error the provider raises carries a fix, in one format", function () {
  this.timeout(20000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lvd-errors-"));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("DomainXmlError: a document that is not well formed", async () => {
    expectFamily(await caught(() => DomainDef.parse("<domain><name>x</domain>")), (e) => DomainXmlError.isInstance(e));
  });

  it("ComposeError: per-property failures, each with its fix", async () => {
    const e = await caught(() => composeDomain({ name: "x", xml: "<domain" }, "native"));
    expectFamily(e, (x) => ComposeError.isInstance(x), "list");
    expect((e as ComposeError).failures.map((f) => f.property)).to.deep.equal(["xml"]);
    expect((e as ComposeError).path).to.equal("xml");
  });

  describe("VirshError: libvirt's text kept, a fix for each common failure", () => {
    const cases: [string, RegExp][] = [
      ["error: failed to get domain 'web'", /list --all.*pulumi refresh/],
      ["error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/x': No such file", /version/],
      ["error: operation failed: domain 'web' already exists with uuid 1", /another name/],
      ["error: internal error: malformed hwuuid element", /help define/],
    ];
    for (const [stderr, fix] of cases) {
      it(stderr.split("\n").at(-1)!, () => {
        const e = new VirshError("qemu:///system", ["define", "/tmp/x.xml"], 1, stderr, "");
        expectFamily(e, (x) => VirshError.isInstance(x));
        expect(e.libvirtMessage).to.equal(stderr.split("\n").at(-1)!.slice("error: ".length));
        expect(e.message).to.match(/^virsh define on qemu:\/\/\/system: /);
        expect(e.fix).to.match(fix);
      });
    }
    it("virsh not found (async and sync)", async () => {
      const opts = { virsh: path.join(tmp, "no-virsh") };
      for (const e of [
        await rejection(runVirsh("test:///default", ["list"], opts)),
        await caught(() => runVirshSync("test:///default", ["list"], opts)),
      ]) {
        expectFamily(e, (x) => VirshError.isInstance(x));
        expect((e as VirshError).fix).to.contain("install libvirt-clients");
      }
    });
    it("virsh killed by a signal", () => {
      const e = new VirshError("qemu:///system", ["start", "web"], "SIGTERM", "", "");
      expectFamily(e, (x) => VirshError.isInstance(x));
      expect(e.fix).to.contain("SIGTERM");
    });
  });

  it("QmpError: nothing listening on the socket", async () => {
    const e = await rejection(QmpSession.connect(path.join(tmp, "nobody.sock"), 500));
    expectFamily(e, (x) => QmpError.isInstance(x));
    expect((e as QmpError).path).to.equal(`QMP at ${path.join(tmp, "nobody.sock")}`);
  });

  describe("DirectError", () => {
    it("a qemu-direct URI without a state directory", async () => {
      const e = await caught(() => parseDirectUri("qemu-direct://host/x"));
      expectFamily(e, (x) => DirectError.isInstance(x));
      expect((e as DirectError).path).to.equal("connection.uri");
    });
    it("a domain that is not defined, in libvirt's words", async () => {
      const e = await rejection(new QemuDirectBackend(`qemu-direct://${tmp}/state`).dumpxmlInactive("nope"));
      expectFamily(e, (x) => DirectError.isInstance(x));
      expect((e as DirectError).libvirtMessage).to.equal("failed to get domain 'nope'");
    });
    it("a name that cannot be a directory", async () => {
      const e = await rejection(new QemuDirectBackend(`qemu-direct://${tmp}/state`).dumpxmlInactive("../x"));
      expectFamily(e, (x) => DirectError.isInstance(x));
    });
    it("a domain lock held past the bound", async () => {
      const dir = path.join(tmp, "lock");
      const held = new DirectLock(dir, 5000);
      await held.acquire();
      try {
        const e = await rejection(new DirectLock(dir, 200).acquire());
        expectFamily(e, (x) => DirectError.isInstance(x));
        expect((e as DirectError).fix).to.contain(`pid ${process.pid}`);
      } finally {
        await held.release();
      }
    });
  });

  describe("ImageError", () => {
    it("an existing file is never overwritten", async () => {
      const target = path.join(tmp, "exists.qcow2");
      fs.writeFileSync(target, "");
      const e = await rejection(copyImage(target, target));
      expectFamily(e, (x) => ImageError.isInstance(x), "reason-names-path");
    });
    it("a template image that cannot be read", async () => {
      const e = await rejection(copyImage(path.join(tmp, "new.img"), path.join(tmp, "no-template.img")));
      expectFamily(e, (x) => ImageError.isInstance(x), "reason-names-path");
    });
    it("qemu-img refusing (a backing file that is not an image) or missing: cannot write", async () => {
      const backing = path.join(tmp, "backing.txt");
      fs.writeFileSync(backing, "not an image");
      const e = await rejection(createOverlay(path.join(tmp, "ov.qcow2"), backing, "qcow2"));
      expectFamily(e, (x) => ImageError.isInstance(x), "reason-names-path");
      expect((e as ImageError).reason).to.match(/^cannot write /);
      expect(
        fs.readdirSync(tmp).filter((f) => f.includes("partial")),
        "no temporary file left",
      ).to.deep.equal([]);
    });
  });

  it("VolumeError: a storage volume name that cannot be a file name", () => {
    let e: unknown;
    try {
      checkVolumeName("../escape", "disks[0].volume");
    } catch (x) {
      e = x;
    }
    expectFamily(e, (x) => VolumeError.isInstance(x));
  });

  it("UsageError: wrong arguments to a CLI command", async () => {
    const io = { out: () => undefined, err: () => undefined, stdin: () => "" };
    for (const name of Object.keys(COMMANDS)) {
      const cmd = COMMANDS[name]!;
      const e = await caught(() => cmd.run(["a", "b", "c"], io));
      expectFamily(e, (x) => UsageError.isInstance(x));
      expect((e as UsageError).reason, name).to.equal(`usage: ${cmd.usage}`);
    }
  });

  describe("FleetPlanError (a pulumi.ResourceError branded into the family)", () => {
    usePulumiMocks();
    const fleet = (args: Record<string, unknown>) => () => new DomainFleet("f", args as unknown as DomainFleetArgs);
    const uri = `qemu-direct://${tmp}/fleet-state`;
    it("one bad argument", async () => {
      const e = await caught(fleet({ template: { name: "t", uri }, members: "12" }));
      expect(e).to.be.instanceOf(pulumi.ResourceError);
      expectFamily(e, (x) => FleetPlanError.isInstance(x), "list");
      expect((e as FleetPlanError).path).to.equal("members");
    });
    it("several bad arguments", async () => {
      const e = await caught(fleet({ template: null, members: "12", running: "yes" }));
      expectFamily(e, (x) => FleetPlanError.isInstance(x), "list");
    });
    it("a template that cannot be read", async () => {
      const e = await caught(fleet({ template: { name: "t", uri }, members: 1 }));
      expectFamily(e, (x) => FleetPlanError.isInstance(x));
      expect((e as FleetPlanError).path).to.equal("template.name");
    });
  });
});

describe("no plain Error left in provider and SDK code", () => {
  /** Every .ts file under `dir`. */
  function tsFiles(dir: string): string[] {
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
      const p = path.join(dir, d.name);
      return d.isDirectory() ? tsFiles(p) : d.name.endsWith(".ts") ? [p] : [];
    });
  }
  const files = ["provider", "sdk"].flatMap((d) => tsFiles(path.join(REPO_ROOT, d)));

  it("scans the provider and the SDK", () => {
    expect(files.length).to.be.above(20);
  });

  it("raises family errors only: no `new Error(` (each site listed)", () => {
    const sites = files.flatMap((f) =>
      fs
        .readFileSync(f, "utf8")
        .split("\n")
        .flatMap((l, i) => (/\bnew Error\(/.test(l) ? [`${path.relative(REPO_ROOT, f)}:${i + 1}: ${l.trim()}`] : [])),
    );
    expect(sites, `plain Errors raised:\n${sites.join("\n")}`).to.deep.equal([]);
  });

  it("every DomainXmlError raised names a fix (each site without one listed)", () => {
    const sites = files.flatMap((f) => {
      const text = fs.readFileSync(f, "utf8");
      const out: string[] = [];
      for (const m of text.matchAll(/new DomainXmlError\(/g)) {
        // The call's text: up to the parenthesis that closes it.
        let i = m.index + m[0].length;
        for (let depth = 1; depth > 0 && i < text.length; i++) depth += text[i] === "(" ? 1 : text[i] === ")" ? -1 : 0;
        const call = text.slice(m.index, i);
        if (!/\bfix\b/.test(call))
          out.push(`${path.relative(REPO_ROOT, f)}:${text.slice(0, m.index).split("\n").length}: ${call}`);
      }
      return out;
    });
    expect(sites, sites.join("\n")).to.deep.equal([]);
  });

  it('one spelling: "fix:" in lower case in every message', () => {
    const sites = files.flatMap((f) =>
      fs
        .readFileSync(f, "utf8")
        .split("\n")
        .flatMap((l, i) => (/\bFix: /.test(l) ? [`${path.relative(REPO_ROOT, f)}:${i + 1}: ${l.trim()}`] : [])),
    );
    expect(sites, sites.join("\n")).to.deep.equal([]);
  });
});
