import * as pulumi from "@pulumi/pulumi";
import { Domain } from "pulumi-libvirt-domain";

const cfg = new pulumi.Config();
const prefix = cfg.require("prefix");
const a = new Domain("a", { name: `${prefix}a`, running: false, shutdownTimeoutSeconds: 0 });
// dropB=true removes b from the program (a delete in the next preview).
const b = cfg.getBoolean("dropB")
  ? undefined
  : new Domain("b", { name: `${prefix}b`, running: false, shutdownTimeoutSeconds: 0 }, { dependsOn: [a] });
export const uuids = b ? [a.uuid, b.uuid] : [a.uuid];
