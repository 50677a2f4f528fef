/** Default power figure for the energy estimate, in watts (a phone SoC under sustained load). */
export const DEFAULT_DEVICE_WATTS = 5;

interface CpuUsage {
  user: number;
  system: number;
}

function readCpuMicros(): number | null {
  // Node exposes process.cpuUsage (µs); browsers do not, and then wall time stands in for it.
  const proc = (globalThis as { process?: { cpuUsage?: () => CpuUsage } }).process;
  if (!proc?.cpuUsage) return null;
  const usage = proc.cpuUsage();
  return usage.user + usage.system;
}

/**
 * Measures one stretch of work: wall time and CPU time (process CPU time in Node, wall time
 * elsewhere). Energy is CPU-seconds × watts, in joules: a coarse, comparable figure, not a meter.
 */
export function startWorkMeter(): () => { wallMs: number; cpuSeconds: number } {
  const wallStart = performance.now();
  const cpuStart = readCpuMicros();
  return () => {
    const wallMs = performance.now() - wallStart;
    const cpuEnd = readCpuMicros();
    const cpuSeconds = cpuStart !== null && cpuEnd !== null ? (cpuEnd - cpuStart) / 1e6 : wallMs / 1000;
    return { wallMs, cpuSeconds };
  };
}

export function estimateEnergyJ(cpuSeconds: number, watts: number = DEFAULT_DEVICE_WATTS): number {
  return Math.max(0, cpuSeconds * watts);
}
