import { existsSync, mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { atomicWriteFile, createLogger, encodeSafetensors } from '@distill/core';
import {
  CHECKPOINT_FILES,
  clearRunCheckpoints,
  hasCheckpoint,
  lastGoodCheckpoint,
  loadRunCheckpoint,
  nonFiniteLossMessage,
  readCheckpoint,
  saveRunCheckpoint,
  writeCheckpoint,
} from './checkpoint.js';

const ckpt = (step: number, w = [1, 2, 3, 4]) => ({
  tensors: { 'student/w': { shape: [2, 2], data: Float32Array.from(w) } },
  state: { step, rng: [1, 2, 3, 4] },
});
const tmp = () => mkdtempSync(join(tmpdir(), 'ckpt-'));
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
function captureLog() {
  const lines: string[] = [];
  return { lines, log: createLogger({ format: 'text', level: 'info', sink: { write: (l) => lines.push(l) } }) };
}
/** Flip one bit of a file at `offset` (negative: from the end). */
function flipBit(path: string, offset: number) {
  const b = readFileSync(path);
  b[offset < 0 ? b.length + offset : offset] ^= 0x10;
  writeFileSync(path, b);
}

describe('checkpoints', () => {
  it('round-trip tensors and JSON state in one file', () => {
    const p = join(tmp(), 'c.safetensors');
    writeCheckpoint(p, ckpt(12));
    const c = readCheckpoint<{ step: number }>(p);
    expect(c.state.step).toBe(12);
    expect(Array.from(c.tensors['student/w'].data)).toEqual([1, 2, 3, 4]);
    expect(c.tensors['student/w'].shape).toEqual([2, 2]);
  });

  it('names the file when it is missing, truncated or not a distill checkpoint', () => {
    const dir = tmp();
    const none = join(dir, 'none.safetensors');
    expect(() => readCheckpoint(none)).toThrow(new RegExp(`Checkpoint not found: ${esc(none)}$`));
    const short = join(dir, 'short');
    writeFileSync(short, Buffer.from([1, 2]));
    expect(() => readCheckpoint(short)).toThrow(new RegExp(`^${esc(short)} is truncated`));
    // a whole checkpoint cut short inside its data
    const cut = join(dir, 'cut.safetensors');
    writeCheckpoint(cut, ckpt(3));
    truncateSync(cut, readFileSync(cut).length - 5);
    expect(() => readCheckpoint(cut)).toThrow(
      new RegExp(`^${esc(cut)} is truncated \\(tensor 'student/w' ends at byte`),
    );
    // a valid safetensors file that distill did not write
    const foreign = join(dir, 'model.safetensors');
    atomicWriteFile(foreign, encodeSafetensors({ w: { shape: [1], data: Float32Array.from([1]) } }));
    expect(() => readCheckpoint(foreign)).toThrow(new RegExp(`^${esc(foreign)} is not a distill checkpoint`));
  });

  it('a flipped bit in the weights or in the state is caught by the checksum, naming the file', () => {
    const dir = tmp();
    const p = join(dir, 'c.safetensors');
    writeCheckpoint(p, ckpt(12));
    flipBit(p, -3); // inside the last float of student/w
    expect(() => readCheckpoint(p)).toThrow(new RegExp(`^${esc(p)} is corrupt: its data does not match its checksum`));
    // the state lives in the header: "step":12 -> "step":13 keeps the JSON valid
    writeCheckpoint(p, ckpt(12));
    const b = readFileSync(p);
    const at = b.indexOf('\\"step\\":12');
    expect(at).toBeGreaterThan(0);
    b[at + 10] = '3'.charCodeAt(0);
    writeFileSync(p, b);
    expect(() => readCheckpoint(p)).toThrow(/is corrupt: its data does not match its checksum/);
  });

  it('a checkpoint without a checksum (older distill) is refused as unverifiable', () => {
    const p = join(tmp(), 'old.safetensors');
    atomicWriteFile(
      p,
      encodeSafetensors(ckpt(1).tensors, { format: 'distill-checkpoint-v1', state: JSON.stringify({ step: 1 }) }),
    );
    expect(() => readCheckpoint(p)).toThrow(new RegExp(`^${esc(p)} has no checksum`));
  });
});

describe('run checkpoints: the latest and the one before it', () => {
  it('each save moves the latest to checkpoint.prev.safetensors', () => {
    const dir = tmp();
    expect(hasCheckpoint(dir)).toBe(false);
    for (const step of [3, 6, 9]) saveRunCheckpoint(dir, ckpt(step));
    expect(readCheckpoint<{ step: number }>(join(dir, CHECKPOINT_FILES.latest)).state.step).toBe(9);
    expect(readCheckpoint<{ step: number }>(join(dir, CHECKPOINT_FILES.previous)).state.step).toBe(6);
    expect(hasCheckpoint(dir)).toBe(true);
    expect(loadRunCheckpoint<{ step: number }>(dir)!.ckpt.state.step).toBe(9);
  });

  it('a corrupt latest is reported with its path, moved aside, and the previous one used; the next save keeps the good one', () => {
    const dir = tmp();
    saveRunCheckpoint(dir, ckpt(3, [1, 1, 1, 1]));
    saveRunCheckpoint(dir, ckpt(6, [2, 2, 2, 2]));
    const latest = join(dir, CHECKPOINT_FILES.latest);
    flipBit(latest, -1);
    const { lines, log } = captureLog();
    const got = loadRunCheckpoint<{ step: number }>(dir, log)!;
    expect(got.path).toBe(join(dir, CHECKPOINT_FILES.previous));
    expect(got.ckpt.state.step).toBe(3);
    expect(Array.from(got.ckpt.tensors['student/w'].data)).toEqual([1, 1, 1, 1]);
    expect(lines.join('\n')).toContain(`${latest} is corrupt`);
    expect(existsSync(latest)).toBe(false);
    expect(existsSync(join(dir, CHECKPOINT_FILES.corrupt))).toBe(true);
    // training goes on from step 3 and saves step 6 again: the previous is the good step-3 one, not the corrupt file
    saveRunCheckpoint(dir, ckpt(6, [2, 2, 2, 2]));
    expect(readCheckpoint<{ step: number }>(join(dir, CHECKPOINT_FILES.previous)).state.step).toBe(3);
  });

  it('a truncated latest falls back too; a crash between rotation and write leaves the previous one', () => {
    const dir = tmp();
    saveRunCheckpoint(dir, ckpt(3));
    saveRunCheckpoint(dir, ckpt(6));
    const latest = join(dir, CHECKPOINT_FILES.latest);
    truncateSync(latest, 100);
    expect(loadRunCheckpoint<{ step: number }>(dir)!.ckpt.state.step).toBe(3);
    const dir2 = tmp();
    writeCheckpoint(join(dir2, CHECKPOINT_FILES.previous), ckpt(4));
    const { lines, log } = captureLog();
    expect(loadRunCheckpoint<{ step: number }>(dir2, log)!.ckpt.state.step).toBe(4);
    expect(lines.join('\n')).toMatch(/checkpoint\.safetensors is missing/);
  });

  it("a run that starts over clears the earlier attempt's checkpoints, and only those", () => {
    const dir = tmp();
    saveRunCheckpoint(dir, ckpt(3));
    saveRunCheckpoint(dir, ckpt(6));
    writeFileSync(join(dir, CHECKPOINT_FILES.corrupt), 'x');
    writeFileSync(join(dir, 'metrics.jsonl'), '{}\n');
    clearRunCheckpoints(dir);
    expect(hasCheckpoint(dir)).toBe(false);
    expect(existsSync(join(dir, CHECKPOINT_FILES.corrupt))).toBe(false);
    expect(existsSync(join(dir, 'metrics.jsonl'))).toBe(true);
  });

  it('no checkpoint: undefined; none that verifies: an error naming every file', () => {
    const dir = tmp();
    expect(loadRunCheckpoint(dir)).toBeUndefined();
    saveRunCheckpoint(dir, ckpt(3));
    saveRunCheckpoint(dir, ckpt(6));
    truncateSync(join(dir, CHECKPOINT_FILES.latest), 20);
    flipBit(join(dir, CHECKPOINT_FILES.previous), -2);
    let msg = '';
    try {
      loadRunCheckpoint(dir);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain(`No usable checkpoint in ${dir}`);
    expect(msg).toContain(`${join(dir, CHECKPOINT_FILES.latest)} is truncated`);
    expect(msg).toContain(`${join(dir, CHECKPOINT_FILES.previous)} is corrupt`);
    expect(msg).toContain('without --resume');
  });
});

describe('the non-finite loss message', () => {
  const msg = (dir: string) => nonFiniteLossMessage({ loss: 'con_loss', value: NaN, step: 7, epoch: 1, runDir: dir });

  it('names the newest checkpoint that exists and verifies, with its step', () => {
    const dir = tmp();
    saveRunCheckpoint(dir, ckpt(3));
    saveRunCheckpoint(dir, ckpt(6));
    expect(msg(dir)).toMatch(
      new RegExp(
        `^Loss 'con_loss' is NaN at step 7 \\(epoch 1\\)\\. The run stopped; its last good checkpoint .* is ${esc(join(dir, CHECKPOINT_FILES.latest))} \\(step 6\\)\\.`,
      ),
    );
    flipBit(join(dir, CHECKPOINT_FILES.latest), -1);
    expect(msg(dir)).toContain(`is ${join(dir, CHECKPOINT_FILES.previous)} (step 3).`);
    expect(lastGoodCheckpoint(dir)).toEqual({ path: join(dir, CHECKPOINT_FILES.previous), step: 3 });
  });

  it('skips a checkpoint holding non-finite values, and says when there is none', () => {
    const dir = tmp();
    saveRunCheckpoint(dir, ckpt(3, [1, Infinity, 0, 0]));
    expect(lastGoodCheckpoint(dir)).toBeUndefined();
    expect(msg(dir)).toContain(`The run stopped before its first good checkpoint (none in ${dir}).`);
    expect(msg(tmp())).toMatch(/before its first good checkpoint/);
    // lists what to try, without naming a cause
    expect(msg(dir)).toMatch(/Things to try: a lower learning rate \(--lr\)/);
  });
});
