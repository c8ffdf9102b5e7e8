// A fleet cloned from a shut-off template domain: each member gets a new libvirt uuid, name and
// MACs, a qcow2 overlay of the template's disk, and a hardware UUID derived from its key (stable
// across re-creation, distinct across stacks and fleets).
//
//   pulumi config set libvirt:uri qemu:///system
//   pulumi config set template web-template      # an existing, shut-off domain
//   pulumi config set size 3                      # then 5, then 2: only those members change
//   pulumi up
//
// Across several hosts (a template of that name on each; members spread, and stay where placed):
//
//   pulumi config set hosts '[{"name":"a","uri":"qemu:///system"},{"name":"b","uri":"qemu+ssh://root@hv2/system"}]'
//   pulumi config set placement '{"1":"b"}'      # optional: member key -> host
//   pulumi up --continue-on-error                  # one host down does not stop the others
import * as pulumi from "@pulumi/pulumi";
import { DomainFleet, FleetHost } from "pulumi-libvirt-domain";

const cfg = new pulumi.Config();
const fleet = new DomainFleet("web", {
  template: { name: cfg.require("template") },
  hosts: cfg.getObject<FleetHost[]>("hosts"),
  placement: cfg.getObject<Record<string, string>>("placement"),
  members: cfg.getNumber("size") ?? 3,
  namePattern: cfg.get("namePattern") ?? "{stack}-{fleet}-{key}",
  hwuuidPolicy: "derive",
  diskMode: "overlay",
  imageDir: cfg.get("imageDir"),
  seedImages: cfg.getBoolean("seedImages"), // a host lacking the template's image gets it from another host
  shutdownTimeoutSeconds: cfg.getNumber("shutdownTimeoutSeconds") ?? 30,
});

export const members = Object.entries(fleet.members).map(([key, d]) => ({
  key,
  host: fleet.placement[key],
  name: d.name,
  uuid: d.uuid,
  guestUuid: d.guestUuid,
}));
