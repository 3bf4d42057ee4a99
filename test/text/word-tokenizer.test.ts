import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { padTokenRows } from '../../text/token-tensors.js';
import { readTextCorpus } from '../../text/text-corpus.js';
import { buildVocabulary, CLS_ID, PAD_ID, splitWords, TokenizerError, UNK_ID, WordTokenizer } from '../../text/word-tokenizer.js';
import { sequenceBucket } from '../../shared/sequence-buckets.js';

const texts = ['Win a FREE cruise!!! Reply now.', 'Meeting notes: the build is green; ship it.', 'free free FREE money, reply now'];

function tokenizer(maxTokens = 64): WordTokenizer {
  return new WordTokenizer({ kind: 'word', maxTokens, inputNames: { ids: 'input_ids', mask: 'attention_mask' }, vocab: buildVocabulary(texts, 100, 1) });
}

describe('WordTokenizer', () => {
  it('splits lower-cased words and single punctuation marks', () => {
    expect(splitWords('Win a FREE cruise!!! Reply now.')).toEqual(['win', 'a', 'free', 'cruise', '!', '!', '!', 'reply', 'now', '.']);
    expect(splitWords('Ｃａｆé 42')).toEqual(['cafe\u0301'.normalize('NFKC'), '42']);
  });

  it('round-trips: decoding the ids gives back the words of every in-vocabulary text', () => {
    const tok = tokenizer();
    for (const text of texts) {
      const { ids, truncated } = tok.encode(text);
      expect(ids[0]).toBe(CLS_ID);
      expect(truncated).toBe(false);
      expect(ids).not.toContain(UNK_ID);
      expect(tok.decode(ids)).toBe(splitWords(text).join(' '));
    }
  });

  it('maps unknown words to [UNK] and cuts long texts at maxTokens', () => {
    const tok = tokenizer(4);
    const { ids, truncated } = tok.encode('free zebra cruise reply now');
    expect(ids).toHaveLength(4);
    expect(truncated).toBe(true);
    expect(ids[2]).toBe(UNK_ID);
    expect(tok.decode(ids)).toBe('free [UNK] cruise');
  });

  it('builds the vocabulary by frequency with specials first, the same every time', () => {
    const vocab = buildVocabulary(texts, 6, 1);
    expect(vocab.slice(0, 3)).toEqual(['[PAD]', '[UNK]', '[CLS]']);
    expect(vocab[3]).toBe('free'); // 4 occurrences
    expect(vocab).toEqual(buildVocabulary([...texts], 6, 1));
    expect(buildVocabulary(texts, 100, 2)).not.toContain('cruise'); // seen once
  });

  it('saves and loads, and rejects a malformed file with a clear error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tok-'));
    const tok = tokenizer();
    tok.save(join(dir, 'tokenizer.json'));
    expect(WordTokenizer.load(join(dir, 'tokenizer.json')).encode(texts[0]!)).toEqual(tok.encode(texts[0]!));
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ ...tok.file, vocab: ['a', ...tok.file.vocab] }));
    expect(() => WordTokenizer.load(join(dir, 'bad.json'))).toThrow(TokenizerError);
    expect(() => WordTokenizer.load(join(dir, 'missing.json'))).toThrow(/cannot read tokenizer/);
  });

  it('pads rows with [PAD] and a zero mask; picks the smallest bucket that fits', () => {
    const padded = padTokenRows([[2, 5, 6], [2]], 4);
    expect(Array.from(padded.ids, Number)).toEqual([2, 5, 6, PAD_ID, 2, PAD_ID, PAD_ID, PAD_ID]);
    expect(Array.from(padded.mask, Number)).toEqual([1, 1, 1, 0, 1, 0, 0, 0]);
    expect(() => padTokenRows([[1, 2, 3]], 2)).toThrow(RangeError);
    expect(sequenceBucket([16, 32, 64], 16)).toBe(16);
    expect(sequenceBucket([16, 32, 64], 17)).toBe(32);
    expect(sequenceBucket([16, 32, 64], 65)).toBeUndefined();
  });

  it('reads the bundled SpamAssassin corpus: labels 0/1, both present, texts non-empty', () => {
    const corpus = readTextCorpus('datasets/spam-assassin/messages.jsonl.gz');
    expect(corpus.texts.length).toBeGreaterThan(2000);
    expect(new Set(corpus.labels)).toEqual(new Set([0, 1]));
    expect(corpus.texts.every((t) => t.length > 0)).toBe(true);
  });
});
