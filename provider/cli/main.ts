/**
 * The `libvirt-domain` command line: offline tools over domain XML files.
 *
 *   libvirt-domain identity FILE     one JSON line: name, uuid, hwuuid, guestUuid
 *   libvirt-domain format FILE       the XML as we would hand it to libvirt
 *   libvirt-domain qemu-argv FILE    the QEMU command line, one argument a line
 *
 * Errors go to stderr as virsh prints them (`error: internal error: malformed hwuuid element`),
 * followed by a line with the details; exit status 1 for bad input, 2 for bad usage.
 */
import { readFileSync, statSync } from "node:fs";
import { DomainDef } from "../xml/domain";
import { DomainXmlError } from "../xml/errors";
import { normalizeIdentity, resolveIdentity } from "../xml/identity";
import { MAX_XML_BYTES } from "../xml/tree";
import { buildQemuArgv } from "../qemu/argv";
import { diffDomains, formatDiffText } from "../diff/semantic";
import { previewReport } from "../report/preview";

/** A subcommand: its usage text and its action. */
export interface CliCommand {
  readonly usage: string;
  readonly summary: string;
  readonly run: (args: string[], io: CliIo) => Promise<number> | number;
}

/** Where the CLI writes; tests pass their own. */
export interface CliIo {
  out(s: string): void;
  err(s: string): void;
  /** Reads standard input whole. */
  stdin(): string;
}

/** A usage error: exit status 2. */
export class UsageError extends Error {}

/** Reads a domain XML file with a size limit and a clear error for a missing file. */
export function readXmlFile(path: string): string {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DomainXmlError(`failed to open '${path}': ${code === "ENOENT" ? "No such file or directory" : String(code)}`, {
      path,
      fix: "check the file name",
    });
  }
  if (size > MAX_XML_BYTES) {
    throw new DomainXmlError("document too large", { path, value: `${size} bytes`, allowed: `at most ${MAX_XML_BYTES} bytes (10 MiB)` });
  }
  return readFileSync(path, "utf8");
}

function oneFile(args: string[], usage: string): string {
  const files = args.filter((a) => !a.startsWith("-"));
  if (files.length !== 1) throw new UsageError(`usage: ${usage}`);
  return files[0];
}

/** The subcommands of `libvirt-domain`; later modules add theirs. */
export const COMMANDS: Record<string, CliCommand> = {
  identity: {
    usage: "libvirt-domain identity FILE",
    summary: 'Print {"name","uuid","hwuuid","guestUuid"} as libvirt would decide them (one JSON line).',
    run(args, io) {
      const def = DomainDef.parse(readXmlFile(oneFile(args, this.usage)));
      const id = resolveIdentity(def);
      io.out(JSON.stringify({ name: id.name, uuid: id.uuid, hwuuid: id.hwuuid, guestUuid: id.guestUuid }) + "\n");
      return 0;
    },
  },
  format: {
    usage: "libvirt-domain format FILE",
    summary: "Print the XML as it would be handed to libvirt: identity normalized, everything else kept.",
    run(args, io) {
      const def = DomainDef.parse(readXmlFile(oneFile(args, this.usage)));
      normalizeIdentity(def);
      io.out(def.format());
      return 0;
    },
  },
  "qemu-argv": {
    usage: "libvirt-domain qemu-argv FILE",
    summary: "Print the QEMU command line (-uuid from hwuuid as libvirt does), one argument a line.",
    run(args, io) {
      const def = DomainDef.parse(readXmlFile(oneFile(args, this.usage)));
      const cmd = buildQemuArgv(def);
      io.out(cmd.argv.join("\n") + "\n");
      return 0;
    },
  },
  diff: {
    usage: "libvirt-domain diff DESIRED.xml ACTUAL.xml [--json]",
    summary: "Semantic diff: what DESIRED states that ACTUAL lacks or has otherwise. Exit 0 same, 1 differ, 2 error.",
    run(args, io) {
      const files = args.filter((a) => !a.startsWith("-"));
      if (files.length !== 2) throw new UsageError(`usage: ${this.usage}`);
      const desired = DomainDef.parse(readXmlFile(files[0]));
      const actual = DomainDef.parse(readXmlFile(files[1]));
      const d = diffDomains(desired, actual);
      io.out(args.includes("--json") ? JSON.stringify(d, null, 2) + "\n" : formatDiffText(d));
      return d.changes.length === 0 ? 0 : 1;
    },
  },
  "preview-report": {
    usage: "libvirt-domain preview-report [PREVIEW.json]   (stdin when no file)",
    summary: "Markdown from `pulumi preview --json`: per domain the action, XML changes by path, restarts, guest UUID before -> after.",
    run(args, io) {
      const files = args.filter((a) => !a.startsWith("-"));
      if (files.length > 1) throw new UsageError(`usage: ${this.usage}`);
      const text = files.length ? readFileSync(files[0], "utf8") : io.stdin();
      let out: string;
      try {
        out = previewReport(text);
      } catch (e) {
        if (e instanceof SyntaxError) throw new UsageError(`the input is not pulumi preview --json output: ${e.message}`);
        throw e;
      }
      io.out(out);
      return 0;
    },
  },
};

function help(): string {
  const lines = ["usage: libvirt-domain COMMAND [ARGS] (COMMAND --help for details)", "", "commands:"];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(16)} ${c.summary}`);
  return lines.join("\n") + "\n";
}

/** Runs the CLI; returns the exit status. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.out(help());
    return name === undefined ? 2 : 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    io.err(`error: unknown command '${name}'\n${help()}`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    io.out(`usage: ${cmd.usage}\n\n${cmd.summary}\n`);
    return 0;
  }
  try {
    return await cmd.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`error: ${e.message}\n`);
      return 2;
    }
    // `diff` uses 1 for "they differ", so its errors are 2.
    const failure = name === "diff" ? 2 : 1;
    if (DomainXmlError.isInstance(e)) {
      io.err(`error: ${e.libvirtMessage}\n${e.message}\n`);
      return failure;
    }
    io.err(`error: ${(e as Error).message}\n`);
    return failure;
  }
}

/** The process entry point (used by `bin/libvirt-domain.js`). */
export function run(): void {
  const io: CliIo = {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    stdin: () => readFileSync(0, "utf8"),
  };
  main(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`error: ${(e as Error).stack}\n`);
      process.exitCode = 1;
    },
  );
}
