import { describe, it, expect } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { emojiEntries, emojiStats, loadDataset, writeEmojiJsonl } from './index.js';

describe('emoji benchmark', () => {
  it('loads fast, with fixed seeded splits and >= 5 captions per emoji', async () => {
    const t0 = performance.now();
    const d = await loadDataset('emoji');
    expect(performance.now() - t0).toBeLessThan(5000);
    const s = emojiStats();
    expect(s.emoji).toBeGreaterThanOrEqual(1800);
    expect(s.splits).toEqual({ train: s.emoji - 400, val: 200, test: 200 });
    expect(s.fractionWithAtLeast5Captions).toBeGreaterThanOrEqual(0.95);
    // Default variant: both drawings in train, the google drawing in val/test.
    expect(d.splits.train.images).toHaveLength(2 * (s.emoji - 400));
    expect(d.splits.test.images).toHaveLength(200);
    expect(d.splits.test.images.every((i) => i.id.endsWith('/google') && existsSync(i.path))).toBe(true);
    const nerd = emojiEntries().find((e) => e.unified === '1F913')!;
    expect(nerd.captions[0]).toBe('nerd face');
    expect(nerd.captions).toContain('face glasses emoji: nerd face');
  });

  it('keeps both drawings of an emoji in its split; emoji-xstyle tests on the other vendor', async () => {
    const d = await loadDataset('emoji');
    const x = await loadDataset('emoji-xstyle');
    const ids = (ds: typeof d, s: string) => new Set(ds.splits[s].images.map((i) => i.id.split('/')[0]));
    const train = ids(d, 'train');
    for (const s of ['val', 'test']) for (const u of ids(d, s)) expect(train.has(u)).toBe(false);
    expect(ids(x, 'test')).toEqual(ids(d, 'test'));
    expect(x.splits.train.images.every((i) => i.id.endsWith('/google'))).toBe(true);
    expect(x.splits.test.images.every((i) => i.id.endsWith('/twitter'))).toBe(true);
    expect(x.manifestHash).not.toBe(d.manifestHash);
  });

  it('writes the JSONL form with a manifest, which the jsonl loader reads back', async () => {
    const out = mkdtempSync(join(tmpdir(), 'emoji-'));
    const m = writeEmojiJsonl(out) as { emoji: number; drawingsPerEmoji: number; licences: Record<string, string> };
    expect(m.drawingsPerEmoji).toBe(2);
    expect(m.licences['emoji-datasource-twitter']).toMatch(/CC-BY-4.0/);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(manifest.images).toEqual({ google: m.emoji, twitter: m.emoji });
    const back = await loadDataset('jsonl', { annotations: out });
    const orig = await loadDataset('emoji');
    expect(back.splits.test.captions).toEqual(orig.splits.test.captions);
    expect(existsSync(join(out, back.splits.train.images[1].path))).toBe(true);
  });
});
