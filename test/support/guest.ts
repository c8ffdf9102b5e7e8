/**
 * The tiny guest (scripts/guest.sh, scripts/guest/init): Debian's kernel and a busybox
 * initramfs whose init writes, on the serial console, what the guest OS itself reads (DMI
 * UUID and serial, vmgenid, NICs, disks, memory, CPUs), then reports changes as they happen and
 * powers off on an ACPI power-button press.
 *
 * This module builds or locates it, gives domain XML and QEMU arguments that boot it with its
 * console in a file, starts it under plain QEMU, and reads its console.
 *
 * Under TCG it is ready about 6-7 s after QEMU starts (bench/README.md). Send an ACPI shutdown
 * after its `ready` line: a press before that is lost. Prefer virtio disks: with a SATA disk on
 * machine q35, QEMU 11.x's SeaBIOS alone takes about 30 s under TCG before the kernel starts
 * (QEMU 7.2: no delay).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { QmpSession } from "../../provider/backends/qemu/qmp";
import { escapeAttr, escapeText } from "../../provider/xml/tree";
import { labQemu, requireLab } from "./lab";
import { REPO_ROOT } from "./paths";

/** {@link GuestImage}: a kernel and initramfs pair, with the command line they boot with. */
export interface GuestImage {
  /** The kernel (vmlinuz), for `-kernel` or `<os><kernel>`. */
  readonly kernel: string;
  /** The initramfs, for `-initrd` or `<os><initrd>`. */
  readonly initrd: string;
  /** The kernel command line (console on ttyS0), for `-append` or `<os><cmdline>`. */
  readonly cmdline: string;
  /** Names the pair: the kernel release and a hash of the initramfs inputs. */
  readonly id: string;
}

let built: GuestImage | undefined;

/**
 * {@link guestImage}: builds the guest when missing (`scripts/guest.sh build`: once, cached
 * under ~/.cache/pulumi-libvirt-domain; the first build downloads Debian's kernel package, about
 * 70 MB, and takes about 15 s) and returns where it is. With `dir`, the kernel and initramfs are
 * copied into `dir/lvd-guest/ID/` (once) and those copies are returned: libvirt's QEMU must
 * see them, and the 12.x lab sees only its image directory (`LAB_IMAGE_DIR`).
 * Throws, with the build's own message, when the build fails.
 */
export function guestImage(dir?: string): GuestImage {
  if (!built) {
    let out: string;
    try {
      out = execFileSync("bash", [path.join(REPO_ROOT, "scripts", "guest.sh"), "build"], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        timeout: 600000,
      });
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new Error(`scripts/guest.sh build failed: ${(err.stderr ?? "").trim() || err.message}`, { cause: e });
    }
    const env: Record<string, string> = {};
    for (const [, k, v] of out.matchAll(/^export (\w+)='([^']*)'$/gm))
      if (k !== undefined && v !== undefined) env[k] = v;
    const need = (k: string): string => {
      const v = env[k];
      if (!v) throw new Error(`scripts/guest.sh build printed no ${k}; it printed: ${out}`);
      return v;
    };
    built = {
      kernel: need("GUEST_KERNEL"),
      initrd: need("GUEST_INITRD"),
      cmdline: need("GUEST_CMDLINE"),
      id: need("GUEST_ID"),
    };
  }
  if (dir === undefined) return built;
  const target = path.join(dir, "lvd-guest", built.id);
  const copy = (from: string, name: string): string => {
    const to = path.join(target, name);
    if (!fs.existsSync(to)) {
      fs.mkdirSync(target, { recursive: true });
      const tmp = `${to}.tmp-${process.pid}`;
      fs.copyFileSync(from, tmp);
      fs.renameSync(tmp, to);
    }
    return to;
  };
  return { ...built, kernel: copy(built.kernel, "vmlinuz"), initrd: copy(built.initrd, "initrd.img") };
}

/** {@link GuestXmlOptions}: how {@link guestOsXml} and {@link guestDomainXml} boot the guest. */
export interface GuestXmlOptions {
  /** The machine type. @default `pc` */
  readonly machine?: string;
  /** Appended to the image's kernel command line. @default none */
  readonly extraCmdline?: string;
}

