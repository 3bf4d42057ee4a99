/** A model instance as the planner keeps it on a worker, for unit tests that set cluster state by hand. */
import type { ModelInstance } from '../../controller/cluster-state.js';

export function loadedInstance(model: string, fields: Partial<ModelInstance> = {}): ModelInstance {
  return { model, state: 'loaded', weightsBytes: 100, lastUsedNs: 0, readyRampSets: new Set(), pendingRampSets: new Set(), served: false, ...fields };
}
