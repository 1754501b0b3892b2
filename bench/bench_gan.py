"""PyTorch side of bench/bench-gan.c: the same GAN training iteration (D step with MA-GP through double backward
and Adam; G step with CLIP similarity through the frozen CLIP and Adam) with the nn.Module networks of
tools/reference/ref_released.py (nn.LSTM, BatchNorm2d, GroupNorm, Conv2d) at the CPU-scale emoji sizes, float32,
torch.set_num_threads(OMP_NUM_THREADS). Usage: bench_gan.py [batch 32] [reps 5]; best of reps after a warm-up."""
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "reference"))
import ref_clip as RC  # noqa: E402
import ref_released as RR  # noqa: E402

torch.set_default_dtype(torch.float32)
threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
torch.set_num_threads(threads)
B = int(sys.argv[1]) if len(sys.argv) > 1 else 32
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5

RC.CFG.update(vision_width=128, vision_layers=4, vision_heads=4, patch=8, image=32, text_width=128, text_layers=3,
              text_heads=4, context=24, vocab=3000, embed=128)
RR.VW, RR.GRID, RR.E, RR.LAYERS = 128, 4, 128, 4
RR.NF, RR.ZD, RR.CODE, RR.MID, RR.MAP, RR.OUT, RR.PROMPTS = 32, 100, 64, 32, 4, 32, (1, 2, 3)
RR.D_NF, RR.TAPS, RR.RAT_H, RR.SA_G = 32, (1, 2, 3), 64, 8
RR.DF_NF, RR.DF_DNF, RR.DF_OUT = 32, 32, 64
W = {k: v.float() for k, v in RC.make_weights().items()}


def encode(img):
    x = RC.vision_embed(W, RC.galip_transform(img, 32))
    taps = []
    for i in range(RR.LAYERS):
        x = RC.vblock(W, i, x)
        if i in RR.TAPS:
            taps.append(x[:, 1:].transpose(1, 2).reshape(img.shape[0], RR.VW, RR.GRID, RR.GRID))
    return torch.stack(taps, 1), RC.vision_head(W, x)


def run(name):
    torch.manual_seed(0)
    dfgan = name == "dfgan"
    if dfgan:
        G, D, C = RR.DfNetG(), RR.DfNetD(), RR.NetC(RR.DF_DNF, 3, 4, 1)
        S = 64
    else:
        G, D, C = RR.NetG(name == "ratlip", W), RR.NetD(), RR.NetC(RR.D_NF, 3, 2, 0)
        S = 32
    dparams = list(D.parameters()) + list(C.parameters())
    optD = torch.optim.Adam(dparams, lr=4e-4, betas=(0.0, 0.9))
    optG = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.0, 0.9))
    x = torch.rand(B, 3, S, S) * 2 - 1
    s = torch.randn(B, RR.E)

    def iteration():
        z = torch.randn(B, RR.ZD)
        t0 = time.perf_counter()
        if dfgan:
            Xr = x.clone().requires_grad_(True)
        else:
            with torch.no_grad():
                Xr, _ = encode(x)
            Xr.requires_grad_(True)
        s_leaf = s.clone().requires_grad_(True)
        optD.zero_grad()
        fr = D(Xr)
        lr = C(fr, s_leaf)
        L_real = F.relu(1 - lr).mean()
        if dfgan:
            L_mis = F.relu(1 + C(torch.cat([fr[1:], fr[:1]]), s_leaf)).mean()
        else:
            L_mis = F.relu(1 + C(fr, torch.cat([s[1:], s[:1]]))).mean()
        for p in dparams:
            p.requires_grad_(False)
        fake = G(z, s)
        Xf, ef = (fake, None) if dfgan else encode(fake)
        for p in dparams:
            p.requires_grad_(True)
        L_fake = F.relu(1 + C(D(Xf.detach()), s)).mean()
        gx, gs = torch.autograd.grad(lr.sum(), (Xr, s_leaf), create_graph=True)
        gp = 2.0 * (gx.reshape(B, -1).pow(2).sum(1) + gs.pow(2).sum(1)).pow(3).mean()
        (L_real + (L_fake + L_mis) / 2 + gp).backward()
        optD.step()
        t1 = time.perf_counter()
        optG.zero_grad()
        for p in dparams:
            p.requires_grad_(False)
        L_G = -C(D(Xf), s).mean()
        if not dfgan:
            L_G = L_G - 4 * F.cosine_similarity(ef, s, dim=1).mean()
        L_G.backward()
        for p in dparams:
            p.requires_grad_(True)
        optG.step()
        return t1 - t0, time.perf_counter() - t0

    iteration()
    best = min((iteration() for _ in range(reps)), key=lambda t: t[1])
    print(f"{'torch':6s} {name:7s} {B:6d} {threads:8d} {best[0] * 1e3:10.1f} {(best[1] - best[0]) * 1e3:10.1f} "
          f"{best[1] * 1e3:10.1f}")


for m in ("ratlip", "galip", "dfgan"):
    run(m)
