/**
 * The deep check of every protocol message: what `decodeMessage` runs before a header touches any
 * state. The schemas themselves are the messages' definitions in `protocol.ts`; this file compiles
 * one validator per message type and adds the checks a schema cannot say (lists that must have one
 * entry per row, an end after its start). A failure names the bad field (`result.timing.endNs: ...`).
 */
import { MESSAGES, type ActionResultMsg, type AnyMessage, type ExitFeedback, type ExitMsg, type TensorMetaSchema } from './protocol.js';
import type { Static } from '@sinclair/typebox';
import { fail, validator, type Validator } from './schema.js';

type TensorMetas = Static<typeof TensorMetaSchema>[];

/** Output tensors hold one row per answered request: their first dimension must say how many. */
function rowsOf(metas: TensorMetas | undefined, numRows: number, path: string): void {
  for (const [i, m] of (metas ?? []).entries()) {
    if (m.shape.length === 0 || m.shape[0] !== numRows) fail(`${path}[${i}].shape`, `first dimension ${numRows}`, m.shape[0]);
  }
}

function checkFeedback(f: ExitFeedback, path: string): void {
  const sites = f.siteIds.length;
  const rows = f.finalPredictions.length;
  for (const key of ['confidences', 'predictions'] as const) {
    const lists = f[key];
    if (lists.length !== sites) fail(`${path}.${key}`, `one list per site (${sites})`, lists);
    lists.forEach((l, i) => l.length === rows || fail(`${path}.${key}[${i}]`, `one entry per row (${rows})`, l));
  }
}

function checkResult(r: ActionResultMsg, path: string): void {
  const t = r.timing;
  if (t.startNs > 0 && t.endNs < t.startNs) fail(`${path}.timing.endNs`, `a time ≥ startNs (${t.startNs})`, t.endNs);
  if (r.feedback) checkFeedback(r.feedback, `${path}.feedback`);
  if (r.outputRows) rowsOf(r.outputs, r.outputRows.length, `${path}.outputs`);
}

function checkExit(e: ExitMsg, path: string): void {
  const rows = e.rows.length;
  if (e.confidences.length !== rows) fail(`${path}.confidences`, `one per row (${rows})`, e.confidences);
  if (e.predictions.length !== rows) fail(`${path}.predictions`, `one per row (${rows})`, e.predictions);
  rowsOf(e.outputs, rows, `${path}.outputs`);
}

const REFINEMENTS: Partial<{ [T in AnyMessage['type']]: (message: Extract<AnyMessage, { type: T }>, path: string) => void }> = {
  result: checkResult,
  exit: checkExit,
};

/** One compiled validator per message type. */
export const MESSAGE_VALIDATORS = Object.fromEntries(
  Object.entries(MESSAGES).map(([type, schema]) => [type, validator(schema, REFINEMENTS[type as AnyMessage['type']] as never)]),
) as Record<AnyMessage['type'], Validator<AnyMessage>>;
