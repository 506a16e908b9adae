#!/usr/bin/python3
"""Writes a synthetic bf16 (little-endian) weight tensor for filesystem benchmarks.

The tensor imitates a stack of LLM linear-layer weight matrices, so that its
exponent distribution (what the QATQ codec and zstd mostly feed on) is close
to real checkpoints rather than to white noise:

  * row-major [rows][cols] with cols = --cols (default 4096);
  * every row r has its own scale s_r = 0.02 * exp(N(0, 0.6)) (per-output-
    channel scales as in trained weights: roughly 1e-3 .. 0.2, i.e. a spread
    of about 8 binary exponents between rows);
  * element = s_r * N(0, 1), and one element in 1000 is an outlier multiplied
    by 4 .. 32 (the heavy tail seen in attention / MLP projections);
  * every 64th row is a "norm" row close to 1.0 (1 + 0.05 * N(0, 1)), as
    layer-norm gains interleaved with the matrices;
  * f32 -> bf16 by round to nearest, ties to even (the upper 16 bits), as
    PyTorch's .to(torch.bfloat16).

Deterministic for a given --seed and --bytes. Needs numpy (/usr/bin/python3).

usage: tools/gen-bf16-tensor.py OUT [--bytes N] [--cols N] [--seed N]
"""
import argparse
import os
import sys

import numpy as np


def f32_to_bf16(x):
    """Round-to-nearest-even f32 -> bf16 bit patterns (uint16)."""
    u = x.view(np.uint32)
    bias = np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))
    return ((u + bias) >> np.uint32(16)).astype(np.uint16)


def generate(out, total_bytes, cols, seed):
    if total_bytes % 2:
        raise ValueError("--bytes must be even (bf16 elements)")
    rng = np.random.default_rng(seed)
    total = total_bytes // 2
    rows_per_block = max(1, (16 << 20) // cols)  # ~32 MiB of bf16 per block
    tmp = out + ".tmp"
    row = 0
    done = 0
    with open(tmp, "wb") as f:
        while done < total:
            n = min(rows_per_block * cols, total - done)
            nrows = -(-n // cols)
            scale = (0.02 * np.exp(0.6 * rng.standard_normal(nrows, dtype=np.float32))).astype(
                np.float32)
            v = rng.standard_normal(nrows * cols, dtype=np.float32).reshape(nrows, cols)
            v *= scale[:, None]
            norm_rows = (np.arange(row, row + nrows) % 64) == 63
            if norm_rows.any():
                v[norm_rows] = 1.0 + 0.05 * v[norm_rows] / scale[norm_rows, None]
            flat = v.reshape(-1)[:n]
            outl = np.flatnonzero(rng.random(n, dtype=np.float32) < 1e-3)
            flat[outl] *= rng.uniform(4.0, 32.0, outl.size).astype(np.float32)
            f.write(f32_to_bf16(np.ascontiguousarray(flat)).tobytes())
            done += n
            row += nrows
    os.replace(tmp, out)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--bytes", type=int, default=1 << 30, help="output size (default 1 GiB)")
    p.add_argument("--cols", type=int, default=4096, help="row length in elements")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    generate(a.out, a.bytes, a.cols, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
