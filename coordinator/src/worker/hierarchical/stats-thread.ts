// Worker-thread entry: both shard passes' math (shard-math.ts) off the main event loop. Started by
// the hierarchical workers (hierarchical-workers.ts).
import { serveThreadRequests } from '../thread-client.js';
import { shardMath } from './shard-math.js';

serveThreadRequests(shardMath);
