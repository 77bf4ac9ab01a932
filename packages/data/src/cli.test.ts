import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@distill/base';

const distill = (...args: string[]) =>
  spawnSync(process.execPath, ['apps/cli/bin/distill.js', ...args], { cwd: repoRoot(), encoding: 'utf8' });

describe('distill data', () => {
  it('build emoji writes JSONL + manifest (>= 1,800 emoji, 2 drawings, >= 95% with 5 captions)', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'emoji-cli-')), 'emoji');
    const r = distill('data', 'build', 'emoji', '--out', out);
    expect(r.status, r.stderr).toBe(0);
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(JSON.parse(r.stdout)).toEqual(m);
    expect(m.emoji).toBeGreaterThanOrEqual(1800);
    expect(m.drawingsPerEmoji).toBe(2);
    expect(m.fractionWithAtLeast5Captions).toBeGreaterThanOrEqual(0.95);
    expect(Object.keys(m.licences)).toEqual(['emoji-datasource-google', 'emoji-datasource-twitter', 'emojibase-data']);
    const info = distill('data', 'info', 'jsonl', '--annotations', out);
    expect(JSON.parse(info.stdout).splits.test).toEqual(m.counts.test);
  });

  it('says where a missing annotation file was expected', () => {
    const r = distill('data', 'info', 'dsmd-list', '--data-root', '/nonexistent/f30k');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/expected \/nonexistent\/f30k\/train\.json/);
  });
});
