"""PyTorch side of bench/bench-eval.c: the same work at torch.set_num_threads(OMP_NUM_THREADS), float32, random
weights, eval mode under torch.no_grad. inception: torchvision's inception_v3 (fc = Identity, transform_input off,
the §9.1 galip transform applied to the [-1, 1] images as tools/reference/ref_inception.py does); inception_fid:
pytorch-fid's FID-Inception (ref_inception.fid_inception_v3's blocks); clip_score: the ViT-B/32 image and text
encodings of tools/reference/ref_clip.py with the §5.1 galip transform, then the cosines. BatchNorm statistics from
one train-mode pass (ref_inception.randomise_bn) so that activations stay of order one. Prints the same lines as
bench-eval: '#' comments, then NAME MS_PER_BATCH IMAGES_PER_S. Usage: bench_eval.py [batch] [reps]."""
import os
import sys
import time

import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "reference"))
import ref_clip  # noqa: E402
import ref_inception  # noqa: E402

torch.set_default_dtype(torch.float32)  # ref_clip sets float64 on import

threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
torch.set_num_threads(threads)
B = int(sys.argv[1]) if len(sys.argv) > 1 else 16
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
gen = torch.Generator().manual_seed(1)
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def best_of(fn):
    best = 1e30
    for r in range(reps + 1):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        if r > 0:  # the first run warms up
            best = min(best, dt)
    return best


def row(name, best):
    print(f"{name:14s} {best * 1e3:10.1f} {B / best:10.2f}", flush=True)


print(f"# torch {torch.__version__} torchvision {torchvision.__version__}, random weights, batch {B}, "
      f"{threads} threads, best of {reps} after a warm-up")
images = (torch.randn(B, 3, 299, 299, generator=gen)).clamp(-1, 1)


def inception(net):
    net.fc = torch.nn.Identity()
    net.eval()

    def run():
        with torch.no_grad():
            u = (images + 1) / 2
            if u.shape[-1] != 299:
                u = F.interpolate(u, size=(299, 299), mode="bilinear", align_corners=False)
            net(u * (STD / 0.5) + (MEAN - 0.5) / 0.5)
    return run


tv = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False, transform_input=False)
ref_inception.randomise_bn(tv, gen)
row("inception", best_of(inception(tv)))
del tv
fid = ref_inception.fid_inception_v3()
ref_inception.randomise_bn(fid, gen)
row("inception_fid", best_of(inception(fid)))
del fid

ref_clip.CFG.update(vision_width=768, vision_layers=12, vision_heads=12, patch=32, image=224, text_width=512,
                    text_layers=12, text_heads=8, context=77, vocab=49408, embed=512)
W = {k: v.float() for k, v in ref_clip.make_weights().items()}
pixels = torch.randn(B, 3, 224, 224, generator=gen).clamp(-1, 1)
ids = torch.randint(1, 49000, (B, 77), generator=gen)
ids[:, 20] = 49407
ids[:, 21:] = 0


def clip_score():
    with torch.no_grad():
        img, _ = ref_clip.encode_image(W, ref_clip.galip_transform(pixels, 224))
        txt = ref_clip.encode_text(W, ids)
        F.cosine_similarity(img, txt, dim=-1)


row("clip_score", best_of(clip_score))
