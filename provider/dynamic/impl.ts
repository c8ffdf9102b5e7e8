/**
 * The Domain provider's module as stacks made by earlier versions load it: their serialized
 * shim (`sdk/provider.ts`) requires `dist/provider/dynamic/impl.js` by path and calls its
 * `provider`. It stays, re-exporting the same {@link provider} object and the names tests and
 * tools use; the adapter lives in `./domain-provider.ts`, the lifecycle in
 * `../lifecycle/domain.ts`.
 */
export { check, diff, create, read, update, remove, provider } from "./domain-provider";
export { resolveMode } from "../backends/capabilities";
export { ownerOf, plain, uriOf, xmlChanges } from "../lifecycle/domain";
export { DomainInitError } from "../lifecycle/errors";
export type { DomainOutputs } from "./types";
