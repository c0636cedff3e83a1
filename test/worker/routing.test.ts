import { SELF } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { ORIGIN, tokenFor, upgrade } from './helpers.js';

const get = (path: string, init?: RequestInit): Promise<Response> => SELF.fetch(`${ORIGIN}${path}`, init);

function expectPageHeaders(response: Response): void {
  expect(response.headers.get('content-type')).toMatch(/^text\/html/);
  const csp = response.headers.get('content-security-policy') ?? '';
  expect(csp).toContain("default-src 'self'");
  expect(csp).toContain("script-src 'self'");
  expect(csp).toContain("connect-src 'self'");
  expect(csp).toContain("object-src 'none'");
  expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  expect(response.headers.get('referrer-policy')).toBe('no-referrer');
}

describe('HTTP routing', () => {
  it('serves the hosted viewer at /rovers/<id> with the security headers', async () => {
    const response = await get('/rovers/demo');
    expect(response.status).toBe(200);
    expectPageHeaders(response);
    const html = await response.text();
    expect(html).toMatch(/<html/i);
    expect(html).toContain('app.js');
    expect(html).not.toContain('home.js');
  });

  it('serves the same viewer for a trailing slash and ids using - and _', async () => {
    for (const path of ['/rovers/demo/', '/rovers/rover_1-a', `/rovers/${'a'.repeat(64)}`]) {
      const response = await get(path);
      expect(response.status, path).toBe(200);
      expect(await response.text(), path).toContain('app.js');
    }
  });

  it('serves the home page at /', async () => {
    const response = await get('/');
    expect(response.status).toBe(200);
    expectPageHeaders(response);
    const html = await response.text();
    expect(html).toMatch(/<html/i);
    expect(html).toContain('home.js');
  });

  it.each([
    ['uppercase', '/rovers/Demo'],
    ['too long (65 characters)', `/rovers/${'a'.repeat(65)}`],
    ['a dot', '/rovers/a.b'],
    ['bad percent-encoding', '/rovers/%ZZ'],
    ['an encoded slash', '/rovers/a%2Fb'],
    ['a leading dash', '/rovers/-demo'],
    ['a space', '/rovers/a%20b'],
  ])('refuses a rover id with %s with 400 and a clear message', async (_label, path) => {
    for (const suffix of ['', '/ws']) {
      const response = await get(path + suffix, { headers: { Upgrade: 'websocket' } });
      expect(response.status, path + suffix).toBe(400);
      expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(await response.text(), path + suffix).toMatch(/^Invalid rover id/);
    }
  });

  it.each(['/nope', '/rovers', '/rovers/', '/rovers/demo/other', '/rovers/demo/ws/extra'])(
    'answers 404 for the unknown path %s',
    async (path) => {
      const response = await get(path);
      expect(response.status).toBe(404);
      expect(await response.text()).toContain('/rovers/<roverId>');
    },
  );

  it.each(['/rovers/demo', '/'])('refuses other methods on %s with 405', async (path) => {
    const response = await get(path, { method: 'POST', body: 'x' });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD');
  });

  it('answers 426 on the signaling path without a WebSocket upgrade', async () => {
    const response = await get('/rovers/demo/ws?role=viewer&v=1');
    expect(response.status).toBe(426);
    expect(response.headers.get('upgrade')).toBe('websocket');
    expect(await response.text()).toContain('WebSocket');
  });

  it.each([
    ['no role', '?v=1'],
    ['an unknown role', '?role=admin&v=1'],
    ['an uppercase role', '?role=Rover&v=1'],
  ])('refuses an upgrade with %s with 400', async (_label, query) => {
    const response = await upgrade('demo', query);
    expect(response.status).toBe(400);
    expect(response.webSocket).toBeNull();
    expect(await response.text()).toContain('role=rover or role=viewer');
  });

  it.each([
    ['no version', '?role=viewer'],
    ['version 2', '?role=viewer&v=2'],
    ['version 0', '?role=rover&v=0'],
    ['a non-numeric version', '?role=rover&v=one'],
  ])('refuses an upgrade with %s with 400 naming the supported version', async (_label, query) => {
    const response = await upgrade('demo', query);
    expect(response.status).toBe(400);
    expect(response.webSocket).toBeNull();
    expect(await response.text()).toMatch(/Unsupported protocol version .*v=1/);
  });

  it('accepts a well-formed upgrade with 101', async () => {
    const response = await upgrade('routing-upgrade', '?role=viewer&v=1', {
      Upgrade: 'websocket',
      Authorization: `Bearer ${await tokenFor('viewer', 'routing-upgrade')}`,
    });
    expect(response.status).toBe(101);
    const socket = response.webSocket;
    expect(socket).not.toBeNull();
    socket?.accept();
    socket?.close(1000, 'done');
  });
});

describe('static assets (served by the asset router, reached here through env.ASSETS)', () => {
  it.each([
    ['/app.js', /javascript/],
    ['/home.js', /javascript/],
    ['/style.css', /text\/css/],
    ['/index.html', /text\/html/],
    ['/rover.html', /text\/html/],
  ])('has %s', async (path, contentType) => {
    const response = await env.ASSETS.fetch(`${ORIGIN}${path}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(contentType);
    expect((await response.text()).length).toBeGreaterThan(0);
  });

  it('has no asset for an unknown file', async () => {
    const response = await env.ASSETS.fetch(`${ORIGIN}/nope.js`);
    expect(response.status).toBe(404);
    await response.arrayBuffer();
  });
});
