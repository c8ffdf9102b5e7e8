/**
 * The five corpus checks, run in-process on the project's compiled modules (as the
 * `libvirt-domain` CLI calls them: DomainDef.parse/format, resolveIdentity, diffDomains,
 * buildQemuArgv). Each returns, per case, the classes of difference found (none: same), so the
 * suite can hold them against test/corpus/known-differences.txt.
 *
 * Each difference is put in a class by the rules below (cause, not symptom); the reason for each
 * class is data, in the known-differences file.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { DomainDef } from "../../provider/xml/domain";
import { DomainXmlError } from "../../provider/xml/errors";
import { resolveIdentity } from "../../provider/xml/identity";
import { DomainChange, diffDomains } from "../../provider/diff/semantic";
import { QemuArgvOptions, buildQemuArgv } from "../../provider/qemu/argv";
import { readFirmwareDescriptors } from "../../provider/backends/qemu/firmware-descriptors";
import { libvirtChannelTargetDir } from "../../provider/qemu/chardev";
import { unexpressedPaths } from "../../provider/qemu/paths";
import { XmlElement, childElements, firstChild, getAttr, textContent } from "../../provider/xml/tree";
import { parseBitmap } from "../../provider/xml/bitmap";
import { canonicalXml, firstDifference } from "./canonical";
import { ArgvItem, compareArgv, compareWholeArgv, itemKey, parseArgsFile } from "./argv";
import { Corpus } from "./cases";

/** The checks, by the name the known-differences file uses. */
export type CheckName = "roundtrip" | "identity" | "diff" | "qemu-argv" | "whole-argv" | "silent-drop";

/** One difference of one case: its class and a line of detail for the report. */
export interface Finding {
  cls: string;
  detail: string;
}

/** The result of one check over the corpus. */
export interface CheckResult {
  check: CheckName;
  /** What was compared (files, pairs, accepted cases, paths). */
  population: number;
  /** Keyed by case (or, for silent drops, by element path): the findings; absent when same. */
  findings: Map<string, Finding[]>;
  /** Extra counts for the count line (e.g. refused, accepted). */
  extra: Record<string, number>;
}

function read(file: string): string {
  return fs.readFileSync(file, "utf8");
}

function caseOf(file: string): string {
  return path.basename(file).replace(/\.xml$/, "");
}

function add(m: Map<string, Finding[]>, key: string, f: Finding): void {
  const list = m.get(key) ?? [];
  if (!list.some((x) => x.cls === f.cls)) list.push(f);
  m.set(key, list);
}

// ---------------------------------------------------------------------------------------------
// 1. Round trip: parse + format is lossless (see canonical.ts for the definition) and a fixed
//    point (formatting the formatted document again gives the same bytes).

/** Round trip over every domain XML file of the corpus. */
export function checkRoundTrip(corpus: Corpus): CheckResult {
  const findings = new Map<string, Finding[]>();
  for (const file of corpus.xmlFiles) {
    const text = read(file);
    const key = caseOf(file);
    let once: string;
    try {
      once = DomainDef.parse(text).format();
    } catch (e) {
      const msg = DomainXmlError.isInstance(e) ? e.message : String(e);
      add(findings, key, {
        cls: /not well formed|unexpected root/.test(msg) ? "not-well-formed" : "parse-refused",
        detail: msg,
      });
      continue;
    }
    let before: string;
    try {
      before = canonicalXml(text);
    } catch (e) {
      add(findings, key, { cls: "not-well-formed", detail: String(e) });
      continue;
    }
    const after = canonicalXml(once);
    if (before !== after) add(findings, key, { cls: "lossy", detail: firstDifference(before, after) });
    const twice = DomainDef.parse(once).format();
    if (twice !== once) add(findings, key, { cls: "not-a-fixed-point", detail: firstDifference(once, twice) });
  }
  return { check: "roundtrip", population: corpus.xmlFiles.length, findings, extra: {} };
}

// ---------------------------------------------------------------------------------------------
// 2. Identity: name and uuid as libvirt would read them.
//    Expected uuid: for an input libvirt defined, the <uuid> libvirt wrote in NAME.x86_64-latest.xml;
//    otherwise the <uuid> as written, read as libvirt's virUUIDParse does (32 hex digits, dashes
//    between them ignored, surrounding spaces ignored) and written as virUUIDFormat does
//    (lowercase 8-4-4-4-12); without <uuid>, the sysinfo system uuid (libvirt copies it);
//    without either, none (libvirt generates one).

