/**
 * Pulumi's runtime mocks for unit tests that construct SDK resources without an engine: every
 * resource gets the id `NAME-id` and its inputs as its state.
 */
import * as pulumi from "@pulumi/pulumi";

/** Sets the mocks (project `proj`, stack `stack`, preview mode) in a mocha `before` hook of the calling suite. */
export function usePulumiMocks(): void {
  before(async () => {
    await pulumi.runtime.setMocks(
      { newResource: (a) => ({ id: `${a.name}-id`, state: a.inputs }), call: () => ({}) },
      "proj",
      "stack",
      true,
    );
  });
}
