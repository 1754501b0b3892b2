"""PyTorch side of the ops benchmark: the same rows as bench/bench-ops.c (conv2d forward, backward-data and
backward-weights at the RATLIP generator shapes in channels_last, linear layers, sgemm peak via torch.mm 2048^3),
best wall time over repeats, at torch.set_num_threads(OMP_NUM_THREADS). Usage: /usr/bin/python3 bench_ops.py [--tsv]
[--quick]."""
import os
import sys
import time

import torch
import torch.nn.functional as F

TSV = "--tsv" in sys.argv
QUICK = "--quick" in sys.argv
THREADS = int(os.environ.get("OMP_NUM_THREADS", "2"))
torch.set_num_threads(THREADS)
torch.set_grad_enabled(False)
PEAK = None


def time_best(fn):
    fn()
    best, total, r = float("inf"), 0.0, 0
    min_reps, budget = (2, 0.3) if QUICK else (3, 1.0)
    while r < 50 and (r < min_reps or total < budget):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        total += dt
        best = min(best, dt)
        r += 1
    return best


def row(op, shape, sec, flop):
    gf = flop / sec * 1e-9
    if TSV:
        print(f"{op}\t{shape}\t{sec * 1e3:.3f}\t{gf:.1f}", flush=True)
    else:
        print(f"{op:<22} {shape:<34} {sec * 1e3:9.3f} {gf:9.1f} {100 * gf / PEAK:6.0f}%", flush=True)


def bench_conv(B, ci, co, s, k, pad):
    x = torch.full((B, ci, s, s), 0.5).contiguous(memory_format=torch.channels_last)
    w = (torch.arange(co * ci * k * k, dtype=torch.float32).view(co, ci, k, k) % 1000 / 1000 * 0.01)
    w = w.contiguous(memory_format=torch.channels_last)
    b = torch.full((co,), 0.1)
    os_ = s + 2 * pad - k + 1
    gy = torch.full((B, co, os_, os_), 0.25).contiguous(memory_format=torch.channels_last)
    flop = 2.0 * B * co * os_ * os_ * ci * k * k
    shape = f"{B}x{ci}->{co} {s}px k{k}"
    conv_bwd = torch.ops.aten.convolution_backward

    def bwd(mask):
        return lambda: conv_bwd(gy, x, w, None, [1, 1], [pad, pad], [1, 1], False, [0, 0], 1, mask)

    row("conv2d fwd", shape, time_best(lambda: F.conv2d(x, w, b, padding=pad)), flop)
    row("conv2d bwd_data", shape, time_best(bwd([True, False, False])), flop)
    row("conv2d bwd_weights", shape, time_best(bwd([False, True, False])), flop)


def bench_linear(what, M, N, K):
    x = torch.arange(M * K, dtype=torch.float32).view(M, K) % 1000 / 1000 * 0.5
    w = torch.arange(N * K, dtype=torch.float32).view(N, K) % 1000 / 1000 * 0.01
    b = torch.full((N,), 0.1)
    row("linear", f"{M}x{K}->{N} {what}", time_best(lambda: F.linear(x, w, b)), 2.0 * M * N * K)


def main():
    global PEAK
    a = torch.rand(2048, 2048)
    bm = torch.rand(2048, 2048)
    t = time_best(lambda: torch.mm(a, bm))
    flop = 2.0 * 2048 ** 3
    PEAK = flop / t * 1e-9
    if not TSV:
        print(f"PyTorch {torch.__version__} ops benchmark, {THREADS} threads; best of repeats; % = share of the sgemm peak")
        print(f"{'op':<22} {'shape':<34} {'ms':>9} {'GFLOP/s':>9} {'peak':>7}")
    row("sgemm (peak)", "2048x2048x2048", t, flop)
    for args in [(8, 512, 512, 8, 3, 1), (8, 512, 512, 16, 3, 1), (8, 512, 512, 32, 3, 1), (8, 512, 256, 64, 3, 1),
                 (8, 256, 128, 128, 3, 1), (8, 128, 64, 224, 3, 1), (8, 768, 512, 7, 5, 2)]:
        bench_conv(*args)
    bench_linear("fc_code", 8, 3136, 100)
    bench_linear("fc_prompt", 8, 6144, 612)
    bench_linear("clip qkv", 400, 2304, 768)
    bench_linear("clip mlp up", 400, 3072, 768)
    bench_linear("clip mlp down", 400, 768, 3072)


if __name__ == "__main__":
    main()