function uuidAsLibvirtReads(text: string): string | undefined {
  const hex = text.trim().replace(/-/g, "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) return undefined;
  const h = hex.toLowerCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function writtenUuid(root: XmlElement): string | null | undefined {
  const u = textContent(firstChild(root, "uuid"));
  if (u !== undefined && u !== "") return uuidAsLibvirtReads(u) ?? undefined;
  for (const si of childElements(root, "sysinfo")) {
    const sys = firstChild(si, "system");
    const e = sys && childElements(sys, "entry").find((x) => getAttr(x, "name") === "uuid");
    if (getAttr(si, "type") === "smbios" && e && textContent(e))
      return uuidAsLibvirtReads(textContent(e)!) ?? undefined;
  }
  return null;
}

/** Identity over every domain XML file of the corpus. */
export function checkIdentity(corpus: Corpus): CheckResult {
  const findings = new Map<string, Finding[]>();
  const libvirtUuid = new Map<string, string>();
  const libvirtError = new Map<string, string>();
  for (const c of corpus.cases) {
    if (c.err) libvirtError.set(c.input, read(c.err).trim());
    if (!c.outputXml) continue;
    const u = textContent(firstChild(DomainDef.parse(read(c.outputXml)).root, "uuid"));
    if (u) libvirtUuid.set(c.input, u.trim());
  }
  let generated = 0;
  let refusedAsLibvirt = 0;
  let documents = 0;
  for (const file of corpus.xmlFiles) {
    const key = caseOf(file);
    let def: DomainDef;
    try {
      def = DomainDef.parse(read(file));
    } catch {
      continue; // not a document: the round trip counts it
    }
    documents++;
    const expected = libvirtUuid.get(file) ?? writtenUuid(def.root);
    if (expected === null) generated++;
    const expectedName = textContent(firstChild(def.root, "name"))?.trim();
    try {
      const id = resolveIdentity(def);
      if (expected === undefined) {
        add(findings, key, { cls: "malformed-uuid-accepted", detail: `libvirt refuses the uuid, we read ${id.uuid}` });
      } else if (id.uuid !== expected) {
        add(findings, key, { cls: "uuid", detail: `expected ${expected}, got ${id.uuid}` });
      }
      if (id.name !== expectedName)
        add(findings, key, { cls: "name", detail: `expected ${expectedName}, got ${id.name}` });
    } catch (e) {
      const msg = DomainXmlError.isInstance(e) ? e.libvirtMessage : String(e);
      const reason = DomainXmlError.isInstance(e) ? e.reason : msg;
      // Refused as libvirt refuses it: a uuid virUUIDParse rejects, or libvirt's own error text.
      if ((expected === undefined && /malformed uuid/.test(msg)) || libvirtError.get(file)?.includes(reason)) {
        refusedAsLibvirt++;
        continue;
      }
      add(findings, key, { cls: "refused", detail: msg });
    }
  }
  return {
    check: "identity",
    population: documents,
    findings,
    extra: { "refused as libvirt refuses": refusedAsLibvirt, "without uuid (libvirt generates one)": generated },
  };
}

// ---------------------------------------------------------------------------------------------
// 3. diff NAME.xml NAME.x86_64-latest.xml: libvirt's own normalization of the input must be no
//    change. Each change is put in a class by the first rule that explains it.

function sameSet(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  const x = parseBitmap(a);
  const y = parseBitmap(b);
  return !!x && !!y && x.join(",") === y.join(",");
}

interface DiffContext {
  desired: DomainDef;
  actual: DomainDef;
  changes: DomainChange[];
}

type DiffRule = [cls: string, explains: (c: DomainChange, ctx: DiffContext) => boolean];

const BITMAP_ATTRS = /\/@(cpuset|nodeset|cpus|vcpus|iothreads)$/;

/** The diff classes, first match wins; the order puts specific causes before general ones. */
const DIFF_RULES: DiffRule[] = [
  ["namespace-prefix", (c) => /^\/domain\/([A-Za-z0-9_.-]+:)?commandline(\/|$)/.test(c.path)],
  ["bootmenu-timeout", (c) => c.path === "/domain/os/bootmenu/@timeout"],
  [
    "numa-cell-order",
    (c, ctx) => {
      if (!c.path.startsWith("/domain/cpu/numa/cell")) return false;
      if (/distances\/sibling/.test(c.path) || c.path.endsWith("/@id")) return true;
      const cell = c.path.replace(/\/@[^/]+$/, "");
      return ctx.changes.some((o) => o.path === `${cell}/@id`);
    },
  ],
  ["bitmap-spelling", (c) => BITMAP_ATTRS.test(c.path) && c.kind === "modify" && sameSet(c.old, c.new)],
  ["scheduler-split", (c) => /^\/domain\/cputune\/(vcpusched|iothreadsched)/.test(c.path)],
  [
    "units",
    (c, ctx) => {
      if (c.path.endsWith("/@unit")) return true;
      const el = c.path.replace(/\/@[^/]+$/, "");
      return ctx.changes.some((o) => o.path === `${c.path}/@unit` || o.path === `${el}/@unit`);
    },
  ],
  ["usb-companions", (c, ctx) => /^\/domain\/devices\/controller/.test(c.path) && usbCompanions(ctx.desired)],
  [
    "controller-index",
    (c, ctx) => /^\/domain\/devices\/controller/.test(c.path) && controllersWithoutIndex(ctx.desired),
  ],
  [
    "serial-from-console",
    (c) =>
      (c.kind === "remove" && /^\/domain\/devices\/serial/.test(c.path)) ||
      /^\/domain\/devices\/console.*\/target\/@type$/.test(c.path),
  ],
  [
    "video-primary-first",
    (c, ctx) =>
      /^\/domain\/devices\/video/.test(c.path) &&
      ctx.changes.some((o) => /^\/domain\/devices\/video\[\d+\]\/model\/@primary$/.test(o.path) && o.new === "yes"),
  ],
  [
    "runtime-state",
    (c) =>
      /\/target\/@state$/.test(c.path) ||
      /\/(source|backingStore)\/@index$/.test(c.path) ||
      /\/disk\[[^\]]*\]\/mirror$/.test(c.path) ||
      /\/interface\[[^\]]*\]\/source\/@portid$/.test(c.path) ||
      /\/graphics\[[^\]]*\]\/@socket$/.test(c.path) ||
      (/\/channel\[[^\]]*\]\/source$/.test(c.path) &&
        c.kind === "add" &&
        /^<source( mode='bind')?( path='\/var\/(lib|run)\/libvirt\/qemu\/channel\/[^']*')?\/>$/.test(c.new ?? "")),
  ],
  [
    "default-dropped",
    (c) =>
      (/\/model\/@primary$/.test(c.path) && c.new === "no") ||
      (/\/driver\/@cache$/.test(c.path) && c.new === "default") ||
      (/\/protocol$/.test(c.path) && c.kind === "add" && /^<protocol type='raw'\/>$/.test(c.new ?? "")) ||
      (/\/target\/@tray$/.test(c.path) && c.new === "closed") ||
      (/\/graphics\[[^\]]*\]\/@autoport$/.test(c.path) && c.new === "no") ||
      (c.path === "/domain/cpu/model" &&
        c.kind === "add" &&
        /^<model fallback='(allow|forbid)'\/>$/.test(c.new ?? "")) ||
      (/\/usbdev(\[\d+\])?\/@(class|vendor|product|version)$/.test(c.path) && c.new === "-1") ||
      (/\/disk\[[^\]]*\]\/@snapshot$/.test(c.path) && c.new === "no") ||
      (c.path === "/domain/memtune" && c.kind === "add" && /9007199254740991/.test(c.new ?? "")) ||
      (/\/interface\[[^\]]*\]\/coalesce$/.test(c.path) && c.kind === "add" && !/max='[1-9]/.test(c.new ?? "")),
  ],
  [
    "value-spelling",
    (c) =>
      (c.kind === "modify" && /\/model\/@type$/.test(c.path) && c.old?.toLowerCase() === c.new?.toLowerCase()) ||
      (c.kind === "modify" && /\/usbdev(\[\d+\])?\/@version$/.test(c.path)) ||
      (c.kind === "modify" && /\/source\/@name$/.test(c.path) && c.old === `${c.new}/0`),
  ],
  [
    "drops-inapplicable",
    (c) =>
      c.kind === "add" &&
      (/\/interface\[[^\]]*\]\/(filterref|driver(\/@queues)?|backend\/@vhost)$/.test(c.path) ||
        /\/target\/@removable$/.test(c.path)),
  ],
  ["metadata-one-per-namespace", (c) => c.path.startsWith("/domain/metadata/")],
  [
    "libvirt-rewrites",
    (c) =>
      [
        /^\/domain\/vcpu\/@placement$/, // placement follows <numatune placement='auto'>
        /^\/domain\/numatune\/memory\/@nodeset$/, // nodeset dropped with placement='auto'
        /^\/domain\/cpu\/numa\/cell(\[[^\]]*\])?\/@cpus$/, // vCPUs in no cell put in cell 0
        /^\/domain\/os\/nvram\/@format$/, // firmware autoselection picks the nvram template's format
        /^\/domain\/devices\/disk\[[^\]]*\]\/@type$/, // empty network cdrom -> file; pool volume resolved
        /^\/domain\/devices\/controller\[[^\]]*\]\/@model$/, // model='auto' replaced by the chosen model
        /^\/domain\/devices\/channel\[[^\]]*\]\/address\/@bus$/, // virtio-serial has only bus 0
      ].some((r) => r.test(c.path)),
  ],
];

