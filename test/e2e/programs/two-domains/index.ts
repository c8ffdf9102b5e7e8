import * as pulumi from "@pulumi/pulumi";
import { Domain } from "pulumi-libvirt-domain";

const cfg = new pulumi.Config();
const prefix = cfg.require("prefix");
const a = new Domain("a", { name: `${prefix}a`, running: false, shutdownTimeoutSeconds: 0 });
const b = new Domain("b", { name: `${prefix}b`, running: false, shutdownTimeoutSeconds: 0 }, { dependsOn: [a] });
export const uuids = [a.uuid, b.uuid];
