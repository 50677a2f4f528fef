import {
  runSimulation,
  type RunSimulationOptions,
  type SimulationResult,
} from '../../src/runner/run-simulation.js';
import { testRedisUrl } from '../../../test-support/redis.js';

/**
 * Runs a simulation on the suite's Redis, in two device threads and without a progress bar
 * unless `options` say otherwise.
 */
export function simulate(options: Omit<RunSimulationOptions, 'redisUrl'>): Promise<SimulationResult> {
  return runSimulation({ redisUrl: testRedisUrl(), threads: 2, progress: false, ...options });
}