function controllersWithoutIndex(def: DomainDef): boolean {
  return def.deviceElements("controller").some((c) => getAttr(c, "index") === undefined);
}

function usbCompanions(def: DomainDef): boolean {
  const usb = def.deviceElements("controller").filter((c) => getAttr(c, "type") === "usb");
  const seen = new Set<string>();
  for (const c of usb) {
    const i = getAttr(c, "index") ?? "";
    if (i !== "" && seen.has(i)) return true;
    seen.add(i);
  }
  return false;
}

/** Diff over every input libvirt defined (NAME.xml with NAME.x86_64-latest.xml). */
export function checkDiff(corpus: Corpus): CheckResult {
  const findings = new Map<string, Finding[]>();
  let pairs = 0;
  for (const c of corpus.cases) {
    if (!c.outputXml) continue;
    pairs++;
    let desired: DomainDef;
    try {
      desired = DomainDef.parse(read(c.input));
    } catch (e) {
      add(findings, c.name, { cls: "parse-refused", detail: String((e as Error).message) });
      continue;
    }
    const actual = DomainDef.parse(read(c.outputXml));
    const changes = diffDomains(desired, actual).changes;
    const ctx: DiffContext = { desired, actual, changes };
    for (const ch of changes) {
      const rule = DIFF_RULES.find(([, explains]) => explains(ch, ctx));
      add(findings, c.name, {
        cls: rule ? rule[0] : "unclassified",
        detail: `${ch.kind} ${ch.path}: ${ch.old ?? ""} -> ${ch.new ?? ""}`,
      });
    }
  }
  return { check: "diff", population: pairs, findings, extra: {} };
}

