// The root stack's program (`npm run up`): one Domain with a pinned hardware UUID and a small
// fleet cloned from a shut-off template, on the local hypervisor. The libvirt uuid is an output,
// new on every re-create; each guest keeps seeing its hardware UUID.
//
// Every domain boots the tiny guest (scripts/guest.sh: Debian's kernel and a busybox initramfs,
// direct kernel boot) that writes what its own OS reads (/sys/class/dmi/id/product_uuid...) to
// its serial console, a file: scripts/main-job.sh prints that beside QMP's answer. The guest
// powers off on the ACPI button, so a stop or a delete takes seconds (the default
// shutdownTimeoutSeconds is only the bound).
//
// Config: libvirt:uri (default qemu:///system), name, hwuuid, memory, fleetTemplate, fleetSize;
// guestKernel, guestInitrd, guestCmdline, consoleDir (scripts/main-job.sh sets them).
import * as pulumi from "@pulumi/pulumi";
import { Domain, DomainFleet } from "pulumi-libvirt-domain";

const cfg = new pulumi.Config();
const name = cfg.get("name") ?? "lvd-main-web-1";
const esc = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/'/g, "&apos;");
const consolePath = `${cfg.require("consoleDir")}/${name}.console`;

const web = new Domain("web", {
  name,
  hwuuid: cfg.get("hwuuid") ?? "5d5b0f1d-128b-4517-8e65-b258a8734c1d",
  memory: cfg.get("memory") ?? "256 MiB",
  xml: `<domain type='qemu'>
  <name>${esc(name)}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${esc(cfg.require("guestKernel"))}</kernel>
    <initrd>${esc(cfg.require("guestInitrd"))}</initrd>
    <cmdline>${esc(cfg.require("guestCmdline"))}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <serial type='file'><source path='${esc(consolePath)}'/><target port='0'/></serial>
    <interface type='user'><mac address='52:54:00:5d:5b:01'/><model type='virtio'/></interface>
  </devices>
</domain>`,
});

// scripts/main-job.sh makes the template: a shut-off domain that boots the same guest, with a
// small qcow2 disk and its console in a file (each member's goes beside it, named after it).
const fleet = new DomainFleet("lvd-main-fleet", {
  template: { name: cfg.get("fleetTemplate") ?? "lvd-main-template" },
  members: cfg.getNumber("fleetSize") ?? 2,
  hwuuidPolicy: "derive",
});

/** The file the guest's console (the first `<serial type='file'>`) goes to. */
const consoleOf = (xml: string): string | undefined =>
  /<serial type=["']file["']>\s*<source path=["']([^"']+)["']/.exec(xml)?.[1];

export const domains = [web, ...Object.values(fleet.members)].map((d) => ({
  name: d.name,
  uuid: d.uuid,
  guestUuid: d.guestUuid,
  hwuuidMode: d.hwuuidMode,
  libvirtVersion: d.libvirtVersion,
  console: d.xml.apply(consoleOf),
}));
