"""PyTorch side of bench/bench-clip.c: the same CLIP ViT-B/32 forward (tools/reference/ref_clip.py's model code,
float32, random weights) at torch.set_num_threads(OMP_NUM_THREADS). Usage: bench_clip.py [batch] [reps]."""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "reference"))
import ref_clip  # noqa: E402

torch.set_default_dtype(torch.float32)
threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
torch.set_num_threads(threads)
B = int(sys.argv[1]) if len(sys.argv) > 1 else 8
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
ref_clip.CFG.update(vision_width=768, vision_layers=12, vision_heads=12, patch=32, image=224, text_width=512,
                    text_layers=12, text_heads=8, context=77, vocab=49408, embed=512)
W = {k: v.float() for k, v in ref_clip.make_weights().items()}
pixels = torch.randn(B, 3, 224, 224)
ids = torch.randint(1, 49000, (B, 77))
ids[:, 20] = 49407
ids[:, 21:] = 0


def run(k):
    if k == 0:
        with torch.no_grad():
            ref_clip.encode_image(W, pixels)
    elif k == 1:
        with torch.no_grad():
            ref_clip.encode_text(W, ids)
    else:
        x = pixels.clone().requires_grad_(True)
        e, _ = ref_clip.encode_image(W, x)
        torch.autograd.grad(e.sum(), x)


print(f"torch {torch.__version__} CLIP ViT-B/32 (random weights), batch {B}, {threads} threads, best of {reps}")
print(f"{'what':26s} {'ms/batch':>10s} {'items/s':>12s}")
for k, name in enumerate(["image forward", "text forward", "image fwd+bwd (pixels)"]):
    best = 1e30
    for r in range(reps + 1):
        t0 = time.perf_counter()
        run(k)
        dt = time.perf_counter() - t0
        if r > 0:
            best = min(best, dt)
    print(f"{name:26s} {best * 1e3:10.1f} {B / best:12.1f}")
