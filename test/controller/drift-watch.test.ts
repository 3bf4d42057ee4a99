import { describe, expect, it } from 'vitest';
import { exitShareUnder, ExitShareWatch, recentDisagreementLowerBound, type AnsweredSample } from '../../controller/drift-watch.js';
import { seededRandom } from '../../prepare/ramp-trainer.js';

describe('drift signals (drift-watch.ts)', () => {
  it('watches the exit share against its prediction: quiet while they agree, loud within a few hundred rows once they part', () => {
    const watch = new ExitShareWatch(128, 4);
    const random = seededRandom(11);
    let alarms = 0;
    for (let row = 0; row < 50_000; row++) if (watch.observe(random() < 0.3, 'a', () => ({ share: 0.3, spread: 0 }), true)) alarms++;
    expect(alarms).toBe(0);
    let rows = 0;
    while (!watch.observe(random() < 0.15, 'a', () => ({ share: 0.3, spread: 0 }), true) && rows < 5_000) rows++;
    expect(rows).toBeLessThan(300);
  });

  it('starts over under new thresholds, and says nothing unarmed or before its span is full', () => {
    const watch = new ExitShareWatch(128, 4);
    for (let row = 0; row < 1_000; row++) expect(watch.observe(true, 'a', () => ({ share: 0.1, spread: 0 }), false)).toBe(false); // unarmed
    const alarmAt = Array.from({ length: 200 }, () => watch.observe(true, 'b', () => ({ share: 0.1, spread: 0 }), true)).indexOf(true);
    expect(alarmAt).toBe(127); // a new key: the first alarm only once 128 rows were served under it
  });

  it("predicts the window's exit share under any thresholds, weighing each sample as the requests it stands for", () => {
    const samples = [
      { confidences: [0.9, 0.2], predictions: [1, 1], finalPrediction: 1, weight: 10 },
      { confidences: [0.5, 0.95], predictions: [1, 1], finalPrediction: 1 },
      { confidences: [0.1, 0.2], predictions: [1, 1], finalPrediction: 1 },
    ];
    expect(exitShareUnder(samples, [0.8, 0.9]).share).toBeCloseTo(11 / 12);
    expect(exitShareUnder(samples, [0.95, 0.99]).share).toBe(0);
    expect(exitShareUnder([], [0.5, 0.5]).share).toBe(0);
    // 102 / 144: a weight-10 sample counts far more towards the prediction's variance than its share
    expect(exitShareUnder(samples, [0.8, 0.9]).spread).toBeCloseTo(102 / 144);
  });

  it("counts the prediction's own uncertainty: a thin window's guess is not mistaken for a drift", () => {
    const random = seededRandom(12);
    const alarmsWith = (spread: number) => {
      const watch = new ExitShareWatch(128, 4);
      let alarms = 0;
      for (let row = 0; row < 5_000; row++) if (watch.observe(random() < 0.5, 'a', () => ({ share: 0.3, spread }), true)) alarms++;
      return alarms;
    };
    expect(alarmsWith(0)).toBeGreaterThan(0); // a certain prediction, 0.2 off: a drift
    expect(alarmsWith(1 / 50)).toBe(0); // the same guess from ~50 samples' worth: no evidence of one
  });

  it('bounds the recent disagreement from below, counting a weighted exit as one observation', () => {
    const sample = (answeredBy: number, agrees: boolean, weight = 1): AnsweredSample => ({
      confidences: [0.99],
      predictions: [agrees ? 1 : 2],
      finalPrediction: 1,
      weight,
      answeredBy,
    });
    const agreeing = Array.from({ length: 256 }, () => sample(0, true));
    expect(recentDisagreementLowerBound(agreeing, 256, 1.645)).toBe(0);
    expect(recentDisagreementLowerBound(agreeing.slice(0, 100), 256, 1.645)).toBe(0); // too few
    const tenPercentWrong = agreeing.map((s, i) => (i % 10 === 0 ? sample(0, false) : s));
    const bound = recentDisagreementLowerBound(tenPercentWrong, 256, 1.645);
    expect(bound).toBeGreaterThan(0.05);
    expect(bound).toBeLessThan(0.1);
    // the same rows, each an exit standing for 10 requests: the rate is the same, the evidence is not more
    const weighted = tenPercentWrong.map((s) => ({ ...s, weight: 10 }));
    expect(recentDisagreementLowerBound(weighted, 256, 1.645)).toBeCloseTo(bound);
    // only the last `segment` samples count
    expect(recentDisagreementLowerBound([...tenPercentWrong, ...agreeing], 256, 1.645)).toBe(0);
  });
});
