/**
 * The resources' type tokens (the middle of every URN), with Pulumi's mocks: `...:Domain` and
 * `...:DiskImage`, and the 0.1.0 name `DomainDisk` is the same class. That the aliases to the
 * 0.1.0 tokens keep a real stack's URNs is shown end to end by test/e2e/upgrade.test.ts.
 */
import { expect } from "chai";
import * as pulumi from "@pulumi/pulumi";
import { DiskImage, Domain, DomainDisk } from "../../sdk";
import { usePulumiMocks } from "../support/pulumi-mocks";

function urnOf(r: pulumi.Resource): Promise<string> {
  return new Promise((resolve) => r.urn.apply(resolve));
}

describe("type tokens: each resource's type names it", () => {
  usePulumiMocks();

  it("Domain: pulumi-nodejs:dynamic/libvirt-domain:Domain", async () => {
    const d = new Domain("web", { name: "web-1", connection: { uri: "qemu:///system" } });
    expect(await urnOf(d)).to.equal("urn:pulumi:stack::proj::pulumi-nodejs:dynamic/libvirt-domain:Domain::web");
  });

  it("DiskImage: pulumi-nodejs:dynamic/libvirt-domain:DiskImage", async () => {
    const args = { path: "/tmp/a.qcow2", source: "/tmp/b.qcow2", sourceFormat: "qcow2", mode: "overlay" } as const;
    expect(await urnOf(new DiskImage("img", args))).to.equal(
      "urn:pulumi:stack::proj::pulumi-nodejs:dynamic/libvirt-domain:DiskImage::img",
    );
  });

  it("DomainDisk (deprecated) is DiskImage: same class, same type token", async () => {
    expect(DomainDisk).to.equal(DiskImage);
    const old = new DomainDisk("old", {
      path: "/tmp/c.qcow2",
      source: "/tmp/b.qcow2",
      sourceFormat: "qcow2",
      mode: "copy",
    });
    expect(old).to.be.instanceOf(DiskImage);
    expect(await urnOf(old)).to.equal("urn:pulumi:stack::proj::pulumi-nodejs:dynamic/libvirt-domain:DiskImage::old");
  });
});
