/**
 * The Open Inference Protocol (KServe v2) REST bodies this controller speaks, with Triton's
 * extensions, as TypeBox schemas: the HTTP front validates every infer request against
 * `InferenceRequest` (after splitting off binary tensor data) and fastify serializes each reply
 * through its route's response schema. See docs/http-and-metrics.md.
 */
import { Type, type Static } from '@sinclair/typebox';

const name = Type.String({ maxLength: 256 });
const parameters = Type.Record(Type.String(), Type.Unknown());

/** One input tensor: JSON `data` (nested or flat), or `parameters.binary_data_size` bytes after the JSON header. */
export const InferInputTensor = Type.Object({
  name,
  shape: Type.Array(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), { maxItems: 8 }),
  datatype: Type.String({ maxLength: 16 }),
  parameters: Type.Optional(Type.Object({ binary_data_size: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })) })),
  data: Type.Optional(Type.Array(Type.Unknown())),
});
export type InferInputTensor = Static<typeof InferInputTensor>;

export const InferenceRequest = Type.Object({
  id: Type.Optional(Type.String({ maxLength: 256 })),
  /**
   * Deadlines: `slo_ms` (ours), `deadline_unix_ms` (ours, wall clock), or Triton's `timeout` (µs).
   * `binary_data_output: true` asks for every output as binary data.
   */
  parameters: Type.Optional(parameters),
  inputs: Type.Array(InferInputTensor, { maxItems: 64 }),
  outputs: Type.Optional(
    Type.Array(Type.Object({ name, parameters: Type.Optional(Type.Object({ binary_data: Type.Optional(Type.Boolean()) })) }), { maxItems: 64 }),
  ),
});
export type InferenceRequest = Static<typeof InferenceRequest>;

const outputTensor = Type.Object({
  name,
  shape: Type.Array(Type.Integer()),
  datatype: Type.String(),
  /** JSON replies: the values, flat in row-major order. */
  data: Type.Optional(Type.Array(Type.Number())),
  /** Binary replies: the bytes of this output after the JSON header. */
  parameters: Type.Optional(Type.Object({ binary_data_size: Type.Integer() })),
});

export const InferenceResponse = Type.Object({
  model_name: name,
  model_version: Type.String(),
  id: Type.String(),
  /** Ours: `early_exit`, `exit_ramp`, `exit_confidence`, `prediction`, `deadline_met`. */
  parameters: Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()])),
  outputs: Type.Array(outputTensor),
});
export type InferenceResponse = Static<typeof InferenceResponse>;

const tensorMetadata = Type.Object({ name, datatype: Type.String(), shape: Type.Array(Type.Integer()) });

export const ModelMetadata = Type.Object({
  name,
  versions: Type.Array(Type.String()),
  platform: Type.String(),
  inputs: Type.Array(tensorMetadata),
  outputs: Type.Array(tensorMetadata),
});
export type ModelMetadata = Static<typeof ModelMetadata>;

export const ServerMetadata = Type.Object({ name: Type.String(), version: Type.String(), extensions: Type.Array(Type.String()) });
export type ServerMetadata = Static<typeof ServerMetadata>;

/** Triton's statistics extension, with our early-exit count. */
export const ModelStatistics = Type.Object({
  model_stats: Type.Array(
    Type.Object({
      name,
      version: Type.String(),
      inference_count: Type.Integer(),
      inference_stats: Type.Object({
        success: Type.Object({ count: Type.Integer(), ns: Type.Number() }),
        fail: Type.Object({ count: Type.Integer(), ns: Type.Number() }),
      }),
      early_exit_count: Type.Integer(),
    }),
  ),
});
export type ModelStatistics = Static<typeof ModelStatistics>;

/** Triton's model-repository extension: every model the controller can serve, and its state. */
export const RepositoryIndex = Type.Array(
  Type.Object({ name, version: Type.Optional(Type.String()), state: Type.String(), reason: Type.Optional(Type.String()) }),
);
export type RepositoryIndex = Static<typeof RepositoryIndex>;

/** Every refusal: a message, and with a planner refusal its stable error code and reason. */
export const ErrorBody = Type.Object({ error: Type.String(), code: Type.Optional(Type.Integer()), reason: Type.Optional(Type.String()) });
export type ErrorBody = Static<typeof ErrorBody>;

export const Readiness = Type.Object({ ready: Type.Boolean(), name: Type.Optional(name) });
export const Liveness = Type.Object({ live: Type.Boolean() });
