// ESLint: typescript-eslint's type-aware recommended rules over every TypeScript file the
// compiler builds (tsconfig.json). Formatting is Prettier's job (`npm run format:check`).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", ".e2e-work/", "**/*.js", "**/*.mjs"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        // The example programs and the end-to-end test programs are Pulumi projects of their own
        // (not in tsconfig.json); they import the built package, so lint after `npm run build`.
        projectService: { allowDefaultProject: ["examples/*/index.ts", "test/e2e/programs/*/index.ts"] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
  },
  {
    rules: {
      // Methods that implement a Promise-returning interface (Pulumi's ResourceProvider, the
      // backend interface) stay `async` without an `await`: a throw becomes a rejection either way.
      "@typescript-eslint/require-await": "off",
      // `_name` marks a binding kept for its position (a destructured rest, a callback parameter).
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    // Tests and benchmarks read JSON documents of other tools (pulumi stack export, preview --json,
    // npm pack --json, source maps) and assert their shape with chai: typing each document would
    // restate the assertions. The provider, the SDK and the tools keep these rules.
    files: ["test/**/*.ts", "bench/**/*.ts"],
    rules: {
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-explicit-any": "off",
    },
  },
);
