import type { Partition } from './partition.js';

/** counts[d][c]: examples of class c held by device d. */
export function labelCounts(partition: Partition, labels: ArrayLike<number>, numClasses: number): number[][] {
  return partition.map((indices) => {
    const counts = new Array<number>(numClasses).fill(0);
    for (const index of indices) {
      const label = labels[index] ?? 0;
      counts[label] = (counts[label] ?? 0) + 1;
    }
    return counts;
  });
}

/** Summary of how skewed a partition is, for reports and tests. */
export interface PartitionSummary {
  devices: number;
  /** Examples assigned in total. */
  assigned: number;
  minSize: number;
  maxSize: number;
  /** Mean over devices of the share of the device's most frequent label (1 = single-label devices). */
  meanTopLabelShare: number;
  /** Mean number of distinct labels per device. */
  meanDistinctLabels: number;
}

export function summarizePartition(
  partition: Partition,
  labels: ArrayLike<number>,
  numClasses: number,
): PartitionSummary {
  const counts = labelCounts(partition, labels, numClasses);
  const sizes = partition.map((indices) => indices.length);
  const nonEmpty = counts.filter((row) => row.some((count) => count > 0));
  const mean = (values: number[]) =>
    values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
  return {
    devices: partition.length,
    assigned: sizes.reduce((a, b) => a + b, 0),
    minSize: Math.min(...sizes),
    maxSize: Math.max(...sizes),
    meanTopLabelShare: mean(nonEmpty.map((row) => Math.max(...row) / row.reduce((a, b) => a + b, 0))),
    meanDistinctLabels: mean(nonEmpty.map((row) => row.filter((count) => count > 0).length)),
  };
}
