/**
 * The README's user section is what the packed-package end-to-end test runs
 * (test/e2e/package.test.ts); here, without labs, it must parse into steps that test can run.
 */
import { expect } from "chai";
import { installSteps, parseSteps, ReadmeStep } from "../support/readme";

function commands(steps: ReadmeStep[]): string[] {
  return steps.flatMap((s) => (s.kind === "command" ? [s.words.join(" ")] : []));
}
function files(steps: ReadmeStep[]): string[] {
  return steps.flatMap((s) => (s.kind === "file" ? [s.name] : []));
}

describe("README: the user section (Install (for users))", () => {
  for (const lang of ["ts", "js"] as const) {
    it(`parses into commands and files for a ${lang === "ts" ? "TypeScript" : "JavaScript"} program: npm install, then up, preview --expect-no-changes, destroy`, () => {
      const steps = installSteps(lang);
      const cmds = commands(steps);
      expect(cmds[0]).to.equal("npm init -y");
      expect(
        cmds.some((c) => /^npm install @pulumi\/pulumi@3\.\d+\.\d+ pulumi-libvirt-domain$/.test(c)),
        cmds.join("\n"),
      ).to.equal(true);
      const pulumiCmds = cmds.filter((c) => c.startsWith("pulumi "));
      expect(pulumiCmds.slice(-3)).to.deep.equal([
        "pulumi up --yes",
        "pulumi preview --expect-no-changes",
        "pulumi destroy --yes",
      ]);
      for (const c of cmds) expect(/^(npm|pulumi) /.test(c), c).to.equal(true);
      expect(files(steps)).to.deep.equal(["Pulumi.yaml", lang === "ts" ? "index.ts" : "index.js"]);
      if (lang === "ts") expect(cmds).to.include("npm pkg set main=index.ts");
      else expect(cmds.some((c) => c.includes("typescript"))).to.equal(false);
    });
  }

  it("the TypeScript and JavaScript programs declare the same resources and outputs", () => {
    const program = (lang: "ts" | "js") =>
      (installSteps(lang).find((s) => s.kind === "file" && s.name === `index.${lang}`) as { content: string }).content;
    const resources = (src: string) => [...src.matchAll(/new (\w+)\("(\w+)"/g)].map((m) => `${m[1]} ${m[2]}`);
    const outputs = (src: string) =>
      [...src.matchAll(/export(?:s\.| const )(\w+) = (\S+);/g)].map((m) => `${m[1]}=${m[2]}`);
    expect(resources(program("js")))
      .to.deep.equal(resources(program("ts")))
      .and.to.deep.equal(["Domain web", "DomainFleet app"]);
    expect(outputs(program("js")))
      .to.deep.equal(outputs(program("ts")))
      .and.to.have.length(3);
  });

  it("refuses shell syntax and blocks the test would not run, naming the README line", () => {
    expect(() => parseSteps("```sh\nnpm init -y && npm install x\n```\n", 10)).to.throw(
      /README.md line 11: .*uses shell syntax/,
    );
    expect(() => parseSteps("```sh\nexport A=$B\n```\n")).to.throw(/shell syntax/);
    expect(() => parseSteps("```console\n$ npm install\n```\n", 5)).to.throw(
      /README.md line 5: a `console` block without file=NAME/,
    );
    expect(() => parseSteps("```sh only=py\nnpm init\n```\n")).to.throw(/only=py is not a program language/);
    expect(() => parseSteps("```sh\nnpm init\n")).to.throw(/not closed/);
    expect(
      parseSteps(
        "```sh only=ts\nnpm init -y   # a comment\n\n# a whole-line comment\n```\n```ts file=index.ts\nexport const a = 1;\n```\n",
        1,
      ),
    ).to.deep.equal([
      { kind: "command", words: ["npm", "init", "-y"], line: 2, only: "ts" },
      { kind: "file", name: "index.ts", content: "export const a = 1;\n", line: 6, only: "ts" },
    ]);
  });
});
