/**
 * The `libvirt-domain` command line: offline tools over domain XML files and Pulumi previews.
 *
 *   libvirt-domain identity FILE                       one JSON line: name, uuid, hwuuid, guestUuid
 *   libvirt-domain format FILE                         the XML as we would hand it to libvirt
 *   libvirt-domain qemu-argv FILE                      the QEMU command line, one argument a line
 *   libvirt-domain diff DESIRED.xml ACTUAL.xml [--json]  the semantic diff; exit 0 same, 1 differ
 *   libvirt-domain preview-report [PREVIEW.json]       Markdown from `pulumi preview --json` (stdin when no file)
 *
 * Errors go to stderr as virsh prints them (`error: internal error: malformed hwuuid element`),
 * followed by a line with the details; exit status 1 for bad input (2 for `diff`), 2 for bad usage.
 */
import { closeSync, constants as fsc, fstatSync, openSync, readSync, Stats, statSync } from "node:fs";
import { DomainDef } from "../xml/domain";
import { DomainXmlError, hasBrand, LibvirtDomainError } from "../xml/errors";
import { normalizeIdentity, resolveIdentity } from "../xml/identity";
import { MAX_XML_BYTES } from "../xml/tree";
import { scrubSecurityInfo, xmlSecurityInfoValues } from "../xml/security";
import { buildQemuArgv } from "../qemu/argv";
import { readFirmwareDescriptors } from "../backends/qemu/firmware-descriptors";
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

const USAGE_BRAND = "__pulumiLibvirtDomainUsageError";

/** A usage error (wrong arguments, input that is not what the command reads): exit status 2. */
export class UsageError extends LibvirtDomainError {
  /**
   * @param reason what is wrong, e.g. `usage: libvirt-domain identity FILE`
   * @param fix how to call the command instead
   */
  constructor(reason: string, fix: string) {
    super(reason, { path: "", fix }, USAGE_BRAND);
  }

  /** True for any {@link UsageError}, whichever copy of this module made it. */
  public static override isInstance(e: unknown): e is UsageError {
    return hasBrand(e, USAGE_BRAND);
  }
}

/** The {@link UsageError} for arguments that do not fit `usage`. */
function usageError(usage: string): UsageError {
  const command = usage.split(" ")[1] ?? "COMMAND";
  return new UsageError(`usage: ${usage}`, `pass the arguments shown; libvirt-domain ${command} --help says more`);
}

/** Largest `pulumi preview --json` document `preview-report` reads, in bytes. */
export const MAX_PREVIEW_BYTES = 256 * 1024 * 1024;

/** What a non-regular file is, for the error message. */
function fileKind(st: Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isFIFO()) return "a FIFO";
  if (st.isSocket()) return "a socket";
  return "not a regular file";
}

function notRegular(path: string, st: Stats): DomainXmlError {
  return new DomainXmlError(`'${path}' is not a regular file`, {
    path,
    value: fileKind(st),
    allowed: "a regular file (or a symbolic link to one)",
    fix: "pass the XML file itself; to read a device or a pipe, copy it into a file first",
  });
}

function tooLarge(path: string, bytes: number, maxBytes: number): DomainXmlError {
  return new DomainXmlError("document too large", {
    path,
    value: `${bytes} bytes`,
    allowed: `at most ${maxBytes} bytes`,
    fix: "pass a smaller file: virsh reads at most 10 MiB of XML too",
  });
}

/** Decodes UTF-8, refusing invalid sequences (a binary file) rather than turning them into U+FFFD. */
function decodeUtf8(buf: Buffer, path: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(buf);
  } catch {
    throw new DomainXmlError("not an XML text document", {
      path,
      value: "invalid UTF-8",
      allowed: "UTF-8 text",
      fix: "pass a domain XML document in UTF-8 (is this a binary file, or in another encoding?)",
    });
  }
}

/**
 * Reads a text file: regular files only (a device, a FIFO or a directory is refused before it
 * is opened for reading, so nothing blocks and nothing grows), size checked before reading and
 * again while reading, UTF-8 checked. Errors are {@link DomainXmlError}s naming the file.
 */
