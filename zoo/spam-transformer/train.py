#!/usr/bin/env python3
"""Train and export the bundled `spam-transformer` text classifier (run once; its ONNX is committed).

A BERT-style encoder for spam detection on the SpamAssassin corpus (datasets/spam-assassin):
word embeddings + learned positions + LayerNorm, 4 post-LN encoder layers (hidden 128, 4 heads,
feed-forward 256, GELU), then a pooler (first token -> Linear -> tanh) and a linear classifier.
Inputs `input_ids` and `attention_mask`, int64 [N, T], both N and T dynamic (T <= 128); output
`logits` float32 [N, 2] (0 ham, 1 spam).

Each encoder layer computes its own sizes from its own input, and the additive attention-mask
bias is computed once from `attention_mask` alone, so between layers exactly one activation
(the hidden state [N, T, 128]) plus the mask bias crosses: `escapement prepare` finds a ramp site
after every layer.

The token ids come from the repository's own tokenizer (text/word-tokenizer.ts), written by
text/make-training-data.ts, so training and serving tokenize identically. Exact commands used
(Debian bookworm, `apt-get install python3-torch`):
    node dist/text/make-training-data.js --train datasets/spam-assassin/train.jsonl.gz \
        --test datasets/spam-assassin/messages.jsonl.gz --tokenizer zoo/spam-transformer/tokenizer.json --out /tmp/spam-npy
    /usr/bin/python3 zoo/spam-transformer/train.py --data /tmp/spam-npy --budget-seconds 600 --out zoo/spam-transformer/original.onnx
Training is time-budgeted (linear warm-up, cosine decay over elapsed time) so that it fits a CPU machine.
"""
import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class EncoderLayer(nn.Module):
    def __init__(self, dim, heads, ff_dim, dropout):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.ff1 = nn.Linear(dim, ff_dim)
        self.ff2 = nn.Linear(ff_dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, mask_bias):
        n, t, d = x.shape  # from this layer's own input: no size tensor crosses a layer boundary
        h = self.heads
        q, k, v = self.qkv(x).reshape(n, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // h) + mask_bias
        attn = (self.drop(scores.softmax(-1)) @ v).transpose(1, 2).reshape(n, t, d)
        x = self.norm1(x + self.drop(self.proj(attn)))
        return self.norm2(x + self.drop(self.ff2(F.gelu(self.ff1(x)))))


class SpamTransformer(nn.Module):
    def __init__(self, vocab, max_tokens=128, dim=128, heads=4, ff_dim=256, layers=4, num_classes=2, dropout=0.1):
        super().__init__()
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Parameter(torch.randn(1, max_tokens, dim) * 0.02)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList([EncoderLayer(dim, heads, ff_dim, dropout) for _ in range(layers)])
        self.pooler = nn.Linear(dim, dim)
        self.classifier = nn.Linear(dim, num_classes)

    def forward(self, input_ids, attention_mask):
        # -1e4, not -inf: a row that is all padding (a padded batch slot) stays finite.
        mask_bias = (1.0 - attention_mask.float()).unsqueeze(1).unsqueeze(2) * -1e4
        x = self.tokens(input_ids) + self.positions[:, : input_ids.shape[1]]
        x = self.drop(self.norm(x))
        for layer in self.layers:
            x = layer(x, mask_bias)
        return self.classifier(torch.tanh(self.pooler(x[:, 0])))


def evaluate(model, ids, mask, labels, batch=256):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(ids), batch):
            logits = model(torch.from_numpy(ids[i:i + batch]), torch.from_numpy(mask[i:i + batch]))
            correct += (logits.argmax(1).numpy() == labels[i:i + batch]).sum()
    model.train()
    return correct / len(ids)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--data', default='/tmp/spam-npy')
    parser.add_argument('--budget-seconds', type=float, default=600)
    parser.add_argument('--out', default='zoo/spam-transformer/original.onnx')
    parser.add_argument('--tokenizer', default='zoo/spam-transformer/tokenizer.json')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)

    load = lambda name: np.load(f'{args.data}/{name}.npy')
    train_ids, train_mask, train_y = load('train_ids'), load('train_mask'), load('train_labels')
    test_ids, test_mask, test_y = load('test_ids'), load('test_mask'), load('test_labels')
    with open(args.tokenizer) as f:
        tokenizer = json.load(f)
    model = SpamTransformer(len(tokenizer['vocab']), tokenizer['maxTokens'])

    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01)
    peak_lr, warmup, batch = 5e-4, 0.05, 32
    start = time.time()
    step, epoch, done = 0, 0, False
    while not done:
        order = np.random.permutation(len(train_ids))
        for i in range(0, len(order) - batch + 1, batch):
            frac = (time.time() - start) / args.budget_seconds
            if frac >= 1:
                done = True
                break
            lr = peak_lr * (frac / warmup if frac < warmup else 0.5 * (1 + math.cos(math.pi * (frac - warmup) / (1 - warmup))))
            for g in opt.param_groups:
                g['lr'] = lr
            idx = order[i:i + batch]
            # Trim the batch to its longest row: padding costs time but changes nothing.
            t = int(train_mask[idx].sum(1).max())
            logits = model(torch.from_numpy(train_ids[idx, :t]), torch.from_numpy(train_mask[idx, :t]))
            loss = F.cross_entropy(logits, torch.from_numpy(train_y[idx]))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            if step % 20 == 0:
                print(f'step {step} epoch {epoch} lr {lr:.6f} loss {loss.item():.3f} elapsed {time.time() - start:.0f}s', flush=True)
        epoch += 1
        print(f'epoch {epoch}: held-out accuracy on 500 {evaluate(model, test_ids[:500], test_mask[:500], test_y[:500]):.4f}', flush=True)

    accuracy = evaluate(model, test_ids, test_mask, test_y)
    print(f'final held-out accuracy {accuracy:.4f} after {step} steps, {time.time() - start:.0f}s', flush=True)
    model.eval()
    dummy = (torch.from_numpy(test_ids[:2, :16]), torch.from_numpy(test_mask[:2, :16]))
    torch.onnx.export(model, dummy, args.out, opset_version=17, input_names=['input_ids', 'attention_mask'], output_names=['logits'],
                      dynamic_axes={'input_ids': {0: 'N', 1: 'T'}, 'attention_mask': {0: 'N', 1: 'T'}, 'logits': {0: 'N'}},
                      do_constant_folding=True)
    with open(args.out.replace('.onnx', '.train.json'), 'w') as f:
        json.dump({'heldOutAccuracy': float(accuracy), 'heldOut': 'datasets/spam-assassin/messages.jsonl.gz', 'steps': step, 'epochs': epoch,
                   'seconds': time.time() - start, 'torch': torch.__version__, 'seed': args.seed, 'budgetSeconds': args.budget_seconds}, f, indent=2)


if __name__ == '__main__':
    main()
