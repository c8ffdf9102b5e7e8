// A Domain whose template sets a VNC password that the program holds in clear (not a Pulumi
// secret): the worst case. Its XML must still reach the state only as a secret. The password
// comes from the environment, not from stack config: Pulumi itself records plain config values
// in the state (as inputs of the default pulumi-nodejs provider), whatever the provider does.
import * as pulumi from "@pulumi/pulumi";
import { Domain } from "pulumi-libvirt-domain";

const cfg = new pulumi.Config();
const given = process.env.VNC_PASSWORD;
if (given === undefined) throw new Error("set VNC_PASSWORD");
const password = given.replace(/&/g, "&amp;").replace(/'/g, "&apos;");
const web = new Domain("web", {
  name: cfg.require("name"),
  hwuuid: "5d5b0f1d-128b-4517-8e65-b258a8734c1d",
  memory: cfg.get("memory") ?? "64 MiB",
  xml: `<domain type='qemu'><name>x</name><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><serial type='pty'/><graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1' passwd='${password}'/>
  <video><model type='vga'/></video></devices></domain>`,
  running: true,
  restartOnChange: true,
  shutdownTimeoutSeconds: 0,
});

export const name = web.name;
export const uuid = web.uuid;
export const xml = web.xml;
export const state = web.state;
