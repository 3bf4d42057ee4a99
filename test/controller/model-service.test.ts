import { describe, expect, it } from 'vitest';
import { ModelService } from '../../controller/model-service.js';

describe('what the repository wants of each model (model-service.ts)', () => {
  it('takes a pinned model out of service until it is put back, and unloads it once', () => {
    const service = new ModelService();
    service.pin('a');
    service.pin('b');
    service.takeOut('a');
    expect([...service.pinned]).toEqual(['b']);
    expect(service.isOut('a')).toBe(true);
    expect(service.isUnloading('a')).toBe(true);
    expect(service.unloading()).toEqual(['a']);
    service.unloaded('a');
    expect(service.unloading()).toEqual([]);
    expect(service.isOut('a')).toBe(true); // unloaded everywhere, still refused until a load
    service.takeOut('b');
    service.putBack('b'); // a load before the unload finished: back in service, nothing to unload
    expect(service.isOut('b')).toBe(false);
    expect(service.isUnloading('b')).toBe(false);
    expect([...service.pinned]).toEqual(['b']);
  });
});