// ---------------------------------------------------------------------------------------------
// 4. qemu-argv NAME.xml against NAME.x86_64-latest.args, for the inputs the builder accepts.

/** The argv classes, by option, from what the input states. */
function argvClass(option: string, def: DomainDef, libvirt: string[]): string {
  const r = def.root;
  if (libvirt.includes("-incoming")) return "incoming-migration";
  const cpu = firstChild(r, "cpu");
  if (option === "-m") {
    if (cpu && firstChild(cpu, "numa")) return "m-numa-cells";
    if (firstChild(r, "maxMemory")) return "m-maxmem-slots";
  }
  if (option === "-smp" && firstChild(r, "vcpus")) return "smp-hotplug-vcpus";
  if (option === "-smbios") {
    const other = childElements(r, "sysinfo").some((s) => childElements(s).some((e) => e.name !== "system"));
    if (other) return "smbios-other-types";
  }
  return "argv-unclassified";
}

/** The result of {@link checkQemuArgv}, with what silent-drop needs. */
export interface ArgvRun extends CheckResult {
  /** Inputs the builder accepted, by name. */
  accepted: Map<string, DomainDef>;
  /** libvirt's command line and ours, for each accepted input. */
  argvs: Map<string, { libvirt: string[]; ours: string[] }>;
}

