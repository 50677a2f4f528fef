// Node-only helpers of the protocol package (file system, node:crypto). The root entry point
// stays isomorphic; this one is for Node devices, the coordinator and the worker.
export {};
