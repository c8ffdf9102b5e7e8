/**
 * Scaled sizes as libvirt reads them (`virScaleInteger`): a decimal integer and a unit.
 * Memory values are normalized to KiB, rounding up as libvirt does.
 *
 * Pure: no I/O.
 */
import { DomainXmlError } from "./errors";

const UNIT_BYTES: Record<string, bigint> = (() => {
  const m: Record<string, bigint> = { b: 1n, bytes: 1n };
  const names = ["k", "m", "g", "t", "p", "e"];
  names.forEach((n, i) => {
    const pow = BigInt(i + 1);
    m[n] = 1024n ** pow;
    m[`${n}ib`] = 1024n ** pow;
    m[`${n}b`] = 1000n ** pow;
  });
  return m;
})();

/** The units libvirt accepts for a scaled integer (case-insensitive). */
export const SCALED_UNITS = Object.keys(UNIT_BYTES);

/**
 * Converts a value with a unit (default `KiB`, libvirt's default for memory) to KiB, rounding
 * up. Throws a {@link DomainXmlError} naming `path` for a non-decimal value or unknown unit.
 */
export function toKiB(value: string, unit: string | undefined, path: string): bigint {
  const v = value.trim();
  if (!/^[0-9]+$/.test(v)) {
    throw new DomainXmlError("invalid size value", {
      path,
      value,
      allowed: "a non-negative decimal integer, with the unit in the unit attribute",
      fix: "write e.g. <memory unit='MiB'>512</memory>",
    });
  }
  const u = (unit ?? "KiB").toLowerCase();
  const scale = UNIT_BYTES[u];
  if (scale === undefined) {
    throw new DomainXmlError("unknown unit", {
      path: `${path}/@unit`,
      value: unit,
      allowed:
        "b, bytes, KiB, MiB, GiB, TiB, PiB, EiB (powers of 1024), KB, MB, GB, TB, PB, EB (powers of 1000), k, m, g, t, p, e",
      fix: "use MiB or GiB",
    });
  }
  const bytes = BigInt(v) * scale;
  return (bytes + 1023n) / 1024n;
}

/**
 * Converts a scaled integer (libvirt's `virScaleInteger`) to bytes: `value` in `unit`, or in
 * `defaultUnit` when the unit is absent. Returns undefined for a non-decimal value or an unknown
 * unit (the caller compares such values as text).
 */
export function scaledBytes(value: string, unit: string | undefined, defaultUnit: string): bigint | undefined {
  const v = value.trim();
  if (!/^[0-9]+$/.test(v)) return undefined;
  const scale = UNIT_BYTES[(unit ?? defaultUnit).trim().toLowerCase()];
  return scale === undefined ? undefined : BigInt(v) * scale;
}
