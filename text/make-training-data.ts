/**
 * Builds a text model's tokenizer from its training corpus and writes the token ids the training
 * script (zoo/spam-transformer/train.py) reads, so training and serving tokenize identically.
 *
 *   node dist/text/make-training-data.js --train datasets/spam-assassin/train.jsonl.gz \
 *     --test datasets/spam-assassin/messages.jsonl.gz --tokenizer zoo/spam-transformer/tokenizer.json --out DIR
 *
 * Writes DIR/{train,test}_{ids,mask,labels}.npy ([N, maxTokens] int64 padded, labels int64).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { writeNpy } from '../shared/npy-writer.js';
import { readTextCorpus } from './text-corpus.js';
import { padTokenRows } from './token-tensors.js';
import { buildVocabulary, WordTokenizer } from './word-tokenizer.js';

const args = yargs(hideBin(process.argv))
  .option('train', { type: 'string', demandOption: true, describe: 'corpus the vocabulary and the model are trained on' })
  .option('test', { type: 'string', demandOption: true, describe: 'held-out corpus (accuracy only)' })
  .option('tokenizer', { type: 'string', demandOption: true, describe: 'tokenizer.json to write' })
  .option('out', { type: 'string', demandOption: true, describe: 'folder for the .npy files' })
  .option('vocab-size', { type: 'number', default: 8000 })
  .option('max-tokens', { type: 'number', default: 128 })
  .strict()
  .parseSync();

const train = readTextCorpus(args.train);
const tokenizer = new WordTokenizer({
  kind: 'word',
  maxTokens: args['max-tokens'],
  inputNames: { ids: 'input_ids', mask: 'attention_mask' },
  vocab: buildVocabulary(train.texts, args['vocab-size']),
});
tokenizer.save(args.tokenizer);
mkdirSync(args.out, { recursive: true });
for (const [split, corpus] of [
  ['train', train],
  ['test', readTextCorpus(args.test)],
] as const) {
  const rows = corpus.texts.map((t) => tokenizer.encode(t).ids);
  const padded = padTokenRows(rows, tokenizer.maxTokens);
  writeNpy(join(args.out, `${split}_ids.npy`), padded.ids, [rows.length, tokenizer.maxTokens]);
  writeNpy(join(args.out, `${split}_mask.npy`), padded.mask, [rows.length, tokenizer.maxTokens]);
  writeNpy(
    join(args.out, `${split}_labels.npy`),
    BigInt64Array.from(corpus.labels, (l) => BigInt(l)),
    [rows.length],
  );
  const lengths = rows.map((r) => r.length).sort((a, b) => a - b);
  const unk = rows.flat().filter((id) => id === 1).length / rows.flat().length;
  console.log(
    `${split}: ${rows.length} texts, tokens p50 ${lengths[lengths.length >> 1]} p90 ${lengths[Math.floor(lengths.length * 0.9)]}, ${(100 * unk).toFixed(1)}% unknown`,
  );
}
console.log(`vocabulary ${tokenizer.vocabSize} entries -> ${args.tokenizer}`);
