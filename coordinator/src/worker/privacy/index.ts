/**
 * Differential privacy for the worker: RDP accounting of the sampled Gaussian mechanism,
 * RDP → (ε, δ) conversions, noise calibration, Gaussian noise and adaptive clipping.
 * Pure TypeScript on numbers and Float32Arrays; ε and RDP are in nats.
 */
export { logAdd, logSub, erfc, logErfc } from './log-math.js';
export { DEFAULT_ORDERS } from './orders.js';
export { computeRdp, rdpSampledGaussian, type ComputeRdpOptions } from './rdp.js';
export {
  epsilonFromRdp,
  deltaFromRdp,
  type RdpConversion,
  type EpsilonFromRdpOptions,
  type DeltaFromRdpOptions,
  type PrivacyBound,
} from './conversion.js';
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
