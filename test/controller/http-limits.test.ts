/** The HTTP front bounds what a client can make it buffer: requests beyond the cap are a 503 before their body is read. */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControllerServer } from '../../controller/controller-server.js';
import { HttpFront } from '../../controller/http-front.js';
import { loadModelEntry } from '../../shared/model-manifest.js';

describe('HTTP limits', () => {
  let server: ControllerServer;
  let front: HttpFront;
  let base: string;

  beforeAll(async () => {
    const entry = loadModelEntry('models', 'mnist-cnn');
    server = new ControllerServer({
      host: '127.0.0.1',
      workerPort: 0,
      clientPort: 0,
      models: new Map([['mnist-cnn', entry]]),
      scheduler: {},
      heartbeatIntervalMs: 200,
      heartbeatTimeoutMs: 1000,
      preloadModels: [],
      exitMode: 'off',
      adjustRamps: false,
      log: () => undefined,
    });
    front = new HttpFront(server, {
      host: '127.0.0.1',
      port: 0,
      maxBodyBytes: 1 << 20,
      defaultSloMs: 100,
      metrics: async () => '',
      metricsContentType: 'text/plain',
      maxConcurrentRequests: 1,
    });
    base = await front.start();
  });

  afterAll(async () => {
    await front?.close();
    await server?.close();
  });

  it('answers 503 with Retry-After while the concurrent-request cap is taken, and serves again after', async () => {
    // one request whose body never ends holds the only slot
    const url = new URL(`${base}/v2/models/mnist-cnn/infer`);
    const slow = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-length': '1000' } });
    slow.on('error', () => undefined);
    slow.write('{"inputs": [');
    await new Promise((r) => setTimeout(r, 100));
    const refused = await fetch(`${base}/v2/health/live`);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(((await refused.json()) as { error: string }).error).toMatch(/retry later/);
    slow.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect((await fetch(`${base}/v2/health/live`)).status).toBe(200);
  });

  it('reads a body of exactly the cap, refuses one byte more with 413, and never answers 500 at the edge', async () => {
    const bodyOf = (bytes: number) => {
      const json = '{"inputs": []}';
      return json + ' '.repeat(bytes - json.length);
    };
    const post = (body: string) => fetch(`${base}/v2/models/mnist-cnn/infer`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    const atCap = await post(bodyOf(1 << 20));
    expect(atCap.status).toBe(400); // read whole, then refused for what it says: no inputs
    expect(((await atCap.json()) as { error: string }).error).toMatch(/input/);
    const over = await post(bodyOf((1 << 20) + 1));
    expect(over.status).toBe(413);
    expect(((await over.json()) as { error: string }).error).toMatch(/exceeds 1048576 bytes/);
  });
});
