// The floor under the coordinator's ingest: a bare node:http + socket.io server doing only what
// any coordinator must do per update, and nothing of ours. A PUT body is received, SHA-256 hashed
// and written to a file with fsync; an `update:submit` has its ed25519 signature verified and is
// acked. Prints `FLOOR_READY <port>` once listening on 127.0.0.1.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server } from 'socket.io';
import { SIGNING_DOMAINS, verifyPayload } from '@flotilla/protocol';
import { installNativeEd25519 } from '@flotilla/protocol/node';
import { FloorSubmitSchema } from '../lib/transport-floor.js';

installNativeEd25519();
const dir = mkdtempSync(join(tmpdir(), 'flotilla-floor-'));

const http = createServer((req, res) => {
  void (async () => {
    const digest = req.url?.split('/').pop() ?? '';
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) {
      hash.update(chunk);
      chunks.push(chunk);
    }
    const ok = hash.digest('hex') === digest;
    if (ok) {
      const tmp = join(dir, `${digest}.${randomBytes(6).toString('hex')}`);
      const file = await open(tmp, 'w', 0o600);
      await file.writev(chunks);
      await file.sync();
      await file.close();
      await rename(tmp, join(dir, digest));
    }
    res.writeHead(ok ? 201 : 400, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ digest, stored: ok }));
  })();
});
const io = new Server(http, { maxHttpBufferSize: 64 * 1024, serveClient: false });
io.on('connection', (socket) => {
  socket.on('update:submit', (payload: unknown, ack: (answer: unknown) => void) => {
    const parsed = FloorSubmitSchema.safeParse(payload);
    const ok =
      parsed.success &&
      verifyPayload(
        SIGNING_DOMAINS.update,
        parsed.data.metadata,
        parsed.data.signature,
        parsed.data.publicKey,
      );
    ack(ok ? { ok: true } : { ok: false });
  });
});
http.listen(0, '127.0.0.1', () => {
  const address = http.address();
  console.log(`FLOOR_READY ${typeof address === 'object' && address ? address.port : 0}`);
});
process.once('SIGTERM', () => {
  void io.close();
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
});
