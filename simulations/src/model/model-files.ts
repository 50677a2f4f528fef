import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize, sep } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { FlotillaError } from '@flotilla/protocol';
import { readJsonFile } from '../data/files/json-file.js';

// The files `model.save('file://dir')` (tfjs-node), `tensorflowjs_converter` and
// `saveModelFiles` write: model.json — the Keras topology, and a weights manifest naming shard
// files in the same directory — plus the binary shards, whose concatenation holds every weight
// in manifest order.

/** model.json of a tfjs LayersModel. */
export const ModelJsonSchema = z.object({
  format: z.string().optional(),
  generatedBy: z.string().optional(),
  convertedBy: z.string().nullable().optional(),
  modelTopology: z.record(z.string(), z.unknown()),
  weightsManifest: z.array(
    z.object({
      paths: z.array(z.string().min(1)),
      weights: z.array(
        z.object({
          name: z.string(),
          shape: z.array(z.number().int().nonnegative()),
          dtype: z.enum(['float32', 'int32', 'bool', 'string', 'complex64']),
          quantization: z.record(z.string(), z.unknown()).optional(),
        }),
      ),
    }),
  ),
  trainingConfig: z.record(z.string(), z.unknown()).nullable().optional(),
  userDefinedMetadata: z.record(z.string(), z.unknown()).optional(),
});
export type ModelJson = z.infer<typeof ModelJsonSchema>;

/** A shard path must stay in the model's directory (a manifest must not read other files). */
function shardPath(dir: string, path: string): string {
  const clean = normalize(path);
  if (isAbsolute(path) || clean === '..' || clean.startsWith(`..${sep}`))
    throw new FlotillaError('BAD_REQUEST', `model.json names a weight file outside its directory: ${path}`);
  return join(dir, clean);
}

/** An IOHandler that reads model.json and its weight shards from disk. */
export function modelFilesHandler(path: string): tf.io.IOHandler {
  return {
    load: () => {
      const parsed = ModelJsonSchema.safeParse(readJsonFile(path));
      if (!parsed.success)
        throw new FlotillaError(
          'CORRUPT_FILE',
          `${path}: not a tfjs layers model.json: ${parsed.error.issues[0]?.path.join('.') ?? ''} ${parsed.error.issues[0]?.message ?? ''}`,
        );
      const json = parsed.data;
      const dir = dirname(path);
      const shards = json.weightsManifest.flatMap((group) =>
        group.paths.map((p) => readFileSync(shardPath(dir, p))),
      );
      const weightData = new Uint8Array(shards.reduce((sum, shard) => sum + shard.byteLength, 0));
      let offset = 0;
      for (const shard of shards) {
        weightData.set(shard, offset);
        offset += shard.byteLength;
      }
      return Promise.resolve({
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest.flatMap((group) => group.weights) as tf.io.WeightsManifestEntry[],
        weightData: weightData.buffer,
        ...(json.format !== undefined ? { format: json.format } : {}),
        ...(json.generatedBy !== undefined ? { generatedBy: json.generatedBy } : {}),
        ...(json.convertedBy != null ? { convertedBy: json.convertedBy } : {}),
      });
    },
  };
}

/** Loads a tfjs LayersModel from a model.json path (`tf.loadLayersModel` on the files). */
export async function loadModelFiles(path: string): Promise<tf.LayersModel> {
  try {
    return await tf.loadLayersModel(modelFilesHandler(path));
  } catch (error) {
    if (FlotillaError.is(error)) throw error;
    throw new FlotillaError(
      'CORRUPT_FILE',
      `${path}: tfjs could not build the model: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}

/**
 * Writes `model` as `<dir>/model.json` and `<dir>/group1-shard1of1.bin`, the layout tfjs-node's
 * `file://` saver uses; returns the model.json path.
 */
export async function saveModelFiles(model: tf.LayersModel, dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'model.json');
  await model.save(
    tf.io.withSaveHandler((artifacts) => {
      const weights =
        artifacts.weightData === undefined
          ? new Uint8Array(0)
          : new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
      writeFileSync(join(dir, 'group1-shard1of1.bin'), weights);
      writeFileSync(
        path,
        JSON.stringify({
          format: 'layers-model',
          generatedBy: artifacts.generatedBy,
          convertedBy: artifacts.convertedBy ?? null,
          modelTopology: artifacts.modelTopology,
          weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: artifacts.weightSpecs ?? [] }],
        }),
      );
      return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } });
    }),
  );
  return path;
}
