export * from './dataset.js';
export * from './mnist.js';
export * from './shift.js';
export * from './synthetic.js';
export * from './domains.js';
export * from './files/index.js';
export * from './task-data.js';
export * from './text-task.js';
