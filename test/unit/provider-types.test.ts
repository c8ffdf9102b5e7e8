/**
 * The typed provider boundary: the SDK's Args are the provider's inputs (checked at compile
 * time), the key lists are the types' keys, the module old stacks load by path (`impl.js`) is the
 * same provider, and the lifecycle's errors belong to the one error family with a fix.
 */
import { expect } from "chai";
import type * as pulumi from "@pulumi/pulumi";
import { DOMAIN_INPUT_TYPES } from "../../provider/desired/inputs";
import * as disk from "../../provider/dynamic/disk";
import * as adapter from "../../provider/dynamic/domain-provider";
import * as impl from "../../provider/dynamic/impl";
import {
  DISK_INPUT_KEYS,
  DOMAIN_INPUT_KEYS,
  DiskInputs,
  DomainInputs,
  Expect,
  FleetInputs,
  FleetOutputs,
  SameKeys,
} from "../../provider/dynamic/types";
import { DomainInitError, LifecycleError } from "../../provider/lifecycle/errors";
import { LibvirtDomainError } from "../../provider/xml/errors";
import type { DomainArgs } from "../../sdk/domain";
import type { DomainDiskResourceArgs } from "../../sdk/disk";
import type { DomainFleet, DomainFleetArgs } from "../../sdk/fleet";

/** True when every value of A is a value of B. */
type Assignable<A, B> = [A] extends [B] ? true : false;

// Compile-time: each SDK Args type takes exactly the provider's inputs (a Domain's `ownerId` is
// set by the SDK itself), and, once resolved, each value is one the provider takes.
type DomainArgsInputs = Omit<DomainInputs, "ownerId">;
const typesMatch: [
  Expect<SameKeys<DomainArgs, DomainArgsInputs>>,
  Expect<Assignable<pulumi.Unwrap<DomainArgs>, DomainArgsInputs>>,
  Expect<SameKeys<DomainDiskResourceArgs, DiskInputs>>,
  Expect<Assignable<pulumi.Unwrap<DomainDiskResourceArgs>, DiskInputs>>,
  Expect<Assignable<DomainFleetArgs, FleetInputs>>,
  Expect<Assignable<FleetInputs, DomainFleetArgs>>,
  Expect<SameKeys<Pick<DomainFleet, "hwuuids">, FleetOutputs>>,
] = [true, true, true, true, true, true, true];

describe("typed provider boundary", () => {
  it("the SDK's Args are the provider's inputs (checked when this file compiles)", () => {
    expect(typesMatch.every((t) => t)).to.equal(true);
  });

  it("the Domain's input key list is the keys the validation checks, once each", () => {
    expect([...DOMAIN_INPUT_KEYS].sort()).to.deep.equal(Object.keys(DOMAIN_INPUT_TYPES).sort());
    expect(new Set(DOMAIN_INPUT_KEYS).size).to.equal(DOMAIN_INPUT_KEYS.length);
  });

  it("the DomainDisk's input key list is the keys its check checks", () => {
    expect([...DISK_INPUT_KEYS].sort()).to.deep.equal(Object.keys(disk.DISK_INPUT_TYPES).sort());
  });

  it("impl.js, which stacks of earlier versions load by path, is the same Domain provider", () => {
    expect(impl.provider).to.equal(adapter.provider);
    expect(Object.keys(impl.provider).sort()).to.deep.equal(["check", "create", "delete", "diff", "read", "update"]);
    expect(impl.check).to.equal(adapter.check);
    expect(impl.remove).to.equal(adapter.remove);
    expect(impl.xmlChanges).to.be.a("function");
    expect(disk.provider.delete).to.equal(disk.remove);
  });
});

describe("lifecycle errors", () => {
  it("a refused or failed step is a LibvirtDomainError with path and fix, keeping its message", () => {
    const e = new LifecycleError(
      "refusing to delete domain web-1 on qemu:///system: it has no mark",
      { path: "domain web-1", fix: "remove it from the state with `pulumi state delete`" },
      "refusing to delete domain web-1 on qemu:///system: it has no mark; fix: remove it from the state with `pulumi state delete`",
    );
    expect(LibvirtDomainError.isInstance(e)).to.equal(true);
    expect(LifecycleError.isInstance(e)).to.equal(true);
    expect(DomainInitError.isInstance(e)).to.equal(false);
    expect(e.message).to.match(/^refusing to delete domain web-1/);
    expect(e.path).to.equal("domain web-1");
    expect(e.fix).to.be.a("string").and.not.equal("");
  });

  it("the default message is the family's one format", () => {
    const e = new LifecycleError('no domain named "x" exists on qemu:///system to adopt', {
      path: "adopt",
      fix: "correct the name, or remove adopt to create it",
    });
    expect(e.message).to.equal(
      'adopt: no domain named "x" exists on qemu:///system to adopt; fix: correct the name, or remove adopt to create it',
    );
  });

  it("a half-made domain's error carries what the engine records (id, properties, reasons) and a fix", () => {
    const e = new DomainInitError(
      "start web-1 failed (boom); it stays in the state",
      {
        path: "domain web-1",
        fix: "fix what keeps it from starting, then run `pulumi up` or `pulumi destroy`",
      },
      "web-1",
      { name: "web-1" },
    );
    expect(LibvirtDomainError.isInstance(e)).to.equal(true);
    expect(DomainInitError.isInstance(e)).to.equal(true);
    expect(e.id).to.equal("web-1");
    expect(e.properties).to.deep.equal({ name: "web-1" });
    expect(e.reasons).to.deep.equal([e.message]);
    expect(e.message).to.equal("start web-1 failed (boom); it stays in the state");
    expect(e.fix).to.be.a("string").and.not.equal("");
  });
});
