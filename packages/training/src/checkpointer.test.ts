import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from './checkpoint.js';
import {
  Checkpointer,
  engineCheckpoint,
  jsonCheckpoint,
  methodCheckpoint,
  MetricsLog,
  samplerCheckpoint,
} from './checkpointer.js';
import type { EngineState } from './step-engine.js';

const tmp = mkdtempSync(join(tmpdir(), 'distill-checkpointer-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Stand-ins with the state()/load() shapes of the step engine, a method and a sampler. */
function parts(seed: number) {
  let es: EngineState = {
    weights: { w: { shape: [2], data: Float32Array.of(seed, seed + 1) } },
    optimizer: { step: seed, lrScale: 0.5, m: { w: Float32Array.of(0.1, 0.2) }, v: { w: Float32Array.of(0.3, 0.4) } },
  };
  const engine = { state: () => es, load: (s: EngineState) => void (es = s) };
  let method: { balancer: unknown; queuePtr: number; queue: Float32Array } = {
    balancer: { prev: seed },
    queuePtr: 3,
    queue: Float32Array.of(seed, 9),
  };
  const methodState = {
    save: () => ({
      balancer: method.balancer,
      queuePtr: method.queuePtr,
      tensors: { 'queue/image': { shape: [1, 2], data: method.queue } },
    }),
    load: (b: unknown, t: Record<string, { data: Float32Array }>, ptr?: number) =>
      void (method = { balancer: b, queuePtr: ptr ?? 0, queue: t['queue/image'].data }),
  };
  let sampler = { epoch: seed, cursor: 1 };
  const samp = { state: () => sampler, load: (s: typeof sampler) => void (sampler = s) };
  let loop = { step: seed * 10, label: 'student' };
  return {
    engine,
    methodState,
    samp,
    get es() {
      return es;
    },
    get method() {
      return method;
    },
    get sampler() {
      return sampler;
    },
    get loop() {
      return loop;
    },
    loopPart: jsonCheckpoint(
      () => loop,
      (v) => (loop = v),
      ['step'],
    ),
  };
}

describe('Checkpointer', () => {
  it("saves every part into one verified file with the trainer's keys, and resume() loads each part back", () => {
    const dir = join(tmp, 'run');
    const a = parts(1);
    new Checkpointer(dir, [
      engineCheckpoint(a.engine),
      methodCheckpoint(a.methodState),
      samplerCheckpoint(a.samp),
      a.loopPart,
    ]).save();
    const ck = readCheckpoint<Record<string, unknown>>(join(dir, 'checkpoint.safetensors'));
    expect(Object.keys(ck.tensors).sort()).toEqual(['adamw.m/w', 'adamw.v/w', 'queue/image', 'student/w']);
    expect(ck.state).toEqual({
      optimizer: { step: 1, lrScale: 0.5 },
      balancer: { prev: 1 },
      queuePtr: 3,
      sampler: { epoch: 1, cursor: 1 },
      step: 10,
    });

    const b = parts(7);
    new Checkpointer(dir, [
      engineCheckpoint(b.engine),
      methodCheckpoint(b.methodState),
      samplerCheckpoint(b.samp),
      b.loopPart,
    ]).resume();
    expect(Array.from(b.es.weights.w.data)).toEqual([1, 2]);
    expect(b.es.optimizer.step).toBe(1);
    expect(Array.from(b.es.optimizer.v.w)).toEqual([Math.fround(0.3), Math.fround(0.4)]);
    expect(b.method.balancer).toEqual({ prev: 1 });
    expect(Array.from(b.method.queue)).toEqual([1, 9]);
    expect(b.sampler).toEqual({ epoch: 1, cursor: 1 });
    expect(b.loop).toEqual({ step: 10, label: 'student' }); // keys it does not own are kept
  });

  it('resume() in a folder without a checkpoint says to start again; clear() removes the checkpoints', () => {
    const dir = join(tmp, 'empty');
    const c = new Checkpointer(dir, []);
    expect(() => c.resume()).toThrow(
      /^Cannot resume: .*empty has no checkpoint \(the run wrote none yet\)\. Start it again without --resume\.$/,
    );
    const d = join(tmp, 'cleared');
    const p = parts(2);
    const ck = new Checkpointer(d, [p.loopPart]);
    ck.save();
    ck.save();
    ck.clear();
    expect(() => ck.resume()).toThrow(/has no checkpoint/);
  });
});

describe('MetricsLog', () => {
  it('appends JSON lines; truncateAfter(step) drops what a killed run wrote after its checkpoint', () => {
    const m = new MetricsLog(join(tmp));
    m.clear();
    for (let s = 1; s <= 4; s++) m.append({ step: s, loss: s / 10 });
    m.append({ step: 4, epochEnd: 1 });
    m.truncateAfter(2);
    expect(readFileSync(m.path, 'utf8')).toBe('{"step":1,"loss":0.1}\n{"step":2,"loss":0.2}\n');
    writeFileSync(m.path, 'x');
    m.clear();
    expect(readFileSync(m.path, 'utf8')).toBe('');
  });
});
