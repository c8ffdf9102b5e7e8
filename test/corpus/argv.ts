/**
 * Reading libvirt's expected QEMU command lines (`NAME.x86_64-latest.args`) and comparing ours
 * with them. This module is the ONE place where the comparison is defined: which options are
 * compared, and which arguments only libvirt writes (with the reason), so that widening the
 * comparison to the whole argument list is a change here and nowhere else.
 */
import { shellWords } from "../support/shell";

/** An `.args` file: the environment libvirt sets and the argument vector (argv[0] the emulator). */
export interface LibvirtArgs {
  env: Record<string, string>;
  argv: string[];
}

/** Parses an `.args` file: `VAR=value \` lines, then the emulator and one option a line, joined by ` \`. */
export function parseArgsFile(text: string): LibvirtArgs {
  const lines = text
    .replace(/ \\\n/g, "\n")
    .split("\n")
    .filter((l) => l.trim() !== "");
  const env: Record<string, string> = {};
  const argv: string[] = [];
  for (const line of lines) {
    const words = shellWords(line);
    const [only] = words;
    if (argv.length === 0 && words.length === 1 && only !== undefined && /^[A-Za-z_][A-Za-z0-9_]*=/.test(only)) {
      const i = only.indexOf("=");
      env[only.slice(0, i)] = only.slice(i + 1);
      continue;
    }
    argv.push(...words);
  }
  return { env, argv };
}

/**
 * The options compared today, each with all its values in order (an option may repeat: one
 * `-smbios` per SMBIOS structure type). The target is the whole argument list; until then an
 * option missing here is not compared at all (it is neither same nor different).
 */
export const COMPARED_OPTIONS: readonly string[] = ["-uuid", "-name", "-m", "-smp", "-smbios", "-numa"];
// The whole argument list is compared too: compareWholeArgv below, with LIBVIRT_ONLY.

/** One option of a command line and its value (`undefined` for a flag such as `-nodefaults`). */
export interface ArgvItem {
  option: string;
  value: string | undefined;
}

/**
 * What only libvirt writes (its own plumbing, not the guest), or what both sides write with a
 * runtime difference that says nothing of the guest: removed before the whole argument lists are
 * compared. THE one table of it, with the reason for each; `side` says from which command line.
 */
export const LIBVIRT_ONLY: readonly {
  readonly name: string;
  readonly side: "libvirt" | "ours" | "both";
  readonly test: (i: ArgvItem) => boolean;
  readonly reason: string;
}[] = [
  {
    name: "-S",
    side: "both",
    test: (i) => i.option === "-S",
    reason:
      "libvirt starts QEMU paused and resumes it after setting up; the direct backend does the same only when asked",
  },
  {
    name: "-sandbox",
    side: "libvirt",
    test: (i) => i.option === "-sandbox",
    reason: "libvirt's seccomp policy for the QEMU process (host hardening from qemu.conf, not guest hardware)",
  },
  {
    name: "-no-reboot",
    side: "ours",
    test: (i) => i.option === "-no-reboot",
    reason:
      "<on_reboot>destroy</on_reboot>: libvirt asks QEMU at run time (QMP set-action reboot=shutdown); the direct backend, with no manager to ask, puts it on the command line",
  },
  {
    name: "-no-shutdown",
    side: "libvirt",
    test: (i) => i.option === "-no-shutdown",
    reason: "libvirt keeps QEMU alive on guest shutdown to see the event and apply <on_poweroff> itself",
  },
  {
    name: "-object secret masterKey0",
    side: "libvirt",
    test: (i) => i.option === "-object" && /"id":"masterKey0"/.test(i.value ?? ""),
    reason: "libvirt's master key for its secrets, a libvirtd runtime file",
  },
  {
    name: "-add-fd",
    side: "libvirt",
    test: (i) => i.option === "-add-fd",
    reason: "file descriptors libvirt opens and passes (fd passing); the direct backend passes paths",
  },
  {
    name: "-chardev charmonitor",
    side: "both",
    test: (i) => i.option === "-chardev" && /^socket,id=charmonitor,/.test(i.value ?? ""),
    reason:
      "the QMP monitor socket: libvirt passes an inherited fd (fd=1729 in the tests), we a path; -mon is compared",
  },
  {
    name: "-object memory-backend-ram pc.ram",
    side: "libvirt",
    test: (i) =>
      i.option === "-object" && /^\{"qom-type":"memory-backend-ram","id":"pc\.ram","size":\d+\}$/.test(i.value ?? ""),
    reason:
      "libvirt names the plain main RAM backend explicitly (-machine memory-backend=pc.ram, for migration); QEMU creates the same backend of the -m size implicitly (a backend <memoryBacking> asks for, file, memfd, shared, preallocated, is compared)",
  },
];

/** Rewrites of a value libvirt writes, applied to its side before comparing (with the reason). */
const LIBVIRT_VALUE_REWRITES: readonly {
  option: string;
  rewrite: (v: string) => string;
  reason: string;
  /** Applied to our side too. @default libvirt's only */
  both?: boolean;
}[] = [
  {
    option: "-machine",
    rewrite: (v) => v.replace(/,memory-backend=pc\.ram/, ""),
    reason:
      "the explicit main RAM backend, see `-object memory-backend-ram pc.ram` above; removed from both sides (the builder names it where <memoryBacking> asks for a backend), the pc.ram object itself is compared then",
    both: true,
  },
];

