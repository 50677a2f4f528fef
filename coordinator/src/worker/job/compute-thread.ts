// Worker-thread entry: runs computeRound off the main event loop. Started by ThreadedCompute.
import { computeRound, type ComputeRoundInput } from './compute-round.js';
import { createCryptoRng, createSeededRng } from '../privacy/index.js';
import { serveThreadRequests } from '../thread-client.js';

serveThreadRequests((request: { input: Omit<ComputeRoundInput, 'rng'>; seed: string | null }) =>
  computeRound({
    ...request.input,
    rng: request.seed === null ? createCryptoRng() : createSeededRng(request.seed),
  }),
);
