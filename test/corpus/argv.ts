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

/**
 * Options libvirt writes that are libvirt's own plumbing, not the guest: they will be dropped
 * from libvirt's side before the whole argument lists are compared. None of them is one of
 * {@link COMPARED_OPTIONS}, so today the table documents rather than filters.
 */
export const LIBVIRT_ONLY: Readonly<Record<string, string>> = {
  "-S": "libvirt starts QEMU paused and resumes it after setting up (the direct backend does the same only when asked)",
  "-sandbox": "libvirt's seccomp policy for the QEMU process (host hardening, not guest hardware)",
  "-no-shutdown": "libvirt keeps QEMU alive on guest shutdown to emit its lifecycle event",
  "-object secret masterKey0": "libvirt's master key file for secrets, a libvirtd runtime file",
  "-chardev charmonitor": "the monitor socket: libvirt passes an inherited fd (fd=1729 in the tests), we a path",
  "-audiodev": "libvirt adds <audio type='none'> by default (its post-parse), the builder none",
  env: "LC_ALL, PATH, HOME, USER, LOGNAME, XDG_* of libvirt's per-domain directory",
};

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
