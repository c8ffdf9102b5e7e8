/**
 * The dynamic-provider shim for the Domain resource. Pulumi serializes this object by value into
 * the state; it must stay tiny and stateless: each method loads the compiled implementation
 * (`dist/provider/dynamic/impl.js`) at call time, by the absolute path this program used, else by
 * package name (a state moved to another machine), and forwards the call.
 */
import * as pulumi from "@pulumi/pulumi";
import * as path from "node:path";

/** Where the compiled provider implementation lives, as this program sees it. */
export const IMPL_PATH = path.join(__dirname, "..", "provider", "dynamic", "impl.js");

const implPath = IMPL_PATH;

/** Builds the shim for a provider module exported as `provider` from `modulePath`. */
function makeShim(modulePath: string): pulumi.dynamic.ResourceProvider {
  // Everything below runs in the dynamic-provider host, from the serialized closure.
  const load = (): pulumi.dynamic.ResourceProvider => {
    let mod: { provider: pulumi.dynamic.ResourceProvider };
    try {
      mod = require(modulePath);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "MODULE_NOT_FOUND") throw e;
      mod = require("pulumi-libvirt-domain/dist/provider/dynamic/impl");
    }
    return mod.provider;
  };
  return {
    check: (olds, news) => load().check!(olds, news),
    diff: (id, olds, news) => load().diff!(id, olds, news),
    create: (inputs) => load().create(inputs),
    read: (id, props) => load().read!(id, props),
    update: (id, olds, news) => load().update!(id, olds, news),
    delete: (id, props) => load().delete!(id, props),
  };
}

/** The shim for {@link Domain}'s provider. */
export const domainProvider: pulumi.dynamic.ResourceProvider = makeShim(implPath);
