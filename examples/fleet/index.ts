// A fleet cloned from a shut-off template domain: each member gets a new libvirt uuid, name and
// MACs, a qcow2 overlay of the template's disk, and a hardware UUID derived from its key (stable
// across re-creation, distinct across stacks and fleets).
//
//   pulumi config set libvirt:uri qemu:///system
//   pulumi config set template web-template      # an existing, shut-off domain
//   pulumi config set size 3                      # then 5, then 2: only those members change
//   pulumi up
import * as pulumi from "@pulumi/pulumi";
import { DomainFleet } from "pulumi-libvirt-domain";

const cfg = new pulumi.Config();
const fleet = new DomainFleet("web", {
  template: { name: cfg.require("template") },
  members: cfg.getNumber("size") ?? 3,
  namePattern: cfg.get("namePattern") ?? "{stack}-{fleet}-{key}",
  hwuuidPolicy: "derive",
  diskMode: "overlay",
  imageDir: cfg.get("imageDir"),
  shutdownTimeoutSeconds: cfg.getNumber("shutdownTimeoutSeconds") ?? 30,
});

export const members = Object.values(fleet.members).map((d) => ({
  name: d.name,
  uuid: d.uuid,
  guestUuid: d.guestUuid,
}));