/**
 * The host libvirt's test suite fakes for the command lines: NUMA nodes 0-3 (its .err files say
 * "NUMA node 4 is unavailable") and hugetlbfs mounted at /dev/hugepages2M (2 MiB pages, the
 * default size) and /dev/hugepages1G (tests/testutilsqemu.c); the builder checks against them
 * as libvirt does. Its clock is fixed at 1234567890 (2009-02-13T23:31:30Z) for `<clock offset='variable'>`.
 */
const CORPUS_HOST = {
  nowEpochSeconds: 1234567890,
  hostNumaNodes: [0, 1, 2, 3],
  hugetlbfs: {
    mounts: [
      { sizeKiB: 2048, path: "/dev/hugepages2M" },
      { sizeKiB: 1048576, path: "/dev/hugepages1G" },
    ],
    defaultSizeKiB: 2048,
  },
  // libvirt's test suite replaces the swtpm socket (libvirt's /run/libvirt/qemu/swtpm/ID-NAME-swtpm.sock,
  // made by its daemon) with /dev/test (tests/qemuxmlconftest.c); the builder takes the socket as an option
  swtpmSocketPath: "/dev/test",
};

/**
 * The firmware descriptors libvirt's tests select from (tests/qemufirmwaredata, beside the
 * corpus, extracted by scripts/corpus.sh): qemuxmlconftest maps /etc/qemu/firmware and
 * /usr/share/qemu/firmware onto its etc/ and usr/ trees; its driver is privileged, so the home/
 * tree ($XDG_CONFIG_HOME) is not read. NVRAM files go to libvirt's nvram_dir, the builder's default.
 */
export function corpusFirmwareDirs(corpus: Corpus): string[] {
  const root = path.join(corpus.dir, "..", "qemufirmwaredata");
  if (!fs.existsSync(root))
    throw new Error(
      `${root} is missing: scripts/corpus.sh extracts it with the corpus (remove the cache to fetch again)`,
    );
  return [path.join(root, "etc", "qemu", "firmware"), path.join(root, "usr", "share", "qemu", "firmware")];
}
/** The host, and libvirt's channel directory of the test suite's domain (id -1): libvirt's paths in the argv. */
const corpusOptions = (host: QemuArgvOptions, def: DomainDef): QemuArgvOptions => ({
  ...host,
  channelTargetDir: libvirtChannelTargetDir(-1, def.name ?? ""),
});

