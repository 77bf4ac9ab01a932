import { describe, expect, it } from 'vitest';
import { svgBars, svgSweep, titleSize } from './plots.js';

describe('plots', () => {
  it('draw the chance level as a dashed line, and shrink a title wider than the plot instead of clipping it', () => {
    const bars = svgBars('Table 2', [{ label: 'a', mean: 80, std: 2 }], 'test RSUM', 15.9);
    expect(bars).toMatch(/<line [^>]*stroke-dasharray="4 3"\/><text [^>]*>chance 15.9<\/text>/);
    expect(svgBars('Table 2', [{ label: 'a', mean: 80, std: 2 }])).not.toContain('chance');
    expect(
      svgSweep(
        'T',
        [
          { x: 1, mean: 50, std: 1 },
          { x: 2, mean: 60, std: 1 },
        ],
        { chance: 3.2 },
      ),
    ).toContain('chance 3.2');
    const long = 'Architecture pairs (findings 1 and 2): test RSUM, mean ± std over seeds';
    expect(titleSize('Table 5', 420)).toBe(13);
    expect(titleSize(long, 420)).toBeLessThanOrEqual(9);
    expect(0.6 * titleSize(long, 420) * long.length).toBeLessThanOrEqual(420 - 16);
  });
});