export function readTextFile(path: string, maxBytes: number): string {
  const failedToOpen = (e: unknown) => {
    const code = (e as NodeJS.ErrnoException).code;
    return new DomainXmlError(
      `failed to open '${path}': ${code === "ENOENT" ? "No such file or directory" : code === "EACCES" ? "Permission denied" : String(code)}`,
      {
        path,
        fix: "check the file name",
      },
    );
  };
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    throw failedToOpen(e);
  }
  if (!st.isFile()) throw notRegular(path, st);
  if (st.size > maxBytes) throw tooLarge(path, st.size, maxBytes);
  let fd: number;
  try {
    // O_NONBLOCK: should the name have become a FIFO since the stat, opening it cannot block.
    fd = openSync(path, fsc.O_RDONLY | fsc.O_NONBLOCK | fsc.O_NOCTTY);
  } catch (e) {
    throw failedToOpen(e);
  }
  try {
    const again = fstatSync(fd);
    if (!again.isFile()) throw notRegular(path, again);
    if (again.size > maxBytes) throw tooLarge(path, again.size, maxBytes);
    // Read at most one byte more than allowed: a file growing meanwhile is caught, not followed.
    const buf = Buffer.alloc(Math.min(again.size, maxBytes) + 1);
    let n = 0;
    for (let r; n < buf.length && (r = readSync(fd, buf, n, buf.length - n, null)) > 0;) n += r;
    if (n > maxBytes) throw tooLarge(path, n, maxBytes);
    return decodeUtf8(buf.subarray(0, n), path);
  } finally {
    closeSync(fd);
  }
}

/** Reads a domain XML file: regular files only, at most {@link MAX_XML_BYTES}, UTF-8. */
export function readXmlFile(path: string): string {
  const text = readTextFile(path, MAX_XML_BYTES);
  secretValuesRead.push(...xmlSecurityInfoValues(text));
  return text;
}

/** The security-info values of every XML file read in this process: scrubbed from error output. */
const secretValuesRead: string[] = [];

/** Reads standard input whole, at most `maxBytes` (`< /dev/zero` stops at the limit). */
export function readStdin(maxBytes: number): string {
  const chunks: Buffer[] = [];
  let total = 0;
  const buf = Buffer.alloc(64 * 1024);
  for (;;) {
    let n: number;
    try {
      n = readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EAGAIN") {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10); // a non-blocking pipe: wait for data
        continue;
      }
      if (code === "EOF") break;
      throw e;
    }
    if (n === 0) break;
    total += n;
    if (total > maxBytes)
      throw new UsageError(
        `standard input is larger than ${maxBytes} bytes`,
        "pass the output of pulumi preview --json, or a file",
      );
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return decodeUtf8(Buffer.concat(chunks), "standard input");
}

function oneFile(args: string[], usage: string): string {
  const [file, ...extra] = args.filter((a) => !a.startsWith("-"));
  if (file === undefined || extra.length) throw usageError(usage);
  return file;
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
      const cmd = buildQemuArgv(def, { firmware: readFirmwareDescriptors() }); // this host's firmware descriptors
      io.out(cmd.argv.join("\n") + "\n");
      return 0;
    },
  },
  diff: {
    usage: "libvirt-domain diff DESIRED.xml ACTUAL.xml [--json]",
    summary: "Semantic diff: what DESIRED states that ACTUAL lacks or has otherwise. Exit 0 same, 1 differ, 2 error.",
    run(args, io) {
      const [desiredFile, actualFile, ...extra] = args.filter((a) => !a.startsWith("-"));
      if (desiredFile === undefined || actualFile === undefined || extra.length) throw usageError(this.usage);
      const desired = DomainDef.parse(readXmlFile(desiredFile));
      const actual = DomainDef.parse(readXmlFile(actualFile));
      const d = diffDomains(desired, actual);
      io.out(args.includes("--json") ? JSON.stringify(d, null, 2) + "\n" : formatDiffText(d));
      return d.changes.length === 0 ? 0 : 1;
    },
  },
  "preview-report": {
    usage: "libvirt-domain preview-report [PREVIEW.json]   (stdin when no file)",
    summary:
      "Markdown from `pulumi preview --json`: per domain the action, XML changes by path, restarts, guest UUID before -> after.",
    run(args, io) {
      const [file, ...extra] = args.filter((a) => !a.startsWith("-"));
      if (extra.length) throw usageError(this.usage);
      const text = file !== undefined ? readTextFile(file, MAX_PREVIEW_BYTES) : io.stdin();
      let out: string;
      try {
        out = previewReport(text);
      } catch (e) {
        if (e instanceof SyntaxError)
          throw new UsageError(
            `the input is not pulumi preview --json output: ${e.message}`,
            "pass what `pulumi preview --json` prints (a file, or on standard input)",
          );
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
    if (UsageError.isInstance(e)) {
      io.err(`error: ${e.message}\n`);
      return 2;
    }
    // `diff` uses 1 for "they differ", so its errors are 2.
    const failure = name === "diff" ? 2 : 1;
    // Never a password in an error: by pattern, and every value the files read hold.
    const scrub = (t: string) => scrubSecurityInfo(t, secretValuesRead);
    if (DomainXmlError.isInstance(e)) {
      io.err(scrub(`error: ${e.libvirtMessage}\n${e.message}\n`));
      return failure;
    }
    io.err(scrub(`error: ${(e as Error).message}\n`));
    return failure;
  }
}

/** The process entry point (used by `bin/libvirt-domain.js`). */
export function run(): void {
  const io: CliIo = {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    stdin: () => readStdin(MAX_PREVIEW_BYTES),
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
