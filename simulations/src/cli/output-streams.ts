/**
 * Once the reader of `stream` has gone (`flotilla … | head`), further writes are dropped instead
 * of raising EPIPE, an unhandled error event that would print a stack and end the process.
 */
export function dropOutputOnceReaderLeaves(stream: NodeJS.WriteStream): void {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') throw error;
    stream.write = () => true;
  });
}
