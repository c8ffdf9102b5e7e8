/**
 * UUIDs exactly as libvirt handles them (`src/util/viruuid.c`).
 *
 * - {@link parseUuid} mirrors `virUUIDParse`: leading whitespace skipped, then exactly 32 hex
 *   digits as 16 pairs, any number of `-` or ` ` between pairs (or before the first, never
 *   inside a pair), then only whitespace. Whitespace is GLib's `g_ascii_isspace` set.
 * - {@link isValidUuid} mirrors `virUUIDIsValid`: a UUID whose 16 bytes are all equal is "not
 *   valid" (it parses, but libvirt treats it as unset).
 * - {@link formatUuid} mirrors `virUUIDFormat`: lowercase, dashed 8-4-4-4-12.
 *
 * Pure: no I/O (randomness comes from `node:crypto`).
 */
import { createHash, randomBytes } from "node:crypto";

/** 16 bytes of a UUID. */
export type UuidBytes = Uint8Array;

// GLib's g_ascii_isspace: space, \t, \n, \f, \r (not \v).
const SPACE = new Set([" ", "\t", "\n", "\f", "\r"]);
const HEX = /^[0-9a-fA-F]$/;

/** Parses like libvirt's `virUUIDParse`; returns undefined when libvirt would fail. */
export function parseUuid(text: string): UuidBytes | undefined {
  const out = new Uint8Array(16);
  let cur = 0;
  while (cur < text.length && SPACE.has(text.charAt(cur))) cur++;
  for (let i = 0; i < 16;) {
    if (cur >= text.length) return undefined;
    const c = text.charAt(cur);
    if (c === "-" || c === " ") {
      cur++;
      continue;
    }
    const d = text[cur + 1];
    if (!HEX.test(c) || d === undefined || !HEX.test(d)) return undefined;
    out[i++] = parseInt(c + d, 16);
    cur += 2;
  }
  for (; cur < text.length; cur++) if (!SPACE.has(text.charAt(cur))) return undefined;
  return out;
}

/** Formats like `virUUIDFormat`: lowercase `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`. */
export function formatUuid(bytes: UuidBytes): string {
  const h = Buffer.from(bytes).toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Like `virUUIDIsValid`: false when all 16 bytes are equal (all zeros, all `ff`, ...). */
export function isValidUuid(bytes: UuidBytes): boolean {
  return bytes.some((b) => b !== bytes[0]);
}

/** Parses and formats: the canonical lowercase dashed form, or undefined if libvirt would refuse it. */
export function normalizeUuid(text: string): string | undefined {
  const b = parseUuid(text);
  return b ? formatUuid(b) : undefined;
}

/** True when the text matches libvirt's RNG schema for UUIDs (used by `virsh define --validate`). */
export function matchesUuidSchema(text: string): boolean {
  return (
    /^[a-fA-F0-9]{32}$/.test(text) ||
    /^[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}$/.test(text)
  );
}

/** A random version-4 UUID, formatted. */
export function randomUuid(): string {
  const b = randomBytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return formatUuid(b);
}

/**
 * A name-based version-5 UUID (RFC 9562: SHA-1 over namespace bytes + UTF-8 name): the same
 * namespace and name always give the same UUID; used for stable derived identities.
 */
export function uuidV5(namespace: string, name: string): string {
  const ns = parseUuid(namespace);
  if (!ns) throw new TypeError(`uuidV5: namespace ${JSON.stringify(namespace)} is not a UUID`);
  const h = createHash("sha1").update(ns).update(Buffer.from(name, "utf8")).digest();
  const b = h.subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return formatUuid(b);
}

/** The RFC 9562 URL namespace, the root of this project's derived namespaces. */
export const NAMESPACE_URL = "6ba7b811-9dad-11d1-80b4-00c04fd430c8";
