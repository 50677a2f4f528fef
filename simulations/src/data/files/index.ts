// Loaders for data on disk: LEAF JSON (natural per-user splits), CSV and NPY tables, PNG image
// folders. Each returns a LabeledData: features, class labels, example shape and users if known.
export * from './labeled.js';
export * from './npy.js';
export * from './npy-dataset.js';
export * from './csv.js';
export * from './leaf.js';
export * from './png.js';
export * from './image-folder.js';
