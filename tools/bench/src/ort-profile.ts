/**
 * Reads onnxruntime's profiler output (enableProfiling) and sums kernel time per op type, per step.
 * Each run of a session is one "model_run" event; each node's kernel is a "<node>_kernel_time" event.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface OrtOpStat {
  op: string;
  calls: number;
  ms: number;
}

interface OrtEvent {
  cat: string;
  name: string;
  dur: number;
  ts: number;
  args?: { op_name?: string };
}

/** Per-op totals over the runs after the first `skip` (ms and calls per run, mean of `runs`). */
export function summariseOrtProfile(dir: string, runs: number, skip: number): OrtOpStat[] {
  const file = readdirSync(dir).find((f) => f.endsWith('.json'));
  if (!file) throw new Error(`no onnxruntime profile in ${dir}`);
  const events = JSON.parse(readFileSync(join(dir, file), 'utf8')) as OrtEvent[];
  const runsEv = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((a, b) => a.ts - b.ts);
  const kept = runsEv.slice(skip, skip + runs);
  if (!kept.length) throw new Error(`profile has ${runsEv.length} runs, expected more than ${skip}`);
  const inKept = (ts: number) => kept.some((r) => ts >= r.ts && ts <= r.ts + r.dur);
  const byOp = new Map<string, OrtOpStat>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || !inKept(e.ts)) continue;
    const op = e.args?.op_name ?? '?';
    const s = byOp.get(op) ?? { op, calls: 0, ms: 0 };
    s.calls += 1 / kept.length;
    s.ms += e.dur / 1000 / kept.length;
    byOp.set(op, s);
  }
  const wall = kept.reduce((a, r) => a + r.dur / 1000, 0) / kept.length;
  const total = [...byOp.values()].reduce((a, s) => a + s.ms, 0);
  return [
    ...[...byOp.values()].sort((a, b) => b.ms - a.ms),
    { op: '(run wall time)', calls: 1, ms: wall },
    { op: '(sum of kernels)', calls: 0, ms: total },
  ];
}

export function formatOrtProfile(stats: OrtOpStat[]): string {
  const total = stats.find((s) => s.op === '(sum of kernels)')?.ms ?? 1;
  const lines = ['| op | calls/step | ms/step | share |', '|---|---:|---:|---:|'];
  for (const s of stats) {
    const share = s.op.startsWith('(') ? '' : `${((100 * s.ms) / total).toFixed(1)}%`;
    lines.push(`| ${s.op} | ${Math.round(s.calls)} | ${s.ms.toFixed(1)} | ${share} |`);
  }
  return lines.join('\n');
}
