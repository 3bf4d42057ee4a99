/**
 * The text models' tokenizer: lower-cased words and single punctuation marks mapped to ids of a
 * fixed vocabulary, with a [CLS] token first (the ramp heads and the classifier read it).
 *
 * Deliberately simple, so it can be read in a minute and re-implemented anywhere: no sub-words,
 * no merges. A word outside the vocabulary becomes [UNK]. The same file (tokenizer.json) is used
 * to make the training data, by `escapement prepare`, and by clients, so the ids always agree.
 *
 * Output per text: `input_ids` and `attention_mask` (1 for real tokens), int64, of the text's own
 * length (at most `maxTokens`); padding to a batch's length happens in the serving path.
 */
import { CodedError, ErrorCode } from '../shared/error-codes.js';
import { readFileSync, writeFileSync } from 'node:fs';

export const PAD_ID = 0;
export const UNK_ID = 1;
export const CLS_ID = 2;
const SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]'];

/** Words (letters and digits) or single marks that are neither space nor word characters. */
const TOKEN_PATTERN = /[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu;

export interface TokenizerFile {
  kind: 'word';
  /** Longest token sequence, [CLS] included; longer texts are cut. */
  maxTokens: number;
  /** The model inputs the tokenizer fills. */
  inputNames: { ids: string; mask: string };
  vocab: string[];
}

export interface Encoded {
  ids: number[];
  /** True when the text had more tokens than fit. */
  truncated: boolean;
}

export class TokenizerError extends CodedError {
  override readonly name = 'TokenizerError';
  readonly code = ErrorCode.TOKENIZER_INVALID;
}

export function isTokenizerError(err: unknown): err is TokenizerError {
  return err instanceof TokenizerError;
}

/** The words of a text as the tokenizer sees them (lower-cased, NFKC-normalised). */
export function splitWords(text: string): string[] {
  return text.normalize('NFKC').toLowerCase().match(TOKEN_PATTERN) ?? [];
}

export class WordTokenizer {
  private readonly idOf: Map<string, number>;

  constructor(readonly file: TokenizerFile) {
    if (file.kind !== 'word') throw new TokenizerError(`unknown tokenizer kind '${String(file.kind)}'`);
    if (!Number.isInteger(file.maxTokens) || file.maxTokens < 2) throw new TokenizerError(`maxTokens must be an integer >= 2, got ${file.maxTokens}`);
    SPECIAL_TOKENS.forEach((token, id) => {
      if (file.vocab[id] !== token) throw new TokenizerError(`vocabulary entry ${id} must be ${token}, got ${JSON.stringify(file.vocab[id])}`);
    });
    this.idOf = new Map(file.vocab.map((token, id) => [token, id]));
    if (this.idOf.size !== file.vocab.length) throw new TokenizerError('the vocabulary has duplicate entries');
  }

  static load(path: string): WordTokenizer {
    let parsed: TokenizerFile;
    try {
      parsed = JSON.parse(readFileSync(path, 'utf8')) as TokenizerFile;
    } catch (err) {
      throw new TokenizerError(`cannot read tokenizer ${path}: ${(err as Error).message}`);
    }
    return new WordTokenizer(parsed);
  }

  save(path: string): void {
    writeFileSync(path, `${JSON.stringify(this.file)}\n`);
  }

  get vocabSize(): number {
    return this.file.vocab.length;
  }

  get maxTokens(): number {
    return this.file.maxTokens;
  }

  encode(text: string, maxTokens = this.file.maxTokens): Encoded {
    const words = splitWords(text);
    const ids = [CLS_ID];
    for (const word of words) {
      if (ids.length >= maxTokens) break;
      ids.push(this.idOf.get(word) ?? UNK_ID);
    }
    return { ids, truncated: words.length + 1 > maxTokens };
  }

  /** The tokens of `ids`, space-separated, [CLS] and padding left out. */
  decode(ids: ArrayLike<number | bigint>): string {
    const words: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = Number(ids[i]);
      if (id === PAD_ID || id === CLS_ID) continue;
      words.push(this.file.vocab[id] ?? '[UNK]');
    }
    return words.join(' ');
  }
}

/**
 * A vocabulary of the `maxSize` most frequent words with at least `minCount` occurrences (ties
 * broken alphabetically, so the result depends on the texts only), specials first.
 */
export function buildVocabulary(texts: Iterable<string>, maxSize: number, minCount = 2): string[] {
  const counts = new Map<string, number>();
  for (const text of texts) for (const word of splitWords(text)) counts.set(word, (counts.get(word) ?? 0) + 1);
  const words = [...counts.entries()]
    .filter(([word, n]) => n >= minCount && !SPECIAL_TOKENS.includes(word))
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, Math.max(0, maxSize - SPECIAL_TOKENS.length))
    .map(([word]) => word);
  return [...SPECIAL_TOKENS, ...words];
}
