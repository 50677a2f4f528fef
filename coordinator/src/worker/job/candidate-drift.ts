import { bundleFloat32Weights, type TaskDefinition } from '@flotilla/protocol';
import type { BlobStore } from '../../shared/blob-store/index.js';
import { biasModuleDrift, fullModuleDrift, loraModuleDrift, type ModuleDrift } from '../audit/index.js';
import type { TensorMap } from '../../shared/promotion/tensor-math.js';

/**
 * Per-module drift of a candidate adapter from the frozen base: ‖(alpha/r)·B·A‖_F / ‖W‖_F for
 * LoRA, ‖Δb‖ / ‖b‖ for bias offsets, ‖ΔW‖_F / ‖W‖_F for full mode's kernel offset. Base weights come from the task's base bundle (tfjs names
 * `<module>/kernel` and `<module>/bias`); an unreadable bundle yields no drift figures.
 */
export async function moduleDriftOf(
  blobs: BlobStore,
  task: TaskDefinition,
  adapter: TensorMap,
): Promise<ModuleDrift[]> {
  const bytes = await blobs.get(task.baseModel.digest);
  if (!bytes) return [];
  let weights;
  try {
    weights = bundleFloat32Weights(bytes);
  } catch {
    return [];
  }
  const drift: ModuleDrift[] = [];
  for (const module of task.adapter.targetModules) {
    const prefix = `base_model.model.${module}`;
    if (task.adapter.mode === 'bias') {
      const offset = adapter.get(`${prefix}.bias`);
      const base = weights.get(`${module}/bias`);
      if (offset && base) drift.push(biasModuleDrift({ module, delta: offset.values, base: base.values }));
      continue;
    }
    if (task.adapter.mode === 'full') {
      const offset = adapter.get(`${prefix}.weight`);
      const kernel = weights.get(`${module}/kernel`);
      if (offset && kernel)
        drift.push(fullModuleDrift({ module, delta: offset.values, base: kernel.values }));
      continue;
    }
    const a = adapter.get(`${prefix}.lora_A.weight`);
    const b = adapter.get(`${prefix}.lora_B.weight`);
    const kernel = weights.get(`${module}/kernel`);
    if (!a || !b || !kernel) continue;
    drift.push(
      loraModuleDrift({
        module,
        a: a.values,
        aShape: a.shape,
        b: b.values,
        bShape: b.shape,
        alpha: task.adapter.alpha,
        base: kernel.values,
      }),
    );
  }
  return drift;
}
