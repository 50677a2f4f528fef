// The drift limit as a trust region. Rejecting a candidate whose module drifted past
// `maxModuleDrift` froze runs for good: the next round starts from the same version and its
// candidate drifts past the limit again. Instead, each such module's offset from the base is
// scaled back onto the limit (a projection along the ray to the base), so the candidate that is
// evaluated and promoted always satisfies it, and training continues along the boundary.
import type { TaskDefinition } from '@flotilla/protocol';
import type { ModuleDrift, TrustRegionScaling } from '../audit/index.js';
import type { TensorMap } from '../../shared/promotion/tensor-math.js';

/**
 * Keeps scaled modules a hair inside the limit: the drift recomputed from float32 tensors must not
 * land a rounding error above it.
 */
const MARGIN = 1 - 1e-6;

/** The tensors whose scaling scales the module's change of the dense layer linearly. */
function scaledTensors(task: TaskDefinition, module: string): string[] {
  const prefix = `base_model.model.${module}`;
  switch (task.adapter.mode) {
    case 'lora':
    case 'ffa-lora':
      // ΔW = (alpha / r) · B · A is linear in B; scaling A as well would scale it quadratically.
      return [`${prefix}.lora_B.weight`];
    case 'bias':
      return [`${prefix}.bias`];
    case 'full':
      return [`${prefix}.weight`, `${prefix}.bias`];
  }
}

/**
 * Scales back every module of `adapter` whose drift (from {@link moduleDriftOf}, measured on this
 * adapter) exceeds `limit`, by limit / drift (0 over an all-zero base, where any offset drifts
 * infinitely). Returns the adapter to evaluate and promote, and what was scaled.
 */
export function applyTrustRegion(options: {
  task: TaskDefinition;
  adapter: TensorMap;
  drift: readonly ModuleDrift[];
  limit: number;
}): { adapter: TensorMap; scaled: TrustRegionScaling[] } {
  const scaled: TrustRegionScaling[] = [];
  const adapter: TensorMap = new Map(options.adapter);
  for (const d of options.drift) {
    if (d.drift <= options.limit) continue;
    const scale = Number.isFinite(d.drift) ? (options.limit / d.drift) * MARGIN : 0;
    for (const name of scaledTensors(options.task, d.module)) {
      const tensor = adapter.get(name);
      if (tensor)
        adapter.set(name, { shape: [...tensor.shape], values: tensor.values.map((v) => v * scale) });
    }
    scaled.push({ module: d.module, drift: d.drift, scale });
  }
  return { adapter, scaled };
}
