import { describe, expect, it } from 'vitest';
import { createProgress } from './progress.js';

function sink(isTTY: boolean) {
  const out: string[] = [];
  return { out, stream: { isTTY, columns: 100, write: (s: string) => (out.push(s), true) } as never };
}

describe('progress', () => {
  it('prints plain periodic lines when not on a TTY', () => {
    let t = 0;
    const s = sink(false);
    const p = createProgress({ label: 'extract', total: 100, stream: s.stream, lineIntervalMs: 1000, now: () => t });
    for (let i = 0; i < 100; i++) {
      t += 100;
      p.tick(1, 'loss=0.5');
    }
    p.done();
    expect(s.out.length).toBe(10 + 1); // one line per simulated second, plus the final line
    expect(s.out[0]).toMatch(/^extract 10\/100 \(10%\) .*loss=0\.5\n$/);
    expect(s.out.at(-1)).toMatch(/100\/100 \(100%\).* done\n$/);
    expect(s.out.join('')).not.toContain('\r');
  });

  it('redraws one bar in place on a TTY', () => {
    let t = 0;
    const s = sink(true);
    const p = createProgress({ label: 'train', total: 10, stream: s.stream, now: () => t });
    for (let i = 0; i < 10; i++) {
      t += 200;
      p.tick();
    }
    p.done();
    expect(s.out.every((l) => l.startsWith('\r') || l === '\n')).toBe(true);
    expect(s.out.join('')).toContain('█'.repeat(24));
  });
});
