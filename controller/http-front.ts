/**
 * The HTTP front door: the Open Inference Protocol (KServe v2) REST API on fastify, with Triton's
 * schedule-policy (`parameters.timeout`, µs), model-repository, statistics and binary tensor data
 * extensions, plus `/metrics`. A thin adapter: it translates HTTP to `submitLocal` and back, so
 * every request still gets exactly one answer from the planner. Bodies are checked against the
 * OIP schemas (`oip-schema.ts`); replies are serialized through them.
 *
 * Deadlines: `parameters.slo_ms` (ours), `parameters.deadline_unix_ms` (ours, wall clock), or
 * Triton's `parameters.timeout` in microseconds; the default SLO applies otherwise. Responses
 * carry `parameters.early_exit`, `exit_ramp`, `exit_confidence`, `deadline_met`.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { monotonicNowNs } from '../shared/clock.js';
import { httpStatusFor } from '../shared/error-codes.js';
import type { ResponseMsg, SubmitMsg } from '../shared/protocol.js';
import { SchemaError, validator } from '../shared/schema.js';
import { sameSecret } from '../shared/secret-compare.js';
import type { Tensor, TensorSpec } from '../shared/tensor.js';
import type { ControllerServer } from './controller-server.js';
import {
  ErrorBody,
  InferenceRequest,
  InferenceResponse,
  Liveness,
  ModelMetadata,
  ModelStatistics,
  Readiness,
  RepositoryIndex,
  ServerMetadata,
  type InferenceResponse as InferenceResponseBody,
} from './oip-schema.js';
import { HttpError, OIP_TYPES, oipValues, tensorFromOip } from './oip-tensors.js';

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
const VERSION = '0.1.0';
const checkInferenceRequest = validator(InferenceRequest);

/** Every path of a model (`/v2/models/m`, `/v2/models/m/versions/1/infer`, ...): known paths with another method are a 405. */
const MODEL_PATH = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/ready|\/infer|\/stats)?\/*$/;

interface ModelParams {
  name: string;
  version?: string;
}

export class HttpFront {
  private readonly app: FastifyInstance;
  private inFlight = 0;

  constructor(
    private readonly controller: ControllerServer,
    private readonly options: HttpFrontOptions,
  ) {
    this.app = Fastify({
      bodyLimit: options.maxBodyBytes,
      requestTimeout: 30_000,
      logger: false,
      routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true },
    });
    this.app.server.headersTimeout = 10_000;
    // Every body arrives as bytes: an infer body is a JSON header, with the binary extension followed by raw tensors.
    this.app.removeAllContentTypeParsers();
    this.app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    this.app.addHook('onRequest', (request, reply, done) => this.admit(request, reply, done));
    this.app.setErrorHandler((err, _request, reply) => this.refuse(err as Error & { statusCode?: number; code?: string }, reply));
    this.app.setNotFoundHandler((request, reply) => this.noRoute(request, reply));
    this.routes();
  }

  async start(): Promise<string> {
    await this.app.listen({ port: this.options.port, host: this.options.host });
    const address = this.app.server.address();
    const port = typeof address === 'object' && address ? address.port : this.options.port;
    return `http://${this.options.host}:${port}`;
  }

  async close(): Promise<void> {
    this.app.server.closeAllConnections();
    await this.app.close();
  }

  /** The concurrency cap (503 before the body is read), then the bearer token. */
  private admit(request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void {
    const limit = this.options.maxConcurrentRequests ?? DEFAULT_MAX_CONCURRENT_REQUESTS;
    if (this.inFlight >= limit) {
      void reply
        .code(503)
        .header('retry-after', '1')
        .send({ error: `the server is handling ${limit} requests already; retry later` });
      return;
    }
    this.inFlight++;
    // 'close' comes once the reply is sent or the connection is gone, whichever is first.
    reply.raw.once('close', () => this.inFlight--);
    const path = request.url.split('?')[0]!;
    if (this.options.token !== undefined && !path.startsWith('/v2/health/') && !this.isAdmin(request) && !sameSecret(bearerOf(request), this.options.token)) {
      void reply.header('www-authenticate', 'Bearer');
      done(new HttpError(401, 'missing or wrong bearer token'));
      return;
    }
    done();
  }

  private isAdmin(request: FastifyRequest): boolean {
    return this.options.adminToken !== undefined && sameSecret(bearerOf(request), this.options.adminToken);
  }

  private refuse(err: Error & { statusCode?: number; code?: string }, reply: FastifyReply): FastifyReply {
    if (err instanceof HttpError) return reply.code(err.status).send({ error: err.message });
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.code(413).send({ error: `request body exceeds ${this.options.maxBodyBytes} bytes` });
    // fastify's own refusals (a bad Content-Length, an aborted body, ...) are the client's: 4xx with their message.
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    return reply.code(status).send({ error: err.message });
  }

  private noRoute(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const path = request.url.split('?')[0]!;
    const m = MODEL_PATH.exec(path);
    if (m) {
      this.modelEntry(decodeURIComponent(m[1]!), m[2]);
      throw new HttpError(405, `${request.method} is not allowed on ${path.replace(/\/+$/, '')}`);
    }
    return reply.code(404).send({ error: `no route for ${request.method} ${path}` });
  }

  /** The model a path names, or a 404. */
  private modelEntry(name: string, version: string | undefined) {
    const entry = this.controller.modelEntry(name);
    if (!entry || (version !== undefined && version !== '1')) throw new HttpError(404, `unknown model '${name}'${version ? ` version ${version}` : ''}`);
    return entry;
  }

  private routes(): void {
    const app = this.app;
    const c = this.controller;
    const errors = { '4xx': ErrorBody, '5xx': ErrorBody };
    app.get('/metrics', async (_request, reply) => reply.header('content-type', this.options.metricsContentType).send(await this.options.metrics()));
    app.get('/v2/health/live', { schema: { response: { 200: Liveness } } }, () => ({ live: true }));
    app.get('/v2/health/ready', { schema: { response: { 200: Readiness, 503: Readiness } } }, (_request, reply) =>
      reply.code(c.isReady() ? 200 : 503).send({ ready: c.isReady() }),
    );
    app.get('/v2', { schema: { response: { 200: ServerMetadata } } }, () => ({
      name: 'escapement',
      version: VERSION,
      extensions: ['schedule_policy', 'model_repository', 'statistics', 'binary_tensor_data'],
    }));
    app.post('/v2/repository/index', { schema: { response: { 200: RepositoryIndex, ...errors } } }, () => c.repositoryIndex());
    app.post<{ Params: { name: string; action: string } }>('/v2/repository/models/:name/:action', (request) => {
      const { name, action } = request.params;
      if (action !== 'load' && action !== 'unload') throw new HttpError(404, `no route for POST ${request.url}`);
      if (this.options.adminLocked && this.options.adminToken === undefined)
        throw new HttpError(403, `this controller runs with --keys and no admin token, so ${action}ing models is refused: restart it with --admin-token`);
      if (this.options.adminToken !== undefined && !this.isAdmin(request))
        throw new HttpError(403, `${action}ing a model needs the controller's admin token (Authorization: Bearer <admin token>)`);
      if (!c.modelEntry(name)) throw new HttpError(404, `unknown model '${name}'`);
      if (action === 'load') c.loadModel(name);
      else c.unloadModel(name);
      return {};
    });
    for (const base of ['/v2/models/:name', '/v2/models/:name/versions/:version']) {
      app.get<{ Params: ModelParams }>(base, { schema: { response: { 200: ModelMetadata, ...errors } } }, (request) => {
        const { name, version } = request.params;
        const entry = this.modelEntry(name, version);
        const tensor = (t: TensorSpec) => ({ name: t.name, datatype: OIP_TYPES[t.dtype], shape: t.shape });
        return { name, versions: ['1'], platform: 'onnxruntime_onnx', inputs: entry.manifest.inputs.map(tensor), outputs: entry.manifest.outputs.map(tensor) };
      });
      app.get<{ Params: ModelParams }>(`${base}/ready`, { schema: { response: { 200: Readiness, 400: Readiness, ...errors } } }, (request, reply) => {
        const { name, version } = request.params;
        this.modelEntry(name, version);
        return reply.code(c.modelReady(name) ? 200 : 400).send({ name, ready: c.modelReady(name) });
      });
      app.get<{ Params: ModelParams }>(`${base}/stats`, { schema: { response: { 200: ModelStatistics, ...errors } } }, (request) => {
        const { name, version } = request.params;
        this.modelEntry(name, version);
        const s = c.modelStats(name);
        const stats = { success: { count: s.success, ns: s.successNs }, fail: { count: s.failure, ns: 0 } };
        return { model_stats: [{ name, version: '1', inference_count: s.success, inference_stats: stats, early_exit_count: s.early }] };
      });
      app.post<{ Params: ModelParams; Body: Buffer | undefined }>(
        `${base}/infer`,
        { schema: { response: { 200: InferenceResponse, ...errors } } },
        (request, reply) => this.infer(request, reply),
      );
    }
  }

  private async infer(request: FastifyRequest<{ Params: ModelParams; Body: Buffer | undefined }>, reply: FastifyReply): Promise<FastifyReply> {
    const { name: model, version } = request.params;
    this.modelEntry(model, version);
    const body = request.body ?? Buffer.alloc(0);
    // 1. the JSON header, and with the binary extension the raw tensors after it
    const headerLength = request.headers['inference-header-content-length'];
    const jsonBytes = headerLength === undefined ? body.length : Number(headerLength);
    if (!Number.isSafeInteger(jsonBytes) || jsonBytes < 0 || jsonBytes > body.length)
      throw new HttpError(400, 'Inference-Header-Content-Length does not fit the body');
    let json: unknown;
    try {
      json = JSON.parse(body.subarray(0, jsonBytes).toString('utf8'));
    } catch {
      throw new HttpError(400, 'the request body is not valid JSON');
    }
    let oip: InferenceRequest;
    try {
      oip = checkInferenceRequest(json, 'request');
    } catch (err) {
      if (err instanceof SchemaError) throw new HttpError(400, err.message);
      throw err;
    }
    let offset = jsonBytes;
    const tensors = oip.inputs.map((input) => {
      const size = input.parameters?.binary_data_size;
      if (size === undefined) return tensorFromOip(input, undefined);
      if (offset + size > body.length) throw new HttpError(400, `input '${input.name}': binary_data_size does not fit the body`);
      const binary = body.subarray(offset, offset + size);
      offset += size;
      return tensorFromOip(input, binary);
    });
    // 2. the deadline
    const params = oip.parameters ?? {};
    const id = oip.id ?? randomUUID();
    const submit: SubmitMsg = { type: 'submit', requestId: id, model, inputs: tensors.map(({ name, dtype, shape }) => ({ name, dtype, shape })) };
    if (typeof params.slo_ms === 'number') submit.sloMs = params.slo_ms;
    else if (typeof params.timeout === 'number') submit.sloMs = params.timeout / 1000;
    else if (typeof params.deadline_unix_ms === 'number') submit.deadlineNs = monotonicNowNs() + (params.deadline_unix_ms - Date.now()) * 1e6;
    else submit.sloMs = this.options.defaultSloMs;
    // 3. the one answer
    const { response, outputs } = await this.controller.submitLocal(submit, tensors, `http/${request.socket.remoteAddress ?? ''}`);
    if (response.status !== 'OK') {
      const status = response.status === 'DEADLINE_MISSED' ? 504 : httpStatusFor(response.code);
      return reply.code(status === 200 ? 500 : status).send({
        error: `${response.status}: ${response.message ?? ''}`,
        code: response.code,
        ...(response.status === 'REJECTED' ? { reason: response.message } : {}),
      });
    }
    const wantBinary = params.binary_data_output === true || (oip.outputs ?? []).some((o) => o.parameters?.binary_data === true);
    return this.reply(reply, model, id, response, outputs, wantBinary);
  }

  private reply(reply: FastifyReply, model: string, id: string, response: ResponseMsg, outputs: Tensor[], wantBinary: boolean): FastifyReply {
    const parameters: InferenceResponseBody['parameters'] = {
      early_exit: response.early === true,
      deadline_met: response.completeNs <= response.deadlineNs,
    };
    if (response.exitRamp !== undefined) parameters.exit_ramp = response.exitRamp;
    if (response.confidence !== undefined) parameters.exit_confidence = response.confidence;
    if (response.prediction !== undefined) parameters.prediction = response.prediction;
    // An early answer is the ramp's probabilities, not the model's logits: say so by name.
    const named = outputs.map((t) => (response.early ? { ...t, name: 'probabilities' } : t));
    const header: InferenceResponseBody = {
      model_name: model,
      model_version: '1',
      id,
      parameters,
      outputs: named.map((t) =>
        wantBinary
          ? { name: t.name, shape: t.shape, datatype: OIP_TYPES[t.dtype], parameters: { binary_data_size: t.data.byteLength } }
          : { name: t.name, shape: t.shape, datatype: OIP_TYPES[t.dtype], data: oipValues(t) },
      ),
    };
    if (!wantBinary) return reply.send(header);
    const json = Buffer.from(JSON.stringify(header));
    const body = Buffer.concat([json, ...named.map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))]);
    return reply.header('content-type', 'application/octet-stream').header('inference-header-content-length', json.length).send(body);
  }
}

function bearerOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization ?? '';
  return header.startsWith('Bearer ') ? header.slice(7) : undefined;
}
