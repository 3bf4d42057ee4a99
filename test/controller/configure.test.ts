import { describe, expect, it } from 'vitest';
import { applyConfigure, configureRefusal, describeConfiguration, MAX_BATCH_TIMEOUT_MS } from '../../controller/configure.js';
import { ExitControl } from '../../controller/exit-control.js';
import { modelSpecFromEntry } from '../../controller/model-spec.js';
import { Scheduler } from '../../controller/scheduler.js';
import { decodeMessage, encodeMessage } from '../../shared/codec.js';
import { ErrorCode } from '../../shared/error-codes.js';
import { loadModelEntry } from '../../shared/model-manifest.js';
import type { ConfigureMsg } from '../../shared/protocol.js';

const msg = (fields: Partial<ConfigureMsg>): ConfigureMsg => ({ type: 'configure', queryId: 'q', ...fields });

describe('configure (configure.ts)', () => {
  it('refuses everyone when keys are on without an admin token, and a wrong or missing token otherwise', () => {
    expect(configureRefusal(msg({ policy: 'fifo' }), { adminLocked: true })).toMatchObject({ code: ErrorCode.ADMIN_TOKEN_REQUIRED, message: /--admin-token/ });
    expect(configureRefusal(msg({ policy: 'fifo', adminToken: 'nope' }), { adminToken: 'secret' })).toMatchObject({ code: ErrorCode.ADMIN_TOKEN_REQUIRED });
    expect(configureRefusal(msg({ policy: 'fifo' }), { adminToken: 'secret' })).toMatchObject({ code: ErrorCode.ADMIN_TOKEN_REQUIRED });
    expect(configureRefusal(msg({ policy: 'fifo', adminToken: 'secret' }), { adminToken: 'secret' })).toBeUndefined();
    expect(configureRefusal(msg({ policy: 'fifo' }), {})).toBeUndefined();
  });

  it.each([
    [{ policy: 'lifo' }, /configure\.policy: 'deadline' or 'fifo', got "lifo"/],
    [{ exitMode: 'eager' }, /configure\.exitMode: 'off', 'release' or 'compact', got "eager"/],
    [{ thresholds: 'learned' }, /configure\.thresholds: 'online' or 'static', got "learned"/],
  ])('a configure naming %j is refused by the message schema (MALFORMED_MESSAGE), before the controller sees it', (fields, message) => {
    const frames = encodeMessage(msg(fields as Partial<ConfigureMsg>)).map((f) => Buffer.from(f));
    expect(() => decodeMessage(frames)).toThrow(message);
  });

  it.each([
    [{ batchTimeoutMs: -1 }, /batchTimeoutMs must be in/],
    [{ batchTimeoutMs: MAX_BATCH_TIMEOUT_MS + 1 }, /batchTimeoutMs must be in/],
    [{ maxEnqueuedBatches: 1.5 }, /maxEnqueuedBatches must be an integer/],
    [{ tuningBudgetShare: 0 }, /tuningBudgetShare must be in \(0, 1\]/],
    [{ tuningBudgetShare: 1.5 }, /tuningBudgetShare must be in \(0, 1\]/],
  ])('refuses %j with INVALID_INPUT naming the field', (fields, message) => {
    expect(configureRefusal(msg(fields as Partial<ConfigureMsg>), {})).toMatchObject({ code: ErrorCode.INVALID_INPUT, message });
  });

  it('applies the policy, the exit mode and fixed thresholds to the planner, and says why fixed thresholds do not fit', () => {
    const entry = loadModelEntry('models', 'fmnist-resnet');
    const core = new Scheduler([modelSpecFromEntry(entry, 'off')]);
    const exits = new ExitControl(core, new Map([['fmnist-resnet', entry]]), { exitMode: 'off', thresholds: 'online', adjustRamps: true, exactBatches: true });
    expect(applyConfigure(msg({ policy: 'fifo', batchTimeoutMs: 3, maxEnqueuedBatches: 2 }), core, exits)).toEqual({});
    expect(core.config).toMatchObject({ policy: 'fifo', batchTimeoutNs: 3e6, maxEnqueuedBatches: 2 });
    const n = entry.manifest.earlyExit!.chosenRamps.length;
    const applied = applyConfigure(
      msg({ exitMode: 'compact', adjustRamps: false, fixedThresholds: { model: 'fmnist-resnet', thresholds: Array(n).fill(0.9) } }),
      core,
      exits,
    );
    expect(applied.fixed?.reason).toBe('fixed');
    expect(core.modelSpec('fmnist-resnet')!.earlyExit!.mode).toBe('compact');
    expect(core.modelSpec('fmnist-resnet')!.earlyExit!.ramps.every((r) => r.threshold === 0.9)).toBe(true);
    expect(exits.adjustRamps).toBe(false);
    expect(applyConfigure(msg({ fixedThresholds: { model: 'fmnist-resnet', thresholds: [0.9] } }), core, exits).refusal).toMatch(/active ramps, not 1/);
    // a budget share starts the models over (the fixed thresholds go) with a tuner that spends that share
    expect(configureRefusal(msg({ tuningBudgetShare: 0.5 }), {})).toBeUndefined();
    expect(applyConfigure(msg({ tuningBudgetShare: 0.5 }), core, exits)).toEqual({});
    expect(core.modelSpec('fmnist-resnet')!.earlyExit!.ramps.map((r) => r.threshold)).toEqual(
      entry.manifest.earlyExit!.chosenRamps.map((site) => entry.manifest.earlyExit!.initialThresholds[String(site)]),
    );
  });

  it('describes an applied configure in one log line: the policy in force and what the message changed', () => {
    const config = { policy: 'fifo' as const, batchTimeoutNs: 2.5e6, maxEnqueuedBatches: 4 };
    expect(describeConfiguration(msg({ policy: 'fifo' }), config)).toBe('policy fifo, batch timeout 2.5 ms, fifo queue bound 4 batches');
    expect(describeConfiguration(msg({ exitMode: 'compact', adjustRamps: false, fixedThresholds: { model: 'm', thresholds: [0.9, 1.5] } }), config)).toBe(
      'policy fifo, batch timeout 2.5 ms, fifo queue bound 4 batches, exit mode compact, ramp adjustment off, m thresholds fixed at [0.900 off]',
    );
    expect(describeConfiguration(msg({ tuningBudgetShare: 0.5 }), config)).toBe(
      'policy fifo, batch timeout 2.5 ms, fifo queue bound 4 batches, tuner spends 50 % of the accuracy budget',
    );
  });
});
