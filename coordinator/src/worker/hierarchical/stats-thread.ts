// Worker-thread entry: both shard passes' math (shard-math.ts) off the main event loop. Started by
// the hierarchical workers (hierarchical-workers.ts).
import { installNativeSha256 } from '@flotilla/protocol/node';
import { serveThreadRequests } from '../thread-client.js';
import { shardMath } from './shard-math.js';

// The sum pass checks each blob's digest here: node:crypto, as in the worker's main thread.
installNativeSha256();
serveThreadRequests(shardMath);
