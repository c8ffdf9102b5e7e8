import * as pulumi from "@pulumi/pulumi";
import { Domain, DomainFleet } from "pulumi-libvirt-domain";

const c = new pulumi.Config().requireObject<{ kind: "domain" | "fleet"; args: any }>("case");
if (c.kind === "domain") new Domain("bad", c.args);
else new DomainFleet("bad", c.args);