/** {@link guestOsXml}: `<os>` for direct kernel boot of `image`. */
export function guestOsXml(image: GuestImage, opts: GuestXmlOptions = {}): string {
  const cmdline = [image.cmdline, opts.extraCmdline].filter(Boolean).join(" ");
  return [
    "<os>",
    `  <type arch='x86_64' machine='${escapeAttr(opts.machine ?? "pc")}'>hvm</type>`,
    `  <kernel>${escapeText(image.kernel)}</kernel>`,
    `  <initrd>${escapeText(image.initrd)}</initrd>`,
    `  <cmdline>${escapeText(cmdline)}</cmdline>`,
    "</os>",
  ].join("\n");
}

/** {@link guestSerialXml}: the guest's console (ttyS0) written to `consolePath`. */
export function guestSerialXml(consolePath: string): string {
  return `<serial type='file'><source path='${escapeAttr(consolePath)}'/><target port='0'/></serial>`;
}

/** {@link GuestDomainOptions}: a whole domain for {@link guestDomainXml}. */
export interface GuestDomainOptions extends GuestXmlOptions {
  /** The libvirt name. */
  readonly name: string;
  /** The image, as seen by libvirt's QEMU (see {@link guestImage}'s `dir`). */
  readonly image: GuestImage;
  /** Where the console goes; a path libvirt's QEMU can write and the test can read. */
  readonly consolePath: string;
  /** The libvirt uuid. @default libvirt picks one */
  readonly uuid?: string;
  /** `<hwuuid>` (libvirt >= 11.7). @default none */
  readonly hwuuid?: string;
  /** Memory. @default 256 */
  readonly memoryMiB?: number;
  /** vCPUs. @default 1 */
  readonly vcpus?: number;
  /** More XML inside `<devices>` (disks, NICs). @default none */
  readonly devicesXml?: string;
  /** More XML after `<devices>` (e.g. `<qemu:commandline>`; the qemu namespace is declared). @default none */
  readonly tailXml?: string;
}

/**
 * {@link guestDomainXml}: a TCG domain that boots the guest: direct kernel boot, ACPI (for the
 * power button), the console in a file, and no reboot after a panic or power-off.
 */
export function guestDomainXml(o: GuestDomainOptions): string {
  return [
    "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>",
    `  <name>${escapeText(o.name)}</name>`,
    o.uuid ? `  <uuid>${escapeText(o.uuid)}</uuid>` : "",
    o.hwuuid ? `  <hwuuid>${escapeText(o.hwuuid)}</hwuuid>` : "",
    `  <memory unit='MiB'>${o.memoryMiB ?? 256}</memory>`,
    `  <vcpu>${o.vcpus ?? 1}</vcpu>`,
    guestOsXml(o.image, o).replace(/^/gm, "  "),
    "  <features><acpi/></features>",
    "  <on_poweroff>destroy</on_poweroff>",
    "  <on_reboot>destroy</on_reboot>",
    "  <on_crash>destroy</on_crash>",
    "  <devices>",
    `    ${guestSerialXml(o.consolePath)}`,
    o.devicesXml ? o.devicesXml.replace(/^/gm, "    ") : "",
    "  </devices>",
    o.tailXml ?? "",
    "</domain>",
  ]
    .filter((l) => l !== "")
    .join("\n");
}

/** {@link guestQemuArgs}: QEMU arguments that boot the guest with its console in `consolePath`. */
export function guestQemuArgs(image: GuestImage, consolePath: string, opts: GuestXmlOptions = {}): string[] {
  const cmdline = [image.cmdline, opts.extraCmdline].filter(Boolean).join(" ");
  return [
    "-kernel",
    image.kernel,
    "-initrd",
    image.initrd,
    "-append",
    cmdline,
    "-chardev",
    `file,id=lvdcon,path=${consolePath.replace(/,/g, ",,")}`,
    "-serial",
    "chardev:lvdcon",
  ];
}

/** {@link GuestQemu}: a guest running under plain QEMU (no libvirt), started by {@link startGuestQemu}. */
export interface GuestQemu {
  /** The QEMU process. */
  readonly process: ChildProcess;
  /** The guest's console. */
  readonly console: GuestConsole;
  /** The QMP socket. */
  readonly qmpPath: string;
  /** When QEMU was started (ms, `performance.now()`). */
  readonly startedAtMs: number;
  /** Resolves with QEMU's exit code (or signal name) when it exits. */
  readonly exited: Promise<number | string>;
  /** QEMU's stderr so far. */
  stderr(): string;
  /** A QMP session (capabilities negotiated); close it when done. */
  qmp(): Promise<QmpSession>;
  /** Kills QEMU (SIGKILL) if it still runs and waits for it. */
  kill(): Promise<void>;
}

