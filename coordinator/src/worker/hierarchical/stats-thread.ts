// Worker-thread entry: both shard passes' math (shard-math.ts) off the main event loop. Started by
// the hierarchical workers (hierarchical-workers.ts).
import { installNativeSha256 } from '@flotilla/protocol/node';
import { serveThreadRequests } from '../thread-client.js';
import { shardMath } from './shard-math.js';
import { warmUpShardMath } from './shard-math-warm-up.js';

// The sum pass checks each blob's digest here: node:crypto, as in the worker's main thread.
installNativeSha256();
serveThreadRequests(shardMath);
// After the handler is in place: a request that arrives meanwhile waits for the warm-up, then runs.
// Only a speed-up: should it ever throw, the thread serves requests as it would have without it.
setImmediate(() => {
  try {
    warmUpShardMath();
  } catch {
    // Nothing to undo: the warm-up keeps no state.
  }
});
