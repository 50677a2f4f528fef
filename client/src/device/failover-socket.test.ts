import { describe, expect, it } from 'vitest';
import { coordinatorUrls } from './failover-socket.js';

describe('coordinatorUrls', () => {
  it('takes one URL or several, trimmed, and refuses none or a non-http one', () => {
    expect(coordinatorUrls('http://a:1')).toEqual(['http://a:1']);
    expect(coordinatorUrls([' http://a:1 ', 'https://b'])).toEqual(['http://a:1', 'https://b']);
    expect(() => coordinatorUrls([])).toThrow('no coordinator URL given');
    expect(() => coordinatorUrls(['http://a', 'ws://b'])).toThrow(
      'coordinator URL "ws://b" is not an http(s) URL',
    );
  });
});
