import { describe, expect, it } from 'vitest';
import { exitCeilings } from '../../bench/exit-ceiling.js';

describe('exitCeilings', () => {
  it('is the inverse chain cost for release, and counts where compact rows stop', () => {
    // chain 10 % dearer than whole; half the rows stop at a site 20 % deep, none monitored
    const c = exitCeilings({ wholeMs: 10, chainMs: 11, siteUpToMs: { '3': 2 }, exitFractions: { '3': 0.5 }, monitorFraction: 0 });
    expect(c.release).toBeCloseTo(10 / 11, 6);
    expect(c.compact).toBeCloseTo(10 / (0.5 * 2 * 1.1 + 0.5 * 11), 6);
  });

  it('charges the monitored exits the whole chain, and no exits mean the chain cost', () => {
    const monitored = exitCeilings({ wholeMs: 10, chainMs: 10, siteUpToMs: { '1': 1 }, exitFractions: { '1': 1 }, monitorFraction: 0.1 });
    expect(monitored.compact).toBeCloseTo(10 / (0.9 * 1 + 0.1 * 10), 6);
    const none = exitCeilings({ wholeMs: 10, chainMs: 12, siteUpToMs: {}, exitFractions: {}, monitorFraction: 0.1 });
    expect(none.compact).toBeCloseTo(10 / 12, 6);
    expect(() => exitCeilings({ wholeMs: 10, chainMs: 10, siteUpToMs: {}, exitFractions: { '9': 0.2 }, monitorFraction: 0 })).toThrow(/site 9/);
  });
});
