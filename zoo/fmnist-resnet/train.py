#!/usr/bin/env python3
"""Train and export the bundled `fmnist-resnet` backbone (run once; its ONNX is committed).

A ResNet-style CNN for Fashion-MNIST: a 3x3 stem, then 3 stages x 3 BasicBlocks (widths
32/64/128, stride 2 at the start of stages 2 and 3, 1x1 projection shortcuts), global average
pooling and a linear classifier. Normalisation happens inside the graph, so the ONNX input is
raw pixels in [0, 255], float32 [N, 1, 28, 28]; the output is logits [N, 10].

Why this shape: 9 residual blocks give early-exit ramps many sites; equal FLOPs per block across
stages (channels double as resolution halves) keep every stage near a third of the compute.

Exact command used (Debian bookworm, `apt-get install python3-torch python3-onnx dataset-fashion-mnist`):
    /usr/bin/python3 zoo/fmnist-resnet/train.py --budget-seconds 1500 --out zoo/fmnist-resnet/original.onnx
Training is time-budgeted (cosine learning rate over elapsed time) so that it fits a CPU machine.
"""
import argparse
import gzip
import json
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = '/usr/share/datasets/fashion-mnist'
MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST training-set pixel statistics (x / 255)


def read_idx(path):
    with gzip.open(path, 'rb') as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], 'big') for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class FmnistResNet(nn.Module):
    def __init__(self, widths=(32, 64, 128), blocks=(3, 3, 3), num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        layers, cin = [], widths[0]
        for stage, (w, n) in enumerate(zip(widths, blocks)):
            for i in range(n):
                layers.append(Block(cin, w, 2 if (i == 0 and stage > 0) else 1))
                cin = w
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, pixels):
        x = (pixels / 255.0 - MEAN) / STD
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def train_step(model, opt, images, labels):
    """One SGD step on a batch of uint8 images, with a random horizontal flip and a shift of up to 2 pixels."""
    x = torch.from_numpy(images).float().unsqueeze(1)
    if np.random.rand() < 0.5:
        x = torch.flip(x, dims=[3])
    dx, dy = np.random.randint(-2, 3, size=2)
    x = torch.roll(x, shifts=(int(dy), int(dx)), dims=(2, 3)).contiguous(memory_format=torch.channels_last)
    loss = F.cross_entropy(model(x), torch.from_numpy(labels))
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def evaluate(model, images, labels, batch=500):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(images[i:i + batch]).float().unsqueeze(1).contiguous(memory_format=torch.channels_last)
            correct += (model(x).argmax(1).numpy() == labels[i:i + batch]).sum()
    model.train()
    return correct / len(images)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--budget-seconds', type=float, default=1500)
    parser.add_argument('--out', default="zoo/fmnist-resnet/original.onnx")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)

    train_x = read_idx(f'{DATA}/train-images-idx3-ubyte.gz')
    train_y = read_idx(f'{DATA}/train-labels-idx1-ubyte.gz').astype(np.int64)
    test_x = read_idx(f'{DATA}/t10k-images-idx3-ubyte.gz')
    test_y = read_idx(f'{DATA}/t10k-labels-idx1-ubyte.gz').astype(np.int64)

    model = FmnistResNet().to(memory_format=torch.channels_last)  # 10-20x faster on this CPU build
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    peak_lr, warmup, batch = 0.2, 0.05, 128
    start = time.time()
    step, epoch, done = 0, 0, False
    while not done:
        order = np.random.permutation(len(train_x))
        for i in range(0, len(order) - batch + 1, batch):
            frac = (time.time() - start) / args.budget_seconds
            if frac >= 1:
                done = True
                break
            lr = peak_lr * (frac / warmup if frac < warmup else 0.5 * (1 + math.cos(math.pi * (frac - warmup) / (1 - warmup))))
            for g in opt.param_groups:
                g['lr'] = lr
            idx = order[i:i + batch]
            loss = train_step(model, opt, train_x[idx], train_y[idx])
            step += 1
            if step % 100 == 0:
                print(f'step {step} epoch {epoch} lr {lr:.4f} loss {loss.item():.3f} elapsed {time.time() - start:.0f}s', flush=True)
        epoch += 1
        print(f'epoch {epoch}: test accuracy on 2k {evaluate(model, test_x[:2000], test_y[:2000]):.4f}', flush=True)

    accuracy = evaluate(model, test_x, test_y)
    print(f'final test accuracy {accuracy:.4f} after {step} steps, {time.time() - start:.0f}s', flush=True)
    model.eval()
    model = model.to(memory_format=torch.contiguous_format)
    dummy = torch.zeros(1, 1, 28, 28)
    torch.onnx.export(model, dummy, args.out, opset_version=17, input_names=['pixels'], output_names=['logits'],
                      dynamic_axes={'pixels': {0: 'N'}, 'logits': {0: 'N'}}, do_constant_folding=True)
    with open(args.out.replace('.onnx', '.train.json'), 'w') as f:
        json.dump({'testAccuracy': float(accuracy), 'steps': step, 'epochs': epoch, 'seconds': time.time() - start,
                   'torch': torch.__version__, 'seed': args.seed, 'budgetSeconds': args.budget_seconds}, f, indent=2)


if __name__ == '__main__':
    main()
