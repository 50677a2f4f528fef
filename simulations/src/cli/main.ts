import { buildProgramFor } from './launch.js';
import { dropOutputOnceReaderLeaves } from './output-streams.js';

// `flotilla … | head`: the reader may leave early; the command then finishes without output
// rather than dying on an EPIPE stack (and without leaving a private redis-server behind).
dropOutputOnceReaderLeaves(process.stdout);
dropOutputOnceReaderLeaves(process.stderr);
const args = process.argv.slice(2);
await (await buildProgramFor(args)).parseAsync(process.argv);
