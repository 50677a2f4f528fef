import { buildProgram } from './program.js';
import { dropOutputOnceReaderLeaves } from './output.js';

// `flotilla … | head`: the reader may leave early; the command then finishes without output
// rather than dying on an EPIPE stack (and without leaving a private redis-server behind).
dropOutputOnceReaderLeaves(process.stdout);
dropOutputOnceReaderLeaves(process.stderr);
await buildProgram().parseAsync(process.argv);
