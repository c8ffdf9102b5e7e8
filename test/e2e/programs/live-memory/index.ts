import * as pulumi from "@pulumi/pulumi";
import { Domain } from "pulumi-libvirt-domain";

// Ten small running domains (no OS needed): up to 128 MiB each, `currentMiB` of it in use.
// Changing `currentMiB` is a live change (setmem within <memory>): no restart.
const cfg = new pulumi.Config();
const prefix = cfg.require("prefix");
const currentMiB = cfg.requireNumber("currentMiB");
const xml = [
  "<domain type='qemu'>",
  "  <name>x</name>",
  "  <memory unit='MiB'>128</memory>",
  `  <currentMemory unit='MiB'>${currentMiB}</currentMemory>`,
  "  <vcpu>1</vcpu>",
  "  <os><type arch='x86_64' machine='pc'>hvm</type></os>",
  "  <devices><memballoon model='virtio'/></devices>",
  "</domain>",
].join("\n");
const domains = Array.from(
  { length: 10 },
  (_, i) => new Domain(`d${i}`, { name: `${prefix}${i}`, xml, shutdownTimeoutSeconds: 0 }),
);
export const pendingRestart = domains.map((d) => d.pendingRestart);
export const states = domains.map((d) => d.state);
export const xmls = domains.map((d) => d.xml);