/** Options that take no value. */
const FLAGS = new Set([
  "-S",
  "-no-user-config",
  "-nodefaults",
  "-no-shutdown",
  "-daemonize",
  "-no-reboot",
  "-no-acpi",
  "-no-hpet",
  "-enable-kvm",
]);

/** The options of a command line (argv[0], the emulator, is compared apart). */
export function argvItems(argv: readonly string[]): ArgvItem[] {
  const out: ArgvItem[] = [];
  for (let i = 1; i < argv.length; i++) {
    const option = argv[i]!;
    // a flag, a bare word (passthrough), or an option before another option: no value
    if (FLAGS.has(option) || !option.startsWith("-") || i + 1 >= argv.length || /^-[a-z]/.test(argv[i + 1]!))
      out.push({ option, value: undefined });
    else out.push({ option, value: argv[++i] });
  }
  return out;
}

/** A JSON value with its keys sorted: libvirt and the builder may order the keys of an object differently. */
function canonicalJson(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonicalJson);
  if (v !== null && typeof v === "object")
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, canonicalJson((v as Record<string, unknown>)[k])]),
    );
  return v;
}

/** One item as compared: option and value, a JSON value with sorted keys. */
export function itemKey(i: ArgvItem): string {
  let v = i.value;
  if (v !== undefined && v.startsWith("{")) {
    try {
      v = JSON.stringify(canonicalJson(JSON.parse(v)));
    } catch {
      /* not JSON: compared as written */
    }
  }
  return v === undefined ? i.option : `${i.option} ${v}`;
}

/** The items compared of one side: {@link LIBVIRT_ONLY} removed, libvirt's value rewrites applied. */
export function comparedItems(argv: readonly string[], side: "libvirt" | "ours"): ArgvItem[] {
  return argvItems(argv)
    .filter((i) => !LIBVIRT_ONLY.some((r) => (r.side === "both" || r.side === side) && r.test(i)))
    .map((i) => ({
      option: i.option,
      value: LIBVIRT_VALUE_REWRITES.reduce(
        (v, r) => (v !== undefined && r.option === i.option && (side === "libvirt" || r.both) ? r.rewrite(v) : v),
        i.value,
      ),
    }));
}

/**
 * The whole argument lists compared, as multisets of (option, value): what only libvirt's has and
 * what only ours has. Order is not compared (the builder groups devices by kind as libvirt does,
 * but the order of -device within a kind only matters for slots QEMU assigns, and those are
 * compared through the `addr` of every device that has one).
 */
export function compareWholeArgv(
  libvirt: readonly string[],
  ours: readonly string[],
): { onlyLibvirt: ArgvItem[]; onlyOurs: ArgvItem[] } {
  const l = comparedItems(libvirt, "libvirt");
  const o = comparedItems(ours, "ours");
  const count = new Map<string, number>();
  for (const i of o) count.set(itemKey(i), (count.get(itemKey(i)) ?? 0) + 1);
  const onlyLibvirt: ArgvItem[] = [];
  for (const i of l) {
    const n = count.get(itemKey(i)) ?? 0;
    if (n > 0) count.set(itemKey(i), n - 1);
    else onlyLibvirt.push(i);
  }
  const lc = new Map<string, number>();
  for (const i of l) lc.set(itemKey(i), (lc.get(itemKey(i)) ?? 0) + 1);
  const onlyOurs: ArgvItem[] = [];
  for (const i of o) {
    const n = lc.get(itemKey(i)) ?? 0;
    if (n > 0) lc.set(itemKey(i), n - 1);
    else onlyOurs.push(i);
  }
  return { onlyLibvirt, onlyOurs };
}

/** The values of one option, in order; `undefined` when absent. */
export function optionValues(argv: readonly string[], option: string): string[] | undefined {
  const out: string[] = [];
  for (let i = 1; i < argv.length; i++) {
    if (argv[i] === option && i + 1 < argv.length) {
      out.push(argv[i + 1]!);
      i++;
    }
  }
  return out.length ? out : undefined;
}

/**
 * Per-option value normalization, applied to both sides before comparing. Empty today: the
 * compared options are written alike (`-name guest=N,debug-threads=on`, `-m size=Nk`, `-smp`
 * with dies and clusters, `-smbios type=1,...` with `,,` escapes).
 */
export const NORMALIZE: Readonly<Record<string, (v: string) => string>> = {};

/** One compared option that differs. */
export interface OptionDifference {
  option: string;
  libvirt: string[] | undefined;
  ours: string[] | undefined;
}

/** Compares {@link COMPARED_OPTIONS} of libvirt's argv with ours. */
export function compareArgv(libvirt: readonly string[], ours: readonly string[]): OptionDifference[] {
  const diffs: OptionDifference[] = [];
  for (const option of COMPARED_OPTIONS) {
    const norm = NORMALIZE[option] ?? ((v: string) => v);
    const l = optionValues(libvirt, option)?.map(norm);
    const o = optionValues(ours, option)?.map(norm);
    if (JSON.stringify(l ?? null) !== JSON.stringify(o ?? null)) diffs.push({ option, libvirt: l, ours: o });
  }
  return diffs;
}
