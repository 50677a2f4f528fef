import type { BundleWeightSpec } from '@flotilla/protocol';
import { FlotillaError, decodeBaseBundle, encodeBaseBundle } from '@flotilla/protocol';
import * as tf from '@tensorflow/tfjs';

/**
 * tfjs side of the `tfjs-layers-bundle` base model blob. The byte format (magic, canonical JSON
 * header, weight data) lives in protocol's `encodeBaseBundle`/`decodeBaseBundle`, so the worker
 * can read base kernels without tfjs. No timestamp or tfjs version goes into the bytes, so they
 * are a pure function of topology and weights and the blob's SHA-256 is a content address.
 */

/** Serializes a tfjs LayersModel (topology + weights) into one deterministic blob. */
export async function serializeBaseModel(model: tf.LayersModel): Promise<Uint8Array> {
  let artifacts: tf.io.ModelArtifacts | null = null;
  await model.save(
    tf.io.withSaveHandler((saved) => {
      artifacts = saved;
      return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON' } });
    }),
  );
  const captured = artifacts as tf.io.ModelArtifacts | null;
  const topology = captured?.modelTopology;
  if (topology === undefined || topology instanceof ArrayBuffer || captured?.weightSpecs === undefined) {
    throw new FlotillaError('INTERNAL', 'tfjs did not produce JSON model artifacts');
  }
  const weightData =
    captured.weightData === undefined
      ? new Uint8Array(0)
      : new Uint8Array(tf.io.CompositeArrayBuffer.join(captured.weightData));
  return encodeBaseBundle({
    modelTopology: topology,
    weightSpecs: captured.weightSpecs as BundleWeightSpec[],
    weightData,
  });
}

/** Rebuilds the model of a `tfjs-layers-bundle` blob; throws FlotillaError('CORRUPT_FILE') on any malformation. */
export async function loadBaseModel(bytes: Uint8Array): Promise<tf.LayersModel> {
  const { header, weightData } = decodeBaseBundle(bytes);
  try {
    return await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: header.modelTopology,
        weightSpecs: header.weightSpecs,
        // decodeBaseBundle returns a fresh copy, so its buffer is exactly the weight bytes.
        weightData: weightData.buffer as ArrayBuffer,
      }),
    );
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new FlotillaError('CORRUPT_FILE', `tfjs could not rebuild the model: ${reason}`, { cause: error });
  }
}
