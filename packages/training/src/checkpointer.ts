import { existsSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { DistillError, type Logger } from '@distill/core';
import type { SamplerState } from '@distill/data';
import { clearRunCheckpoints, loadRunCheckpoint, saveRunCheckpoint } from './checkpoint.js';
import type { MethodState } from './methods.js';
import type { StepEngine } from './step-engine.js';

type Tensors = Record<string, { shape: number[]; data: Float32Array }>;

/** A piece of a checkpoint: named float32 tensors and JSON state fields. */
export interface Snapshot {
  tensors?: Tensors;
  state?: Record<string, unknown>;
}

/** Anything a run checkpoints: it gives its snapshot and takes one back (the whole checkpoint's, it reads its own keys). */
export interface Stateful {
  state(): Snapshot;
  load(s: Required<Snapshot>): void;
}

/**
 * A run's checkpoints over a list of parts: `save()` merges every part's snapshot into one atomic file
 * (the previous one kept), `resume()` loads the newest one that verifies into every part, in order.
 */
export class Checkpointer {
  constructor(
    private readonly dir: string,
    private readonly parts: Stateful[],
    private readonly log?: Logger,
  ) {}

  save(): void {
    const tensors: Tensors = {};
    const state: Record<string, unknown> = {};
    for (const p of this.parts) {
      const s = p.state();
      Object.assign(tensors, s.tensors);
      Object.assign(state, s.state);
    }
    saveRunCheckpoint(this.dir, { tensors, state });
  }

  /** Loads the newest good checkpoint into every part; a DistillError when the folder has none. */
  resume(): Required<Snapshot> {
    const found = loadRunCheckpoint<Record<string, unknown>>(this.dir, this.log);
    if (!found)
      throw new DistillError(
        `Cannot resume: ${this.dir} has no checkpoint (the run wrote none yet). Start it again without --resume.`,
        2,
      );
    const snap = { tensors: found.ckpt.tensors, state: found.ckpt.state };
    for (const p of this.parts) p.load(snap);
    return snap;
  }

  /** A fresh start: an earlier attempt's checkpoints must not be resumed into this run's records. */
  clear(): void {
    clearRunCheckpoints(this.dir);
  }
}

/** The step engine's weights (`student/<name>`) and AdamW moments (`adamw.m/<name>`, `adamw.v/<name>`, state `optimizer`). */
export function engineCheckpoint(engine: Pick<StepEngine, 'state' | 'load'>): Stateful {
  return {
    state() {
      const es = engine.state();
      const tensors: Tensors = {};
      for (const [k, w] of Object.entries(es.weights)) tensors[`student/${k}`] = w;
      for (const [k, w] of Object.entries(es.weights)) {
        tensors[`adamw.m/${k}`] = { shape: w.shape, data: es.optimizer.m[k] };
        tensors[`adamw.v/${k}`] = { shape: w.shape, data: es.optimizer.v[k] };
      }
      return { tensors, state: { optimizer: { step: es.optimizer.step, lrScale: es.optimizer.lrScale } } };
    },
    load({ tensors, state }) {
      const weights: Tensors = {};
      const m: Record<string, Float32Array> = {};
      const v: Record<string, Float32Array> = {};
      for (const [k, t] of Object.entries(tensors)) {
        if (k.startsWith('student/')) weights[k.slice(8)] = t;
        else if (k.startsWith('adamw.m/')) m[k.slice(8)] = t.data;
        else if (k.startsWith('adamw.v/')) v[k.slice(8)] = t.data;
      }
      engine.load({ weights, optimizer: { ...(state.optimizer as { step: number; lrScale: number }), m, v } });
    },
  };
}

/** The method's balancer state and feature queues (`queue/image`, `queue/text`, state `balancer`, `queuePtr`). */
export function methodCheckpoint(method: Pick<MethodState, 'save' | 'load'>): Stateful {
  return {
    state() {
      const s = method.save();
      return { tensors: s.tensors, state: { balancer: s.balancer, queuePtr: s.queuePtr } };
    },
    load({ tensors, state }) {
      method.load(state.balancer, tensors, state.queuePtr as number | undefined);
    },
  };
}

/** The sampler's position (state `sampler`). */
export function samplerCheckpoint(sampler: { state(): SamplerState; load(s: SamplerState): void }): Stateful {
  return {
    state: () => ({ state: { sampler: sampler.state() } }),
    load: ({ state }) => sampler.load(state.sampler as SamplerState),
  };
}

/** A plain JSON record (the loop's counters, best epoch, validation history) as a checkpoint part. */
export function jsonCheckpoint<T extends object>(
  get: () => T,
  set: (v: T) => void,
  keys: readonly (keyof T & string)[],
): Stateful {
  return {
    state: () => ({ state: Object.fromEntries(keys.map((k) => [k, get()[k]])) }),
    load: ({ state }) =>
      set({ ...get(), ...Object.fromEntries(keys.filter((k) => k in state).map((k) => [k, state[k]])) }),
  };
}

/**
 * metrics.jsonl of a run: one JSON line per step and per epoch end. On resume, lines written after the
 * checkpoint's step are dropped (the killed run got further than it saved); a fresh start empties it.
 */
export class MetricsLog {
  readonly path: string;

  constructor(dir: string) {
    this.path = join(dir, 'metrics.jsonl');
  }

  append(record: object): void {
    appendFileSync(this.path, JSON.stringify(record) + '\n');
  }

  truncateAfter(step: number): void {
    if (!existsSync(this.path)) return;
    const keep = readFileSync(this.path, 'utf8')
      .split('\n')
      .filter((l) => l && (JSON.parse(l) as { step: number }).step <= step);
    writeFileSync(this.path, keep.map((l) => l + '\n').join(''));
  }

  clear(): void {
    if (existsSync(this.path)) writeFileSync(this.path, '');
  }
}
