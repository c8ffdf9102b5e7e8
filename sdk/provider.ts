/**
 * The dynamic-provider shims for Domain and DiskImage, and the module their type tokens share. Pulumi serializes these objects by value
 * into the state; they stay tiny and stateless: each method loads the compiled implementation
 * (`dist/provider/dynamic/*.js`) at call time, by the absolute path this program used, else by
 * package name (a state moved to another machine), and forwards the call.
 */
import * as pulumi from "@pulumi/pulumi";
import * as path from "node:path";

/**
 * The module of our resources' type tokens: `pulumi-nodejs:dynamic/libvirt-domain:Domain` and
 * `pulumi-nodejs:dynamic/libvirt-domain:DiskImage`.
 */
export const DYNAMIC_MODULE = "libvirt-domain";

/**
 * The type token version 0.1.0 gave a {@link Domain} (`pulumi-nodejs:dynamic/libvirt-domain:Resource`);
 * an alias to it keeps the URNs of domains made by that version, so they upgrade in place.
 */
export const DOMAIN_TYPE_V0_1 = "pulumi-nodejs:dynamic/libvirt-domain:Resource";

/** Where the compiled provider implementations live, as this program sees them. */
const DYNAMIC_DIR = path.join(__dirname, "..", "provider", "dynamic");

/**
 * Builds the shim for the provider exported as `provider` from `dist/provider/dynamic/<file>.js`:
 * loaded by absolute path, else by package name.
 */
function makeShim(modulePath: string, packagePath: string): pulumi.dynamic.ResourceProvider {
  // Everything below runs in the dynamic-provider host, from the serialized closure.
  const load = (): pulumi.dynamic.ResourceProvider => {
    let mod: { provider: pulumi.dynamic.ResourceProvider };
    try {
      // A synchronous require by path: this closure is serialized into the state and must load
      // the implementation this program used (an `import` would be hoisted out of the closure).
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      mod = require(modulePath) as typeof mod;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "MODULE_NOT_FOUND") throw e;
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      mod = require(packagePath) as typeof mod;
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
export const domainProvider: pulumi.dynamic.ResourceProvider = makeShim(
  path.join(DYNAMIC_DIR, "impl.js"),
  "pulumi-libvirt-domain/dist/provider/dynamic/impl",
);

/** The shim for {@link DiskImage}'s provider. */
export const diskProvider: pulumi.dynamic.ResourceProvider = makeShim(
  path.join(DYNAMIC_DIR, "disk.js"),
  "pulumi-libvirt-domain/dist/provider/dynamic/disk",
);
