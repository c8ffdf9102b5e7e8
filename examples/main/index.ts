// The root stack's program (`npm run up`): one Domain with a pinned hardware UUID and a small
// fleet cloned from a shut-off template, on the local hypervisor. The libvirt uuid is an output,
// new on every re-create; each guest keeps seeing its hardware UUID.
// Config: libvirt:uri (default qemu:///system), name, hwuuid, memory, fleetTemplate, fleetSize.
import * as pulumi from "@pulumi/pulumi";
import { Domain, DomainFleet } from "pulumi-libvirt-domain";

const cfg = new pulumi.Config();
const web = new Domain("web", {
  name: cfg.get("name") ?? "lvd-main-web-1",
  hwuuid: cfg.get("hwuuid") ?? "5d5b0f1d-128b-4517-8e65-b258a8734c1d",
  memory: cfg.get("memory") ?? "64 MiB",
  shutdownTimeoutSeconds: 5,
});

// scripts/main-job.sh makes the template (a shut-off domain with a small qcow2 image).
const fleet = new DomainFleet("lvd-main-fleet", {
  template: { name: cfg.get("fleetTemplate") ?? "lvd-main-template" },
  members: cfg.getNumber("fleetSize") ?? 2,
  hwuuidPolicy: "derive",
  shutdownTimeoutSeconds: 5,
});

export const domains = [web, ...Object.values(fleet.members)].map((d) => ({
  name: d.name,
  uuid: d.uuid,
  guestUuid: d.guestUuid,
  hwuuidMode: d.hwuuidMode,
  libvirtVersion: d.libvirtVersion,
}));
