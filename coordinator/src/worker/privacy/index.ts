/**
 * Differential privacy for the worker: RDP accounting of the sampled Gaussian mechanism,
 * RDP → (ε, δ) conversions, noise calibration, Gaussian noise and adaptive clipping.
 * Pure TypeScript on numbers and Float32Arrays; ε and RDP are in nats.
 */
export { logAdd, logSub, erfc, logErfc } from './log-math.js';
export { computeRdp, rdpSampledGaussian, type ComputeRdpOptions } from './rdp.js';
// The orders and the RDP → (ε, δ) conversion live in protocol, so an auditor's verifier can
// recompute ε from a round log with the same arithmetic.
export {
  DEFAULT_ORDERS,
  epsilonFromRdp,
  deltaFromRdp,
  type RdpConversion,
  type EpsilonFromRdpOptions,
  type DeltaFromRdpOptions,
  type PrivacyBound,
} from '@flotilla/protocol';
export {
  RdpAccountant,
  RdpAccountantStateSchema,
  type RdpAccountantState,
  type RdpStep,
} from './accountant.js';
export { solveNoiseMultiplier, type SolveNoiseMultiplierOptions } from './solve-noise.js';
export { createSeededRng, createCryptoRng, type RandomSource } from './random.js';
export { addGaussianNoise, noiseStdOnAverage, type NoiseStdOptions } from './noise.js';
export {
  adaptiveNoiseSplit,
  noisedUnclippedFraction,
  updateClipNorm,
  type AdaptiveNoiseSplitOptions,
  type UnclippedFractionOptions,
  type UpdateClipNormOptions,
} from './adaptive-clip.js';
