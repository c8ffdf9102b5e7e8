// One Domain with a hardware UUID. Rename it and Pulumi re-creates it: a new libvirt uuid, the
// same UUID inside the guest (SMBIOS, QMP query-uuid).
//
//   pulumi config set libvirt:uri qemu:///system
//   pulumi config set name web-1
//   pulumi up
import * as pulumi from "@pulumi/pulumi";
import { Domain } from "pulumi-libvirt-domain";

const cfg = new pulumi.Config();
const web = new Domain("web", {
  name: cfg.require("name"),
  hwuuid: cfg.get("hwuuid") ?? "5d5b0f1d-128b-4517-8e65-b258a8734c1d",
  memory: cfg.get("memory") ?? "64 MiB",
  vcpus: 1,
  interfaces: [{ type: "user", mac: cfg.get("mac") ?? "52:54:00:5d:5b:01", model: "virtio" }],
  restartOnChange: cfg.getBoolean("restartOnChange") ?? false,
  shutdownTimeoutSeconds: cfg.getNumber("shutdownTimeoutSeconds") ?? 5,
});

export const name = web.name;
export const uuid = web.uuid;
export const guestUuid = web.guestUuid;
export const hwuuidMode = web.hwuuidMode;
export const pendingRestart = web.pendingRestart;
export const drift = web.drift;
export const state = web.state;
