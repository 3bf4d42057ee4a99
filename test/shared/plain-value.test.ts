/**
 * plainValue: only what JSON could say passes, an error names where the offending value sits,
 * and (for other encoders' nil) null fields of maps can be dropped on the way.
 */
import { describe, expect, it } from 'vitest';
import { plainValue, SchemaError } from '../../shared/schema.js';

describe('plainValue', () => {
  it('accepts maps, arrays, strings, numbers (NaN too), booleans and null', () => {
    expect(() => plainValue({ a: [1, NaN, 'x', true, null, { b: [[2]] }] }, 'header')).not.toThrow();
  });

  it.each([
    ['a Date in an array of maps', { inputs: [{ name: 'x' }, { shape: [1, new Date(0)] }] }, 'header.inputs[1].shape[1]: expected plain msgpack', 'Date'],
    ['a typed array field', { confidences: [new Float32Array(2)] }, 'header.confidences[0]: expected plain msgpack', 'Float32Array'],
    ['a Map at the top', new Map(), 'header: expected plain msgpack', 'Map'],
  ])('refuses %s, naming its path', (_name, value, where, what) => {
    expect(() => plainValue(value, 'header')).toThrow(SchemaError);
    expect(() => plainValue(value, 'header')).toThrow(where);
    expect(() => plainValue(value, 'header')).toThrow(what);
  });

  it('names where nesting runs too deep', () => {
    expect(() => plainValue({ a: { b: { c: {} } } }, 'header', 3)).toThrow('header.a.b.c: expected less nesting');
    expect(() => plainValue({ a: { b: { c: 1 } } }, 'header', 3)).not.toThrow();
  });

  it("drops a map's null fields when asked, and keeps nulls in arrays", () => {
    const value: Record<string, unknown> = { a: null, b: [null, 1], c: { d: null, e: 2 } };
    plainValue(value, 'header', 8, true);
    expect(value).toEqual({ b: [null, 1], c: { e: 2 } });
    const kept: Record<string, unknown> = { a: null };
    plainValue(kept, 'header');
    expect(kept).toEqual({ a: null });
  });
});
