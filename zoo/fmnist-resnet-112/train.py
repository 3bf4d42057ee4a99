#!/usr/bin/env python3
"""Train and export the bundled real-size backbone `fmnist-resnet-112` (run once; its ONNX is committed).

The `fmnist-resnet` architecture (3x3 stem, 3 stages x 3 BasicBlocks, widths 32/64/128) run on
Fashion-MNIST images upscaled 4x inside the graph (bilinear, 28x28 -> 112x112), as ImageNet CNNs
run at 224x224: 16x the compute of fmnist-resnet for the same 1.08 M parameters, so that one image
takes tens of milliseconds on a CPU core, like the models Clockwork and Apparate serve, while the
package stays small enough for git.

Training uses progressive resizing to fit a 2-core CPU: the same weights are trained at 1x, then
2x, then 4x upscaling (the scale is the only thing that changes; the exported graph always
upscales 4x), with one cosine learning-rate schedule over the whole time budget.

Exact command used (Debian bookworm, `apt-get install python3-torch python3-onnx dataset-fashion-mnist`):
    /usr/bin/python3 zoo/fmnist-resnet-112/train.py --budget-seconds 2100 --out zoo/fmnist-resnet-112/original.onnx
"""
import argparse
import importlib.util
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location('fmnist_resnet', os.path.join(HERE, '..', 'fmnist-resnet', 'train.py'))
base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(base)

EXPORT_SCALE = 4
# (upscale factor, share of the time budget, batch size). A step at 4x costs ~16x one at 1x (about
# 1 s per 16 images on 2 cores), so the 4x phase, which adapts the weights to the served scale, gets
# most of the time and smaller batches (more updates per second).
PHASES = [(1, 0.15, 128), (2, 0.25, 64), (4, 0.6, 32)]


class UpscaledResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = base.FmnistResNet()
        self.scale = EXPORT_SCALE

    def forward(self, pixels):
        x = (pixels / 255.0 - base.MEAN) / base.STD
        if self.scale != 1:
            x = F.interpolate(x, scale_factor=float(self.scale), mode='bilinear', align_corners=False)
        x = self.net.blocks(self.net.stem(x))
        return self.net.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def export(model, out):
    model.eval()
    model.scale = EXPORT_SCALE
    model = model.to(memory_format=torch.contiguous_format)
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), out, opset_version=17, input_names=['pixels'], output_names=['logits'],
                      dynamic_axes={'pixels': {0: 'N'}, 'logits': {0: 'N'}}, do_constant_folding=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--budget-seconds', type=float, default=2100)
    parser.add_argument('--out', default='zoo/fmnist-resnet-112/original.onnx')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--untrained', action='store_true', help='export random weights (to time the graph) and stop')
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    model = UpscaledResNet().to(memory_format=torch.channels_last)
    if args.untrained:
        export(model, args.out)
        return

    train_x = base.read_idx(f'{base.DATA}/train-images-idx3-ubyte.gz')
    train_y = base.read_idx(f'{base.DATA}/train-labels-idx1-ubyte.gz').astype(np.int64)
    test_x = base.read_idx(f'{base.DATA}/t10k-images-idx3-ubyte.gz')
    test_y = base.read_idx(f'{base.DATA}/t10k-labels-idx1-ubyte.gz').astype(np.int64)

    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    peak_lr, warmup = 0.2, 0.05
    start = time.time()
    step, epoch, done = 0, 0, False
    phase_ends = np.cumsum([share for _, share, _ in PHASES])
    steps_at_scale = {scale: 0 for scale, _, _ in PHASES}
    while not done:
        order = np.random.permutation(len(train_x))
        i = 0
        while i < len(order):
            frac = (time.time() - start) / args.budget_seconds
            if frac >= 1:
                done = True
                break
            phase = int(np.searchsorted(phase_ends, frac, side='right'))
            scale, _, batch = PHASES[min(phase, len(PHASES) - 1)]
            if i + batch > len(order):
                break
            if scale != model.scale:
                print(f'scale {model.scale}x -> {scale}x at step {step}; test accuracy on 1k at 1x-trained weights and {scale}x: '
                      f'{evaluate_at(model, scale, test_x[:1000], test_y[:1000]):.4f}', flush=True)
            model.scale = scale
            lr = peak_lr * (frac / warmup if frac < warmup else 0.5 * (1 + math.cos(math.pi * (frac - warmup) / (1 - warmup))))
            for g in opt.param_groups:
                g['lr'] = lr
            idx = order[i:i + batch]
            i += batch
            loss = base.train_step(model, opt, train_x[idx], train_y[idx])
            step += 1
            steps_at_scale[scale] += 1
            if step % (50 if scale == 1 else 10) == 0:
                print(f'step {step} epoch {epoch} scale {scale}x lr {lr:.4f} loss {loss.item():.3f} elapsed {time.time() - start:.0f}s', flush=True)
        epoch += 1

    train_seconds = time.time() - start
    export(model, args.out)  # first: the evaluation below takes minutes at 4x
    accuracy = evaluate_at(model, EXPORT_SCALE, test_x, test_y)
    print(f'final test accuracy at {EXPORT_SCALE}x {accuracy:.4f} after {step} steps ({steps_at_scale}), {train_seconds:.0f}s training', flush=True)
    with open(args.out.replace('.onnx', '.train.json'), 'w') as f:
        json.dump({'testAccuracy': float(accuracy), 'steps': step, 'stepsAtScale': {f'{k}x': v for k, v in steps_at_scale.items()},
                   'epochs': epoch, 'seconds': train_seconds, 'torch': torch.__version__, 'seed': args.seed,
                   'budgetSeconds': args.budget_seconds, 'phases': [{'scale': s, 'share': f, 'batch': b} for s, f, b in PHASES]}, f, indent=2)


def evaluate_at(model, scale, images, labels):
    before = model.scale
    model.scale = scale
    accuracy = base.evaluate(model, images, labels, batch=100)
    model.scale = before
    return accuracy


if __name__ == '__main__':
    main()
