// Worker-thread entry: runs computeRound off the main event loop. Started by threadedCompute.
import { parentPort } from 'node:worker_threads';
import { FlotillaError } from '@flotilla/protocol';
import { computeRound, type ComputeRoundInput } from './compute-round.js';
import { createCryptoRng, createSeededRng } from '../privacy/index.js';

type Request = { id: number; input: Omit<ComputeRoundInput, 'rng'>; seed: string | null };

parentPort?.on('message', (request: Request) => {
  try {
    const rng = request.seed === null ? createCryptoRng() : createSeededRng(request.seed);
    const result = computeRound({ ...request.input, rng });
    parentPort?.postMessage({ id: request.id, ok: true, result });
  } catch (error) {
    const code = error instanceof FlotillaError ? error.code : 'INTERNAL';
    parentPort?.postMessage({
      id: request.id,
      ok: false,
      code,
      message: error instanceof Error ? error.message : String(error),
    });
  }
});
