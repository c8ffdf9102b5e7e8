// ESLint: typescript-eslint's type-aware recommended rules over every TypeScript file the
// compiler builds (tsconfig.json). Formatting is Prettier's job (`npm run format:check`).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "**/*.js", "**/*.mjs"] },
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
);
