import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A loopback TCP proxy standing in for a load balancer in front of several coordinators:
 * `down()` drops every connection and refuses new ones (a network cut), `route(port)` sends the
 * next connections to another backend.
 */
export interface SwitchProxy {
  url: string;
  route(port: number): void;
  down(): void;
  close(): Promise<void>;
}

export async function startSwitchProxy(initialPort: number): Promise<SwitchProxy> {
  let target: number | null = initialPort;
  const open = new Set<Socket>();
  const track = (socket: Socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const server: Server = createServer((client) => {
    track(client);
    if (target === null) {
      client.destroy();
      return;
    }
    const upstream = connect(target, '127.0.0.1');
    track(upstream);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');
  const dropAll = () => {
    for (const socket of open) socket.destroy();
  };
  return {
    url: `http://127.0.0.1:${address.port}`,
    route(port) {
      target = port;
    },
    down() {
      target = null;
      dropAll();
    },
    async close() {
      dropAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