/** {@link StartGuestQemuOptions}: what {@link startGuestQemu} runs. */
export interface StartGuestQemuOptions {
  /** The QEMU binary (`LAB_HOST_QEMU`, `LAB_NEW_QEMU`). */
  readonly qemu: string;
  /** The image. */
  readonly image: GuestImage;
  /** A directory for the console file and the QMP socket. */
  readonly dir: string;
  /** More QEMU arguments (devices, `-uuid`, `-smbios`...). @default none */
  readonly args?: readonly string[];
  /** QEMU's `-m`: MiB, optionally with hotplug room (`256,slots=2,maxmem=1G`). @default `256` */
  readonly memory?: string;
  /** The machine type. @default `pc` */
  readonly machine?: string;
}

/**
 * {@link startGuestQemu}: starts the guest under plain QEMU with TCG: no defaults, no display,
 * no reboot (a power-off or a panic ends QEMU), QMP on `dir/qmp.sock`, console in
 * `dir/console.log`.
 */
export function startGuestQemu(o: StartGuestQemuOptions): GuestQemu {
  fs.mkdirSync(o.dir, { recursive: true });
  const consolePath = path.join(o.dir, "console.log");
  const qmpPath = path.join(o.dir, "qmp.sock");
  fs.rmSync(consolePath, { force: true });
  fs.rmSync(qmpPath, { force: true });
  const argv = [
    "-machine",
    `${o.machine ?? "pc"},accel=tcg`,
    "-m",
    o.memory ?? "256",
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-no-reboot",
    "-qmp",
    `unix:${qmpPath.replace(/,/g, ",,")},server=on,wait=off`,
    ...guestQemuArgs(o.image, consolePath, { machine: o.machine }),
    ...(o.args ?? []),
  ];
  const startedAtMs = performance.now();
  const proc = spawn(o.qemu, argv, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr.setEncoding("utf8");
  proc.stderr.on("data", (d: string) => (stderr += d));
  let done = false;
  const exited = new Promise<number | string>((resolve) => {
    proc.on("error", (e) => {
      stderr += `\nspawn ${o.qemu}: ${e.message}`;
      done = true;
      resolve("spawn-error");
    });
    proc.on("exit", (code, signal) => {
      done = true;
      resolve(code ?? signal ?? "unknown");
    });
  });
  const con = new GuestConsole(consolePath, () =>
    done ? `QEMU exited; its stderr: ${stderr.trim() || "(empty)"}` : undefined,
  );
  return {
    process: proc,
    console: con,
    qmpPath,
    startedAtMs,
    exited,
    stderr: () => stderr,
    qmp: async () => {
      await waitUntil(() => fs.existsSync(qmpPath) || done, 10000, `QMP socket ${qmpPath}`);
      return QmpSession.connect(qmpPath);
    },
    kill: async () => {
      if (!done) proc.kill("SIGKILL");
      await exited;
    },
  };
}

async function waitUntil(ok: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The prefix of every line the guest's init writes. */
export const GUEST_LINE_PREFIX = "LVD-GUEST ";

/** {@link GuestLine}: one parsed `LVD-GUEST` line. */
export interface GuestLine {
  /** The line after the prefix, as written. */
  readonly text: string;
  /** The word before the fields (`nic`, `disk-added`, `ready`...), empty for a `key=value` line. */
  readonly event: string;
  /** The `key=value` fields, values decoded (`%20` is a space, `%25` a percent sign). */
  readonly fields: Readonly<Record<string, string>>;
}

/** {@link parseGuestLine}: splits the text after `LVD-GUEST ` into its event word and fields. */
export function parseGuestLine(text: string): GuestLine {
  const words = text.split(" ").filter(Boolean);
  const event = words.length > 0 && !words[0]!.includes("=") ? words.shift()! : "";
  const fields: Record<string, string> = {};
  for (const w of words) {
    const eq = w.indexOf("=");
    const key = eq < 0 ? w : w.slice(0, eq);
    fields[key] =
      eq < 0
        ? ""
        : w
            .slice(eq + 1)
            .replace(/%20/g, " ")
            .replace(/%25/g, "%");
  }
  return { text, event, fields };
}

/** {@link GuestReport}: the guest's first report, complete at its `ready` line. */
export interface GuestReport {
  /** `/sys/class/dmi/id/product_uuid` (empty when the kernel shows none). */
  readonly productUuid: string;
  /** `/sys/class/dmi/id/product_serial`. */
  readonly productSerial: string;
  /** The vmgenid GUID (empty without a vmgenid device). */
  readonly vmgenid: string;
  /** Where the vmgenid was read: `acpi` (guest memory at ACPI's address), `fw_cfg` or `none`. */
  readonly vmgenidVia: string;
  /** NICs: name, mac, driver. */
  readonly nics: readonly Readonly<Record<string, string>>[];
  /** Disks: name, size_bytes, ro, serial. */
  readonly disks: readonly Readonly<Record<string, string>>[];
  /** MemTotal. */
  readonly memoryKiB: number;
  /** Online CPUs. */
  readonly cpus: number;
  /** The guest's uptime at `ready`, seconds. */
  readonly uptimeSeconds: number;
}

/** {@link GuestLineMatcher}: a test on parsed lines, with words for the error message. */
export interface GuestLineMatcher {
  /** True for the line waited for. */
  readonly test: (line: GuestLine) => boolean;
  /** What is waited for, e.g. `a "memory_kib=" line below 200000`. */
  readonly what: string;
}

/** {@link WaitOptions}: bounds for {@link GuestConsole.waitFor}. */
export interface WaitOptions {
  /** How long to wait. @default 120000 (a TCG boot takes about 7 s alone, more on a busy machine) */
  readonly timeoutMs?: number;
  /** Only lines after this many `LVD-GUEST` lines count (see {@link GuestConsole.count}). @default 0 */
  readonly after?: number;
}

/**
 * {@link GuestConsole}: reads the guest's console file (written by QEMU while the guest runs).
 * Only `LVD-GUEST` lines count; kernel messages in between are skipped, carriage returns dropped.
 */
export class GuestConsole {
  /**
   * @param path the console file
   * @param stopped says why waiting is pointless (e.g. QEMU exited), or undefined to go on
   */
  constructor(
    public readonly path: string,
    private readonly stopped: () => string | undefined = () => undefined,
  ) {}

  /** The whole console so far ("" before QEMU creates the file). */
  public text(): string {
    try {
      return fs.readFileSync(this.path, "utf8").replace(/\r/g, "");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return "";
      throw e;
    }
  }

  /** The text of every complete `LVD-GUEST` line so far, prefix removed. */
  public lines(): string[] {
    const t = this.text();
    const complete = t.endsWith("\n") ? t : t.slice(0, t.lastIndexOf("\n") + 1);
    return complete
      .split("\n")
      .filter((l) => l.startsWith(GUEST_LINE_PREFIX))
      .map((l) => l.slice(GUEST_LINE_PREFIX.length).trimEnd());
  }

  /** How many `LVD-GUEST` lines there are now (for {@link WaitOptions.after}). */
  public count(): number {
    return this.lines().length;
  }

  /**
   * Waits for a line: a string matches the text after the prefix exactly (`"ready"`,
   * `"product_uuid=..."`), a RegExp is tested on that text, a {@link GuestLineMatcher} on the
   * parsed line. Resolves with the parsed line; throws,
   * naming the file, what it waited for and the last lines seen, after `timeoutMs`, at once when
   * the kernel panicked, or when the guest cannot answer any more (`stopped`).
   */
  public async waitFor(match: string | RegExp | GuestLineMatcher, opts: WaitOptions = {}): Promise<GuestLine> {
    const timeoutMs = opts.timeoutMs ?? 120000;
    const end = Date.now() + timeoutMs;
    const test: (l: GuestLine) => boolean =
      typeof match === "string"
        ? (l) => l.text === match
        : match instanceof RegExp
          ? (l) => match.test(l.text)
          : match.test;
    const what =
      typeof match === "string"
        ? `"${GUEST_LINE_PREFIX}${match}"`
        : match instanceof RegExp
          ? `a "${GUEST_LINE_PREFIX}" line matching ${match}`
          : match.what;
    for (;;) {
      const stop = this.stopped(); // read before the file: a line written just before QEMU exited still counts
      const found = this.lines()
        .slice(opts.after ?? 0)
        .map(parseGuestLine)
        .find(test);
      if (found !== undefined) return found;
      const text = this.text();
      let why: string | undefined;
      if (/Kernel panic/.test(text)) why = "the guest kernel panicked";
      else if (stop) why = stop;
      else if (Date.now() > end) why = `timed out after ${Math.round(timeoutMs / 1000)} s`;
      if (why) {
        const tail = text.split("\n").filter(Boolean).slice(-8).join("\n  ");
        throw new Error(
          `${why} waiting for ${what} in the guest console ${this.path}; its last lines:\n  ${tail || "(empty)"}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Waits for `ready` and returns the first report. */
  public async report(opts: WaitOptions = {}): Promise<GuestReport> {
    await this.waitFor("ready", opts);
    const lines = this.lines();
    const upto = lines.indexOf("ready");
    const first = lines.slice(0, upto).map(parseGuestLine);
    const value = (k: string): string => {
      const v = first.find((x) => x.event === "" && k in x.fields)?.fields[k];
      if (v === undefined)
        throw new Error(`the guest console ${this.path} has no "${GUEST_LINE_PREFIX}${k}=" line before "ready"`);
      return v;
    };
    return {
      productUuid: value("product_uuid"),
      productSerial: value("product_serial"),
      vmgenid: value("vmgenid"),
      vmgenidVia: value("vmgenid_via"),
      nics: first.filter((l) => l.event === "nic").map((l) => l.fields),
      disks: first.filter((l) => l.event === "disk").map((l) => l.fields),
      memoryKiB: Number(value("memory_kib")),
      cpus: Number(value("cpus")),
      uptimeSeconds: Number(value("uptime_s")),
    };
  }
}

/** {@link GuestTarget}: where a guest runs through the Domain provider: a libvirt lab or QEMU-direct. */
export interface GuestTarget {
  /** Names the lab and backend, e.g. `libvirt 12.x (native <hwuuid>)`, `QEMU-direct 7.2`. */
  readonly label: string;
  /** The connection URI for the Domain's `connection.uri`. */
  readonly uri: string;
  /** The image as the target's QEMU sees it. */
  readonly image: GuestImage;
  /** A directory for console files that the target's QEMU can write and the test can read. */
  readonly consoleDir: string;
}

/**
 * {@link inParallel}: runs `jobs` with at most `limit` at a time (guests boot for seconds under
 * TCG: independent ones boot together). Returns one promise a job, in order, each already
 * handled (no unhandled rejection while a test has not awaited it yet).
 */
export function inParallel(jobs: readonly (() => Promise<void>)[], limit: number): Promise<void>[] {
  let running = 0;
  const queue: (() => void)[] = [];
  return jobs.map((job) => {
    const p = new Promise<void>((resolve, reject) => {
      const go = (): void => {
        running++;
        job()
          .then(resolve, reject)
          .finally(() => {
            running--;
            queue.shift()?.();
          });
      };
      if (running < limit) go();
      else queue.push(go);
    });
    p.catch(() => undefined);
    return p;
  });
}

/** {@link GuestTargetKind}: the backends a guest test runs on. */
export type GuestTargetKind = "libvirt-12" | "libvirt-9" | "direct-7.2" | "direct-11";

/** {@link GUEST_TARGET_LABELS}: each {@link GuestTargetKind} in words (the lab and the backend). */
export const GUEST_TARGET_LABELS: Readonly<Record<GuestTargetKind, string>> = {
  "libvirt-12": "libvirt 12.x (native <hwuuid>)",
  "libvirt-9": "libvirt 9.0 (passthrough)",
  "direct-7.2": "QEMU-direct, QEMU 7.2",
  "direct-11": "QEMU-direct, QEMU 11.x",
};

/**
 * {@link guestTarget}: a target, checked to answer (a missing lab fails the test). QEMU-direct
 * keeps its state, and the consoles, in new directories under `work`.
 */
export async function guestTarget(kind: GuestTargetKind, work: string): Promise<GuestTarget> {
  if (kind === "libvirt-12" || kind === "libvirt-9") {
    const lab = await requireLab(kind === "libvirt-12" ? "new" : "host");
    const consoleDir = path.join(lab.imageDir, "lvd-guest", "run");
    fs.mkdirSync(consoleDir, { recursive: true });
    return {
      label: GUEST_TARGET_LABELS[kind],
      uri: lab.uri,
      image: guestImage(lab.imageDir),
      consoleDir,
    };
  }
  const qemu = labQemu(kind === "direct-7.2" ? "host" : "new");
  const state = fs.mkdtempSync(path.join(work, `${kind}-`));
  return {
    label: GUEST_TARGET_LABELS[kind],
    uri: `qemu-direct://${state}?emulator=${encodeURIComponent(qemu)}`,
    image: guestImage(),
    consoleDir: fs.mkdtempSync(path.join(work, `${kind}-consoles-`)),
  };
}
