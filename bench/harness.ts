/**
 * Benchmark helpers: repeat a measurement, report the median and the spread, and express each
 * figure as a ratio against a baseline measured in the same run (these machines are shared and
 * noisy: absolute times mean little, ratios within one run do).
 */

/** Several timings of one thing, in milliseconds. */
export interface Sample {
  readonly label: string;
  readonly ms: number[];
}

/** Median of numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Times `fn` `reps` times (after `setup` each time, untimed); returns the sample. */
export async function measure(
  label: string,
  reps: number,
  fn: (rep: number) => Promise<void>,
  setup?: (rep: number) => Promise<void>,
  teardown?: (rep: number) => Promise<void>,
): Promise<Sample> {
  const ms: number[] = [];
  for (let r = 0; r < reps; r++) {
    if (setup) await setup(r);
    const t0 = process.hrtime.bigint();
    await fn(r);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (teardown) await teardown(r);
  }
  return { label, ms };
}

/** Milliseconds with the precision the size calls for (`123`, `4.56`, `0.083`). */
function fmt(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3);
}

/** A sample's median and range, as `123 ms (110-140)`. */
export function formatMedianRange(s: Sample): string {
  return `${fmt(median(s.ms))} ms (${fmt(Math.min(...s.ms))}-${fmt(Math.max(...s.ms))})`;
}

/** `0.42x (0.38-0.47)`: the sample's median over the baseline's median, with the spread of rep-by-rep ratios. */
export function ratio(s: Sample, baseline: Sample): string {
  const base = median(baseline.ms);
  const rs = s.ms.map((x) => x / base);
  return `${(median(s.ms) / base).toFixed(2)}x (${Math.min(...rs).toFixed(2)}-${Math.max(...rs).toFixed(2)})`;
}

/** A Markdown table: label, median (spread), ratio against the baseline. */
export function table(title: string, baseline: Sample, samples: Sample[]): string {
  const rows = [baseline, ...samples].map(
    (s) => `| ${s.label} | ${formatMedianRange(s)} | ${s === baseline ? "1.00x (baseline)" : ratio(s, baseline)} |`,
  );
  return [
    `### ${title}`,
    "",
    "| what | median (min-max), ms | ratio to baseline (spread) |",
    "|---|---|---|",
    ...rows,
    "",
  ].join("\n");
}
