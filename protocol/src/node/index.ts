// Node-only helpers of the protocol package (file system, node:crypto). The root entry point
// stays isomorphic; this one is for Node devices, the coordinator and the worker.
export { installNativeEd25519, nativeEd25519Sign, nativeEd25519Verify } from './ed25519.js';
export { writeKeyFile, readKeyFile, KeyFileSchema, KEY_FILE_MODE, type KeyFile } from './key-file.js';
export { sha256FileHex, createSha256Stream, Sha256Stream } from './sha256-file.js';
export { installNativeSha256, nativeSha256 } from './sha256.js';
