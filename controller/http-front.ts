/**
 * The HTTP front door: the Open Inference Protocol (KServe v2) REST API on `node:http`, with
 * Triton's schedule-policy (`parameters.timeout`, µs), model-repository, statistics and binary
 * tensor data extensions, plus `/metrics`. A thin adapter: it translates HTTP to `submitLocal` and
 * back, so every request still gets exactly one answer from the planner.
 *
 * Deadlines: `parameters.slo_ms` (ours), `parameters.deadline_unix_ms` (ours, wall clock), or
 * Triton's `parameters.timeout` in microseconds; the default SLO applies otherwise. Responses
 * carry `parameters.early_exit`, `exit_ramp`, `exit_confidence`, `deadline_met`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { monotonicNowNs } from '../shared/clock.js';
import { sameSecret } from '../shared/secret-compare.js';
import { httpStatusFor } from '../shared/error-codes.js';
import type { ResponseMsg, SubmitMsg } from '../shared/protocol.js';
import { byteLength, type DType, type Tensor } from '../shared/tensor.js';
import type { ControllerServer } from './controller-server.js';

export interface HttpFrontOptions {
  host: string;
  port: number;
  /** Largest request body accepted (bytes). Default 16 MiB. */
  maxBodyBytes: number;
  /** SLO for requests that give no deadline (ms). Default 100. */
  defaultSloMs: number;
  /** Prometheus exposition text for `/metrics`. */
  metrics: () => Promise<string>;
  metricsContentType: string;
  /** When set, every endpoint but health needs `Authorization: Bearer <token>` (or the admin token). */
  token?: string;
  /** When set, repository load/unload need `Authorization: Bearer <admin token>`. */
  adminToken?: string;
  /** Refuse repository load/unload altogether (keys on, no admin token). */
  adminLocked?: boolean;
  /** Requests handled at once; more are answered 503 before their body is read. Default 64. */
  maxConcurrentRequests?: number;
}

/** With the 16 MiB body cap, at most ~1 GiB of request bodies is buffered at once. */
const DEFAULT_MAX_CONCURRENT_REQUESTS = 64;

