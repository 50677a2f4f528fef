export * from './metrics.js';
export * from './attack-metrics.js';
export * from './csv.js';
export * from './svg-chart.js';
export * from './render.js';
export * from './write.js';
export * from './statistics.js';
