/**
 * libvirt's bitmap syntax (virBitmapParse, src/util/virbitmap.c): `0-3,^2,8` is {0, 1, 3, 8}.
 * libvirt writes bitmaps back as ranges without exclusions, so two spellings of one set are
 * the same value.
 *
 * Pure: no I/O.
 */

/** Parses a bitmap (`0-3,^2,8`) to its sorted members, or undefined when it is not one. */
export function parseBitmap(s: string): number[] | undefined {
  const set = new Set<number>();
  const excl: number[] = [];
  for (const part of s.split(",").map((p) => p.trim())) {
    const m = /^(\^)?(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return undefined;
    const lo = Number(m[2]);
    const hi = m[3] !== undefined ? Number(m[3]) : lo;
    if (hi < lo || hi - lo > 1 << 16) return undefined;
    for (let i = lo; i <= hi; i++) {
      if (m[1]) excl.push(i);
      else set.add(i);
    }
  }
  for (const i of excl) set.delete(i);
  return [...set].sort((a, b) => a - b);
}

/** The canonical spelling of a bitmap (members as ranges, `0-2,5`), or undefined when `s` is none. */
export function canonicalBitmap(s: string): string | undefined {
  const members = parseBitmap(s);
  if (!members) return undefined;
  const out: string[] = [];
  for (let i = 0; i < members.length;) {
    let j = i;
    while (j + 1 < members.length && members[j + 1] === members[j]! + 1) j++;
    out.push(i === j ? `${members[i]}` : `${members[i]}-${members[j]}`);
    i = j + 1;
  }
  return out.join(",");
}