const OIP_TYPES: Record<DType, string> = { float32: 'FP32', float64: 'FP64', int64: 'INT64', int32: 'INT32', uint8: 'UINT8', int8: 'INT8', bool: 'BOOL' };
const FROM_OIP: Record<string, DType> = Object.fromEntries(Object.entries(OIP_TYPES).map(([k, v]) => [v, k as DType]));
const VERSION = '0.1.0';

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new HttpError(413, `request body exceeds ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Typed values of a JSON tensor, flattened (nested or flat `data` are both accepted). */
function tensorFromJson(input: Record<string, unknown>, binary: Buffer | undefined): Tensor {
  const name = input.name;
  const datatype = input.datatype;
  const shape = input.shape;
  if (typeof name !== 'string') throw new HttpError(400, 'every input needs a "name"');
  if (typeof datatype !== 'string' || !FROM_OIP[datatype])
    throw new HttpError(400, `input '${name}': unsupported datatype ${JSON.stringify(datatype)} (use ${Object.values(OIP_TYPES).join(', ')})`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new HttpError(400, `input '${name}': "shape" must be non-negative integers`);
  const dtype = FROM_OIP[datatype]!;
  const numBytes = byteLength({ dtype, shape: shape as number[] });
  if (binary) {
    if (binary.length !== numBytes)
      throw new HttpError(400, `input '${name}': binary_data_size ${binary.length} does not match shape and datatype (${numBytes} bytes)`);
    return { name, dtype, shape: shape as number[], data: new Uint8Array(binary) };
  }
  const flat = Array.isArray(input.data) ? (input.data as unknown[]).flat(16) : undefined;
  if (!flat) throw new HttpError(400, `input '${name}': "data" must be an array`);
  const count = (shape as number[]).reduce((a, b) => a * b, 1);
  if (flat.length !== count) throw new HttpError(400, `input '${name}': ${flat.length} values for shape [${(shape as number[]).join(',')}] (${count})`);
  if (!flat.every((v) => typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))))
    throw new HttpError(400, `input '${name}': "data" must hold finite numbers (JSON numbers beyond ±1.8e308, such as 1e400, are infinite)`);
  const values = flat as number[];
  const range = INTEGER_RANGES[dtype];
  if (range && !values.every((v) => typeof v === 'boolean' || (Number.isInteger(v) && v >= range[0] && v <= range[1])))
    throw new HttpError(400, `input '${name}': ${datatype} data must be integers in [${range[0]}, ${range[1]}]`);
  const array =
    dtype === 'float32'
      ? Float32Array.from(values)
      : dtype === 'float64'
        ? Float64Array.from(values)
        : dtype === 'int32'
          ? Int32Array.from(values)
          : dtype === 'int64'
            ? BigInt64Array.from(values.map((v) => BigInt(Math.trunc(Number(v)))))
            : dtype === 'int8'
              ? Int8Array.from(values)
              : Uint8Array.from(values.map(Number));
  return { name, dtype, shape: shape as number[], data: new Uint8Array(array.buffer) };
}

/** The integers each integer dtype takes from JSON (INT64: the integers a JSON number holds exactly). */
const INTEGER_RANGES: Partial<Record<DType, [number, number]>> = {
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  int32: [-(2 ** 31), 2 ** 31 - 1],
  int8: [-128, 127],
  uint8: [0, 255],
  bool: [0, 1],
};

function jsonValues(t: Tensor): number[] {
  const b = t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength);
  switch (t.dtype) {
    case 'float32':
      return Array.from(new Float32Array(b));
    case 'float64':
      return Array.from(new Float64Array(b));
    case 'int32':
      return Array.from(new Int32Array(b));
    case 'int64':
      return Array.from(new BigInt64Array(b), Number);
    case 'int8':
      return Array.from(new Int8Array(b));
    default:
      return Array.from(new Uint8Array(b));
  }
}

export class HttpFront {
  private readonly server: Server;

  constructor(
    private readonly controller: ControllerServer,
    private readonly options: HttpFrontOptions,
  ) {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.requestTimeout = 30_000;
    this.server.headersTimeout = 10_000;
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(this.options.port, this.options.host, resolve));
    const address = this.server.address() as AddressInfo;
    return `http://${this.options.host}:${address.port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private inFlight = 0;

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const limit = this.options.maxConcurrentRequests ?? DEFAULT_MAX_CONCURRENT_REQUESTS;
    if (this.inFlight >= limit) {
      res.setHeader('retry-after', '1');
      send(res, 503, { error: `the server is handling ${limit} requests already; retry later` });
      req.resume(); // discard the body
      return;
    }
    this.inFlight++;
    try {
      await this.route(req, res);
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 500;
      if (!res.headersSent) send(res, status, { error: (err as Error).message });
      else res.end();
    } finally {
      this.inFlight--;
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname.replace(/\/+$/, '');
    const method = req.method ?? 'GET';
    const c = this.controller;
    const header = req.headers.authorization ?? '';
    const bearer = header.startsWith('Bearer ') ? header.slice(7) : undefined;
    const isAdmin = this.options.adminToken !== undefined && sameSecret(bearer, this.options.adminToken);
    if (this.options.token !== undefined && !path.startsWith('/v2/health/') && !isAdmin && !sameSecret(bearer, this.options.token)) {
      res.setHeader('www-authenticate', 'Bearer');
      throw new HttpError(401, 'missing or wrong bearer token');
    }
    if (method === 'GET' && path === '/metrics') {
      const text = await this.options.metrics();
      res.writeHead(200, { 'content-type': this.options.metricsContentType });
      res.end(text);
      return;
    }
    if (method === 'GET' && path === '/v2/health/live') return send(res, 200, { live: true });
    if (method === 'GET' && path === '/v2/health/ready') return send(res, c.isReady() ? 200 : 503, { ready: c.isReady() });
    if (method === 'GET' && path === '/v2')
      return send(res, 200, { name: 'escapement', version: VERSION, extensions: ['schedule_policy', 'model_repository', 'statistics', 'binary_tensor_data'] });
    if (method === 'POST' && path === '/v2/repository/index') return send(res, 200, c.repositoryIndex());
    let m = /^\/v2\/repository\/models\/([^/]+)\/(load|unload)$/.exec(path);
    if (method === 'POST' && m) {
      const name = decodeURIComponent(m[1]!);
      if (this.options.adminLocked && this.options.adminToken === undefined)
        throw new HttpError(403, `this controller runs with --keys and no admin token, so ${m[2]}ing models is refused: restart it with --admin-token`);
      if (this.options.adminToken !== undefined && !isAdmin)
        throw new HttpError(403, `${m[2]}ing a model needs the controller's admin token (Authorization: Bearer <admin token>)`);
      if (!c.modelEntry(name)) throw new HttpError(404, `unknown model '${name}'`);
      if (m[2] === 'load') c.loadModel(name);
      else c.unloadModel(name);
      return send(res, 200, {});
    }
    m = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/ready|\/infer|\/stats)?$/.exec(path);
    if (!m) throw new HttpError(404, `no route for ${method} ${path}`);
    const name = decodeURIComponent(m[1]!);
    const version = m[2];
    const entry = c.modelEntry(name);
    if (!entry || (version !== undefined && version !== '1')) throw new HttpError(404, `unknown model '${name}'${version ? ` version ${version}` : ''}`);
    const action = m[3] ?? '';
    if (method === 'GET' && action === '') {
      const tensor = (t: { name: string; dtype: DType; shape: number[] }) => ({ name: t.name, datatype: OIP_TYPES[t.dtype], shape: t.shape });
      return send(res, 200, {
        name,
        versions: ['1'],
        platform: 'onnxruntime_onnx',
        inputs: entry.manifest.inputs.map(tensor),
        outputs: entry.manifest.outputs.map(tensor),
      });
    }
    if (method === 'GET' && action === '/ready') return send(res, c.modelReady(name) ? 200 : 400, { name, ready: c.modelReady(name) });
    if (method === 'GET' && action === '/stats') {
      const s = c.modelStats(name);
      return send(res, 200, {
        model_stats: [
          {
            name,
            version: '1',
            inference_count: s.success,
            inference_stats: { success: { count: s.success, ns: s.successNs }, fail: { count: s.failure, ns: 0 } },
            early_exit_count: s.early,
          },
        ],
      });
    }
    if (method === 'POST' && action === '/infer') return this.infer(req, res, name);
    throw new HttpError(405, `${method} is not allowed on ${path}`);
  }

  private async infer(req: IncomingMessage, res: ServerResponse, model: string): Promise<void> {
    const body = await readBody(req, this.options.maxBodyBytes);
    // 1. the JSON header, and with the binary extension the raw tensors after it
    const headerLength = req.headers['inference-header-content-length'];
    const jsonBytes = headerLength === undefined ? body.length : Number(headerLength);
    if (!Number.isSafeInteger(jsonBytes) || jsonBytes < 0 || jsonBytes > body.length)
      throw new HttpError(400, 'Inference-Header-Content-Length does not fit the body');
    let request: Record<string, unknown>;
    try {
      request = JSON.parse(body.subarray(0, jsonBytes).toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new HttpError(400, 'the request body is not valid JSON');
    }
    if (typeof request !== 'object' || request === null || !Array.isArray(request.inputs)) throw new HttpError(400, 'the request needs an "inputs" array');
    let offset = jsonBytes;
    const tensors = (request.inputs as Record<string, unknown>[]).map((input) => {
      const size = (input.parameters as Record<string, unknown> | undefined)?.binary_data_size;
      if (size === undefined) return tensorFromJson(input, undefined);
      if (!Number.isSafeInteger(size) || (size as number) < 0 || offset + (size as number) > body.length)
        throw new HttpError(400, `input '${String(input.name)}': binary_data_size does not fit the body`);
      const binary = body.subarray(offset, offset + (size as number));
      offset += size as number;
      return tensorFromJson(input, binary);
    });
    // 2. the deadline
    const params = (request.parameters ?? {}) as Record<string, unknown>;
    const id = typeof request.id === 'string' ? request.id : randomUUID();
    const submit: SubmitMsg = { type: 'submit', requestId: id, model, inputs: tensors.map(({ name, dtype, shape }) => ({ name, dtype, shape })) };
    if (typeof params.slo_ms === 'number') submit.sloMs = params.slo_ms;
    else if (typeof params.timeout === 'number') submit.sloMs = params.timeout / 1000;
    else if (typeof params.deadline_unix_ms === 'number') submit.deadlineNs = monotonicNowNs() + (params.deadline_unix_ms - Date.now()) * 1e6;
    else submit.sloMs = this.options.defaultSloMs;
    // 3. the one answer
    const { response, outputs } = await this.controller.submitLocal(submit, tensors, `http/${req.socket.remoteAddress ?? ''}`);
    if (response.status !== 'OK') {
      const status = response.status === 'DEADLINE_MISSED' ? 504 : httpStatusFor(response.code);
      return send(res, status === 200 ? 500 : status, {
        error: `${response.status}: ${response.message ?? ''}`,
        code: response.code,
        ...(response.status === 'REJECTED' ? { reason: response.message } : {}),
      });
    }
    this.reply(res, model, id, request, response, outputs);
  }

  private reply(res: ServerResponse, model: string, id: string, request: Record<string, unknown>, response: ResponseMsg, outputs: Tensor[]): void {
    const wantBinary =
      (request.parameters as Record<string, unknown> | undefined)?.binary_data_output === true ||
      (Array.isArray(request.outputs) &&
        (request.outputs as Record<string, unknown>[]).some((o) => (o.parameters as Record<string, unknown> | undefined)?.binary_data === true));
    const parameters: Record<string, string | number | boolean> = {
      early_exit: response.early === true,
      deadline_met: response.completeNs <= response.deadlineNs,
    };
    if (response.exitRamp !== undefined) parameters.exit_ramp = response.exitRamp;
    if (response.confidence !== undefined) parameters.exit_confidence = response.confidence;
    if (response.prediction !== undefined) parameters.prediction = response.prediction;
    // An early answer is the ramp's probabilities, not the model's logits: say so by name.
    const named = outputs.map((t) => (response.early ? { ...t, name: 'probabilities' } : t));
    const header = {
      model_name: model,
      model_version: '1',
      id,
      parameters,
      outputs: named.map((t) =>
        wantBinary
          ? { name: t.name, shape: t.shape, datatype: OIP_TYPES[t.dtype], parameters: { binary_data_size: t.data.byteLength } }
          : { name: t.name, shape: t.shape, datatype: OIP_TYPES[t.dtype], data: jsonValues(t) },
      ),
    };
    if (!wantBinary) return send(res, 200, header);
    const json = Buffer.from(JSON.stringify(header));
    const body = Buffer.concat([json, ...named.map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))]);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'inference-header-content-length': json.length, 'content-length': body.length });
    res.end(body);
  }
}
