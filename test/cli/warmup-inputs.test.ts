import { describe, expect, it } from 'vitest';
import { warmupInputs } from '../../cli/replay-command.js';
import type { Tensor } from '../../shared/tensor.js';

/** A feed that records which dataset positions it was asked for. */
function recordingFeed(asked: number[]) {
  return (i: number): Tensor[] => {
    asked.push(i);
    return [];
  };
}

describe('warm-up inputs', () => {
  it('come from after the measured run, so the tuner is not measured on inputs it has seen', () => {
    const measured: number[] = [];
    const warm: number[] = [];
    const feed = recordingFeed(warm);
    const { inputsFor, note } = warmupInputs(feed, 5985, 1500, 9000);
    for (let i = 0; i < 1500; i++) inputsFor(i);
    const run = recordingFeed(measured);
    for (let i = 0; i < 5985; i++) run(i);
    expect(note).toBeUndefined();
    expect(warm.filter((i) => measured.includes(i))).toEqual([]);
    expect(warm[0]).toBe(5985);
  });

  it('says so when the dataset cannot hold both', () => {
    expect(warmupInputs(() => [], 8000, 1500, 9000).note).toMatch(/overlap the measured ones: the dataset serves 9000 inputs, warm-up and run need 9500/);
  });
});
