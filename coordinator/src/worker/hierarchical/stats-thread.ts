// Worker-thread entry: a shard's screening math (shard-stats.ts) off the main event loop. Started
// by the hierarchical workers (hierarchical-workers.ts).
import { serveThreadRequests } from '../thread-client.js';
import { shardStats } from './shard-stats.js';

serveThreadRequests(shardStats);
