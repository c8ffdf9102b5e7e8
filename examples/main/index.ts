// The root stack's program (`npm run up`): one Domain with a pinned hardware UUID on the local
// hypervisor. The libvirt uuid is an output, new on every re-create; the guest keeps seeing the
// hwuuid. Config: libvirt:uri (default qemu:///system), name, hwuuid, memory.
import * as pulumi from "@pulumi/pulumi";
import { Domain } from "pulumi-libvirt-domain";

const cfg = new pulumi.Config();
const web = new Domain("web", {
  name: cfg.get("name") ?? "lvd-main-web-1",
  hwuuid: cfg.get("hwuuid") ?? "5d5b0f1d-128b-4517-8e65-b258a8734c1d",
  memory: cfg.get("memory") ?? "64 MiB",
  shutdownTimeoutSeconds: 5,
});

export const domains = [{ name: web.name, uuid: web.uuid, guestUuid: web.guestUuid, hwuuidMode: web.hwuuidMode, libvirtVersion: web.libvirtVersion }];