/** qemu-argv over every input libvirt built a command line for. */
export function checkQemuArgv(corpus: Corpus): ArgvRun {
  const host = { ...CORPUS_HOST, firmware: readFirmwareDescriptors(corpusFirmwareDirs(corpus)) };
  const findings = new Map<string, Finding[]>();
  const accepted = new Map<string, DomainDef>();
  const argvs = new Map<string, { libvirt: string[]; ours: string[] }>();
  let withArgs = 0;
  let refused = 0;
  let libvirtRefuses = 0;
  let acceptedWhatLibvirtRefuses = 0;
  for (const c of corpus.cases) {
    let def: DomainDef | undefined;
    try {
      def = DomainDef.parse(read(c.input));
    } catch {
      def = undefined;
    }
    if (!c.args) {
      if (c.err && def) {
        libvirtRefuses++;
        try {
          buildQemuArgv(def, corpusOptions(host, def));
          acceptedWhatLibvirtRefuses++;
        } catch {
          /* refused as libvirt refuses */
        }
      }
      continue;
    }
    withArgs++;
    if (!def) {
      add(findings, c.name, { cls: "parse-refused", detail: "the input does not parse" });
      continue;
    }
    let ours: string[];
    try {
      ours = buildQemuArgv(def, corpusOptions(host, def)).argv;
    } catch (e) {
      if (DomainXmlError.isInstance(e)) {
        refused++;
        continue;
      }
      add(findings, c.name, { cls: "builder-crash", detail: String((e as Error).stack ?? e) });
      continue;
    }
    accepted.set(c.name, def);
    const libvirt = parseArgsFile(read(c.args)).argv;
    argvs.set(c.name, { libvirt, ours });
    for (const d of compareArgv(libvirt, ours)) {
      add(findings, c.name, {
        cls: argvClass(d.option, def, libvirt),
        detail: `${d.option}: libvirt ${JSON.stringify(d.libvirt)}, ours ${JSON.stringify(d.ours)}`,
      });
    }
  }
  return {
    check: "qemu-argv",
    population: accepted.size,
    findings,
    accepted,
    argvs,
    extra: {
      "libvirt command lines": withArgs,
      refused,
      "libvirt refuses (.err)": libvirtRefuses,
      "of which the builder accepts": acceptedWhatLibvirtRefuses,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// 4b. The whole argument list of every accepted input against libvirt's, libvirt's own plumbing
//     removed (test/corpus/argv.ts LIBVIRT_ONLY). Each difference is put in a class by the rules
//     below, by the option and device it concerns.

/** What an item is about: `-device DRIVER`, `-object QOM-TYPE`, `-blockdev`, or the option. */
function itemSubject(i: ArgvItem): string {
  if (i.value?.startsWith("{")) {
    try {
      const j = JSON.parse(i.value) as Record<string, unknown>;
      if (i.option === "-device" && typeof j.driver === "string") return `-device ${j.driver}`;
      if (i.option === "-object" && typeof j["qom-type"] === "string") return `-object ${j["qom-type"]}`;
    } catch {
      /* as written */
    }
  }
  return i.option;
}

/** The whole-argv classes, by what differs (first match wins); the reasons are in known-differences.txt. */
const WHOLE_ARGV_RULES: [string, (subject: string, detail: string, def: DomainDef) => boolean][] = [
  ["incoming-migration", (s) => s === "-incoming"],
  // controllers family: a q35 definition without a USB controller where libvirt's args have no
  // qemu-xhci at all (nor the root port it would sit on): the test ran with QEMU's xHCI removed
  [
    "test-qemu-caps",
    (s, d, def) =>
      /^-device (qemu-xhci|pcie-root-port)$/.test(s) &&
      !d.includes("libvirt: ") &&
      !childElements(firstChild(def.root, "devices") ?? def.root, "controller").some(
        (c) => getAttr(c, "type") === "usb",
      ),
  ],
  [
    "q35-layout",
    (s, d, def) =>
      /q35/.test(getAttr(firstChild(firstChild(def.root, "os") ?? def.root, "type"), "machine") ?? "") &&
      /^(-device|-global|-watchdog-action)/.test(s) &&
      !/"vhostfd"/.test(d),
  ],
  ["host-model-cpu", (s, _, def) => s === "-cpu" && getAttr(firstChild(def.root, "cpu"), "mode") === "host-model"],
  [
    "cpu-optional-feature",
    (s, _, def) =>
      s === "-cpu" &&
      childElements(firstChild(def.root, "cpu") ?? def.root, "feature").some(
        (f) => getAttr(f, "policy") === "optional",
      ),
  ],
  [
    "cpu-feature-map",
    (s, _, def) => s === "-cpu" && childElements(firstChild(def.root, "cpu") ?? def.root, "feature").length > 0,
  ],
  ["cpu-check", (s, _, def) => s === "-cpu" && getAttr(firstChild(def.root, "cpu"), "check") !== undefined],
  // input-video family: a graphics socket without a written path, made in each manager's own directory
  [
    "graphics-socket-dir",
    (s, d) =>
      (s === "-vnc" || s === "-spice") &&
      /libvirt: -(vnc|spice) [^|]*\/var\/lib\/libvirt\/qemu\/domain--1-[^/|]+\/(vnc|spice)\.sock/.test(d) &&
      /ours: -(vnc|spice) [^|]*\/run\/libvirt-domain\/[^/|]+\/(vnc|spice)\.sock/.test(d),
  ],
  // input-video family: a SPICE port picked at start by each manager
  [
    "spice-autoport",
    (s, d, def) =>
      s === "-spice" &&
      /ours: -spice port=59\d\d,/.test(d) &&
      childElements(firstChild(def.root, "devices") ?? def.root, "graphics").some(
        (g) => getAttr(g, "type") === "spice" && (getAttr(g, "autoport") === "yes" || getAttr(g, "port") === "-1"),
      ),
  ],
  [
    "host-vnc-config",
    (s, d) => (s === "-vnc" && /sasl=on|tls-creds|vnc=unix/.test(d)) || (/^-object /.test(s) && /vnc-tls/.test(d)),
  ],
  // chardev family: TLS of TCP character devices from qemu.conf (chardev_tls), and the secret of its key
  [
    "host-chardev-tls-config",
    (s, d) =>
      (s === "-chardev" && /libvirt: -chardev [^|]*tls-creds=/.test(d)) ||
      (s === "-object tls-creds-x509" && /"id":"objchar[a-z]+\d+_tls0"/.test(d)) ||
      (s === "-object secret" && /"id":"char[a-z]+\d+-secret0"/.test(d)),
  ],
  ["host-spice-config", (s, d) => s === "-spice" && /sasl=on|disable-ticketing=on/.test(d)],
  ["host-rendernode", (s, d) => (s === "-display" || s === "-spice") && /rendernode=\/dev\/dri\/foo/.test(d)],
  // hostdev-net family: a VNC port libvirt allocates itself (autoport), before the audio rule that also looks at -vnc
  ["vnc-autoport", (s, d) => s === "-vnc" && /ours: -vnc [^|]*,to=99/.test(d)],
  ["host-audio-backend", (s) => s === "-audiodev" || s === "-vnc"],
  [
    "generated-genid",
    (s, _, def) => s === "-device vmgenid" && (textContent(firstChild(def.root, "genid")) ?? "").trim() === "",
  ],
  ["host-cdrom-probe", (s, d) => s === "-blockdev" && /host_cdrom/.test(d) && !/\/dev\/cdrom"/.test(d)],
  ["fd-passing", (s, d) => s === "-chardev" && /\/dev\/fdset\//.test(d)],
  ["socket-fd", (s, d) => s === "-chardev" && /libvirt: -chardev socket,[^|]*,fd=\d+/.test(d)],
  // input-video family: a vsock CID picked at start by each manager
  [
    "vsock-auto-cid",
    (s, _, def) =>
      s === "-device vhost-vsock-pci" &&
      childElements(firstChild(def.root, "devices") ?? def.root, "vsock").some(
        (v) => getAttr(firstChild(v, "cid"), "auto") === "yes",
      ),
  ],
  [
    "tap-vhost-fd",
    (s, d) =>
      (s === "-netdev" && /libvirt: -netdev \{[^|]*("fds?":|\/dev\/fdset\/)/.test(d)) ||
      (/^-device vhost-/.test(s) && /"vhostfd"/.test(d)),
  ],
  // r3 storage: a disk's HTTP cookies libvirt encrypts with its master key; an http(s) disk libvirt serves through nbdkit
  ["secret-master-key", (s, d) => s === "-object secret" && /httpcookie-secret/.test(d)],
  ["host-nbdkit", (s, d) => s === "-blockdev" && /libvirt: -blockdev [^|]*nbdkit-libvirt-/.test(d)],
  ["blockdev-node-numbering", (s) => s === "-blockdev" || /^-device (ide|scsi|virtio-blk)/.test(s)],
  [
    "prealloc-thread-context",
    (s, d) => /^-object (thread-context|memory-backend)/.test(s) && /thread-context|prealloc-context/.test(d),
  ],
  ["memory-backing-dir", (s, d) => /^-object memory-backend-file/.test(s) && /"mem-path"/.test(d)],
];

function wholeArgvClass(subject: string, detail: string, def: DomainDef): string {
  return WHOLE_ARGV_RULES.find(([, r]) => r(subject, detail, def))?.[0] ?? "argv-unclassified";
}

/** The whole argument list over the accepted inputs (from {@link checkQemuArgv}). */
export function checkWholeArgv(argv: ArgvRun): CheckResult {
  const findings = new Map<string, Finding[]>();
  for (const [name, { libvirt, ours }] of argv.argvs) {
    const { onlyLibvirt, onlyOurs } = compareWholeArgv(libvirt, ours);
    const bySubject = new Map<string, string[]>();
    for (const [side, items] of [
      ["libvirt", onlyLibvirt],
      ["ours", onlyOurs],
    ] as const)
      for (const i of items)
        bySubject.set(itemSubject(i), [...(bySubject.get(itemSubject(i)) ?? []), `${side}: ${itemKey(i)}`]);
    for (const [subject, lines] of bySubject)
      add(findings, name, {
        cls: wholeArgvClass(subject, lines.join(" | "), argv.accepted.get(name) ?? DomainDef.parse("<domain/>")),
        detail: `${subject}: ${lines.join(" | ")}`,
      });
  }
  return { check: "whole-argv", population: argv.argvs.size, findings, extra: {} };
}

// ---------------------------------------------------------------------------------------------
// 5. Silent drops: what an accepted input states that the builder neither expresses on the
//    command line nor refuses. EXPRESSED lists, from provider/qemu/argv.ts, the element and
//    attribute paths the builder reads into the command line (plus what is no command-line
//    matter: title, description, metadata, namespace declarations). Every other path present in
//    an accepted input is a silent drop, reported at its top-most unexpressed element or
//    attribute, without positions; a few are qualified by the attribute that decides how they are
//    built (`controller[@type='pci']/@model='pcie-root-port'`).

/**
 * The silent-drop walk is the provider's own table (provider/qemu/paths.ts: expressed, no QEMU
 * argument with the reason, default-valued); the builder refuses what it lists as unexpressed,
 * so every path it reports for an accepted input is a builder that forgot to call the check.
 */
function droppedPaths(def: DomainDef, out: Set<string>): void {
  for (const u of unexpressedPaths(def)) out.add(u.path);
}

/** Silent drops over the inputs the builder accepted (from {@link checkQemuArgv}). */
export function checkSilentDrops(argv: ArgvRun): CheckResult {
  const byPath = new Map<string, string[]>();
  let casesWithDrops = 0;
  for (const [name, def] of argv.accepted) {
    const out = new Set<string>();
    droppedPaths(def, out);
    if (out.size) casesWithDrops++;
    for (const p of out) byPath.set(p, [...(byPath.get(p) ?? []), name]);
  }
  const findings = new Map<string, Finding[]>();
  for (const [p, names] of byPath) {
    findings.set(p, [
      { cls: silentDropClass(p), detail: `${names.length} case(s), e.g. ${names.slice(0, 2).join(", ")}` },
    ]);
  }
  return {
    check: "silent-drop",
    population: argv.accepted.size,
    findings,
    extra: {
      "accepted cases with a drop": casesWithDrops,
      "cases per path": [...byPath.values()].reduce((n, v) => n + v.length, 0),
    },
  };
}

/** The silent-drop classes, by path; first match wins. */
const SILENT_DROP_RULES: [string, RegExp][] = [
  ["firmware", /^\/domain\/os(\/@firmware|\/(loader|nvram|firmware|bios|acpi|shim))/],
  ["direct-kernel-boot", /^\/domain\/os\/(kernel|initrd|cmdline|dtb)/],
  ["boot-options", /^\/domain\/os\/(bootmenu|boot\/)/],
  ["numa", /^\/domain\/(cpu\/numa|numatune)/],
  ["smbios-other-types", /^\/domain\/sysinfo/],
  ["vm-generation-and-confidential", /^\/domain\/(genid|launchSecurity)/],
  ["memory", /^\/domain\/(currentMemory|maxMemory|memoryBacking|memory\/)/],
  [
    "host-tuning",
    /^\/domain\/(cputune|memtune|blkiotune|iothreads|iothreadids|resource|seclabel|throttlegroups|vcpus|vcpu\/@(placement|cpuset))/,
  ],
  ["cpu-details", /^\/domain\/cpu\//],
  ["machine-features", /^\/domain\/features\//],
  ["clock", /^\/domain\/clock\//],
  ["lifecycle", /^\/domain\/(on_poweroff|on_reboot|on_crash|on_lockfailure|pm)/],
  ["qemu-namespace", /^\/domain\/(qemu:(capabilities|override|deprecation)|[A-Za-z0-9_.-]+:commandline|commandline)/],
  ["device-addresses", /^\/domain\/devices\/[^/]+\/(address|alias|acpi)$/],
  ["pci-topology", /^\/domain\/devices\/controller\[@type='pci'\]/],
  ["devices-ignored", /^\/domain\/devices\/(input|audio)/],
  ["device-details", /^\/domain\/devices\//],
];

function silentDropClass(p: string): string {
  return SILENT_DROP_RULES.find(([, r]) => r.test(p))?.[0] ?? "unclassified";
}
