"""Checkpoints in the RELEASED PyTorch layouts of GALIP, RATLIP and DF-GAN (reference §2.12: torch.save of
{'model': {'netG', 'netD', 'netC'}, 'optimizers': ..., 'epoch'}), for testing tools/convert-checkpoint.py.

The networks are torch.nn.Module trees whose attribute names follow the released module structure described in
../shared/reference/ratlip-reference.md §2-5 (fc_code, mapping.FBlocks, fuseX.affineY.fc_gamma.linear1, rnn,
Conv_shuffle's conv/bn/se, GBlocks, to_rgb.1, DBlocks/main/joint_conv; DF-GAN's fc, GBlocks, conv_img), so the
state-dict names come from the modules themselves, not from a name table. They use torch.nn.LSTM, BatchNorm2d and
GroupNorm, not ratfw's reference functions. Sizes are the tiny ones of tests/test-gan-golden.c. Stored beside the
.pth files (tests/fixtures/released/): the CLIP vision weights, inputs, and each model's G(z, s) (eval mode) and D
logits on real images, which the converted checkpoint must reproduce in ratfw.

  /usr/bin/python3 tools/reference/ref_released.py
"""
import math
import os
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

import ref_clip as RC
from common import FIXTURE_DIR, save_safetensors, seed

RC.CFG.update(vision_width=12, vision_heads=2, text_width=8, text_layers=1, text_heads=2)
NF, ZD, CODE, MID, MAP, OUT, PROMPTS, B = 4, 8, 8, 8, 2, 16, (1, 2), 3
D_NF, TAPS, RAT_H, SA_G = 4, (0, 1, 2), 6, 2
VW, GRID, E, LAYERS = RC.CFG["vision_width"], RC.CFG["image"] // RC.CFG["patch"], RC.CFG["embed"], RC.CFG["vision_layers"]
DF_NF, DF_DNF, DF_OUT = 4, 2, 32
OUT_DIR = os.path.join(FIXTURE_DIR, "released")


class Affine(nn.Module):
    def __init__(self, cond, C):
        super().__init__()
        self.fc_gamma = nn.Sequential(OrderedDict([("linear1", nn.Linear(cond, C)), ("relu1", nn.ReLU()),
                                                   ("linear2", nn.Linear(C, C))]))
        self.fc_beta = nn.Sequential(OrderedDict([("linear1", nn.Linear(cond, C)), ("relu1", nn.ReLU()),
                                                  ("linear2", nn.Linear(C, C))]))

    def forward(self, x, y):
        return self.fc_gamma(y)[:, :, None, None] * x + self.fc_beta(y)[:, :, None, None]


class AffineRnn(nn.Module):
    """Released RAT (§3.2): the batch of conditions is one sequence; the last hidden state gives gamma, beta."""

    def __init__(self, cond, C, h):
        super().__init__()
        self.rnn = nn.LSTM(cond, h, batch_first=True)
        self.fc_gamma = nn.Sequential(nn.Linear(h, C), nn.ReLU(), nn.Linear(C, C))
        self.fc_beta = nn.Sequential(nn.Linear(h, C), nn.ReLU(), nn.Linear(C, C))

    def forward(self, x, y):
        _, (hn, _) = self.rnn(y.unsqueeze(0))
        h = hn[-1]  # [1, h]
        return self.fc_gamma(h)[:, :, None, None] * x + self.fc_beta(h)[:, :, None, None]


class DFBLK(nn.Module):
    def __init__(self, cond, C, rnn=False):
        super().__init__()
        self.affine0 = AffineRnn(cond, C, RAT_H) if rnn else Affine(cond, C)
        self.affine1 = AffineRnn(cond, C, RAT_H) if rnn else Affine(cond, C)

    def forward(self, x, y):
        return F.leaky_relu(self.affine1(F.leaky_relu(self.affine0(x, y), 0.2), y), 0.2)


class ShuffleAttention(nn.Module):
    def __init__(self, C, G):
        super().__init__()
        m = C // (2 * G)
        self.G = G
        self.cweight = nn.Parameter(torch.zeros(1, m, 1, 1))
        self.cbias = nn.Parameter(torch.ones(1, m, 1, 1))
        self.sweight = nn.Parameter(torch.zeros(1, m, 1, 1))
        self.sbias = nn.Parameter(torch.ones(1, m, 1, 1))
        self.gn = nn.GroupNorm(m, m)

    def forward(self, x):
        b, c, h, w = x.shape
        x = x.reshape(b * self.G, -1, h, w)
        x0, x1 = x.chunk(2, dim=1)
        xc = x0 * torch.sigmoid(self.cweight * x0.mean((2, 3), keepdim=True) + self.cbias)
        xs = x1 * torch.sigmoid(self.sweight * self.gn(x1) + self.sbias)
        out = torch.cat([xc, xs], 1).reshape(b, -1, h, w)
        return out.reshape(b, 2, -1, h, w).permute(0, 2, 1, 3, 4).reshape(b, -1, h, w)


class ConvShuffle(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.LeakyReLU()
        self.se = ShuffleAttention(cout, SA_G)

    def forward(self, x):
        return self.se(self.act(self.bn(self.conv(x))))


def conv3(cin, cout, ratlip):
    return ConvShuffle(cin, cout) if ratlip else nn.Conv2d(cin, cout, 3, 1, 1)


class MBlock(nn.Module):
    def __init__(self, cond, ratlip):
        super().__init__()
        self.conv1 = nn.Conv2d(CODE, MID, 3, 1, 1)
        self.fuse1 = DFBLK(cond, MID, ratlip)
        self.conv2 = conv3(MID, CODE, ratlip)
        self.fuse2 = DFBLK(cond, CODE, ratlip)

    def forward(self, x, c):
        return x + self.fuse2(self.conv2(self.fuse1(self.conv1(x), c)), c)


class GBlock(nn.Module):
    def __init__(self, cond, cin, cout, ratlip, size=None):
        super().__init__()
        self.size = size
        self.c1 = conv3(cin, cout, ratlip)
        self.c2 = conv3(cout, cout, ratlip)
        self.fuse1 = DFBLK(cond, cin)
        self.fuse2 = DFBLK(cond, cout)
        if cin != cout:
            self.c_sc = nn.Conv2d(cin, cout, 1)

    def forward(self, h, c):
        h = F.interpolate(h, size=(self.size, self.size)) if self.size else F.interpolate(h, scale_factor=2)
        sc = self.c_sc(h) if hasattr(self, "c_sc") else h
        return sc + self.c2(self.fuse2(self.c1(self.fuse1(h, c)), c))


class Adapter(nn.Module):
    def __init__(self, cond, ratlip, W):
        super().__init__()
        self.W = W
        self.FBlocks = nn.ModuleList([MBlock(cond, ratlip) for _ in range(MAP)])
        self.conv_fuse = nn.Conv2d(CODE, VW, 5, 1, 2)
        self.conv = nn.Conv2d(VW, 8 * NF, 5, 1, 2)
        self.fc_prompt = nn.Linear(cond, VW * len(PROMPTS))

    def forward(self, h, c):
        W, Bn = self.W, h.shape[0]
        prompts = self.fc_prompt(c).reshape(Bn, len(PROMPTS), VW)
        for blk in self.FBlocks:
            h = blk(h, c)
        Fb = self.conv_fuse(h)
        M = RC.prompted_mapper(W, Fb, prompts, PROMPTS)
        return self.conv(Fb + 0.1 * M)


class NetG(nn.Module):
    """GALIP / RATLIP generator (§2): fc_code, mapping (CLIP adapter), GBlocks, to_rgb (no tanh)."""

    def __init__(self, ratlip, W):
        super().__init__()
        cond = ZD + E
        self.fc_code = nn.Linear(ZD, CODE * GRID * GRID)
        self.mapping = Adapter(cond, ratlip, W)
        sizes = [p for p in (2 ** i for i in range(20)) if GRID < p < OUT] + [OUT]
        n = len(sizes)
        chans = [8 * NF] + [NF * min(2 ** (n - k), 8) for k in range(1, n + 1)]
        self.GBlocks = nn.ModuleList([GBlock(cond, chans[k], chans[k + 1], ratlip, sizes[k]) for k in range(n)])
        self.to_rgb = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(NF, 3, 3, 1, 1))

    def forward(self, z, s):
        c = torch.cat([z, s], 1)
        h = self.mapping(self.fc_code(z).reshape(z.shape[0], CODE, GRID, GRID), c)
        for blk in self.GBlocks:
            h = blk(h, c)
        return self.to_rgb(h)


class DBlock(nn.Module):
    def __init__(self, fin, fout, k=3, stride=1, clip_feat=False):
        super().__init__()
        self.stride = stride
        self.conv_r = nn.Sequential(nn.Conv2d(fin, fout, k, stride, 1, bias=False), nn.LeakyReLU(0.2),
                                    nn.Conv2d(fout, fout, 3, 1, 1, bias=False), nn.LeakyReLU(0.2))
        self.conv_s = nn.Conv2d(fin, fout, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        if clip_feat:
            self.beta = nn.Parameter(torch.zeros(1))
        self.learned = fin != fout

    def forward(self, x, Fx=None):
        r = self.conv_r(x)
        xs = self.conv_s(x) if self.learned else x
        if self.stride == 2:
            xs = F.avg_pool2d(xs, 2)
        out = xs + self.gamma * r
        return out + self.beta * Fx if Fx is not None else out


class NetD(nn.Module):
    """GALIP's NetD on CLIP features (§5.3)."""

    def __init__(self):
        super().__init__()
        self.DBlocks = nn.ModuleList([DBlock(VW, VW, clip_feat=True) for _ in range(len(TAPS) - 1)])
        self.main = DBlock(VW, 8 * D_NF)

    def forward(self, X):
        o = X[:, 0]
        for k, blk in enumerate(self.DBlocks):
            o = blk(o, X[:, k + 1])
        return self.main(o)


class NetC(nn.Module):
    def __init__(self, nf, k1, k2, pad1):
        super().__init__()
        self.joint_conv = nn.Sequential(nn.Conv2d(8 * nf + E, 2 * nf, k1, 1, pad1, bias=False), nn.LeakyReLU(0.2),
                                        nn.Conv2d(2 * nf, 1, k2, 1, 0, bias=False))

    def forward(self, f, s):
        st = s[:, :, None, None].expand(-1, -1, f.shape[2], f.shape[3])
        return self.joint_conv(torch.cat([f, st], 1)).reshape(-1)


class DfNetG(nn.Module):
    def __init__(self):
        super().__init__()
        cond = ZD + E
        self.fc = nn.Linear(ZD, 8 * DF_NF * 16)
        L = int(math.log2(DF_OUT))
        w = [DF_NF * min(2 ** i, 8) for i in range(L - 1)][::-1]
        self.GBlocks = nn.ModuleList([GBlock(cond, w[k], w[k + 1], False) for k in range(len(w) - 1)])
        self.to_rgb = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(DF_NF, 3, 3, 1, 1), nn.Tanh())

    def forward(self, z, s):
        c = torch.cat([z, s], 1)
        h = self.fc(z).reshape(z.shape[0], 8 * DF_NF, 4, 4)
        for blk in self.GBlocks:
            h = blk(h, c)
        return self.to_rgb(h)


class DfNetD(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_img = nn.Conv2d(3, DF_DNF, 3, 1, 1)
        L = int(math.log2(DF_OUT))
        w = [DF_DNF * min(2 ** i, 8) for i in range(L - 1)]
        self.DBlocks = nn.ModuleList([DBlock(w[k], w[k + 1], k=4, stride=2) for k in range(len(w) - 1)])

    def forward(self, x):
        h = self.conv_img(x)
        for blk in self.DBlocks:
            h = blk(h)
        return h


def perturb(*mods):
    """Released inits leave gates at 0 and second affine layers at 0/1; random values exercise every tensor."""
    for m in mods:
        for name, p in list(m.named_parameters()) + list(m.named_buffers()):
            if p.dtype.is_floating_point:
                with torch.no_grad():
                    if name.endswith("running_var"):
                        p.copy_(1 + 0.2 * torch.rand_like(p))
                    else:
                        p.add_(0.3 * (torch.rand_like(p) * 2 - 1))


def save_pth(name, G, D, C, W=None, ddp=False):
    g = G.state_dict()
    if W is not None:  # every released NetG checkpoint carries the frozen CLIP (fp16 from GPU runs)
        g.update({"mapping.CLIP_ViT." + k[len("visual."):]: v.half() for k, v in W.items() if k.startswith("visual.")})
    pre = "module." if ddp else ""
    ck = {"model": {"netG": OrderedDict((pre + k, v.float()) for k, v in g.items()),
                    "netD": OrderedDict((pre + k, v.float()) for k, v in D.state_dict().items()),
                    "netC": OrderedDict((pre + k, v.float()) for k, v in C.state_dict().items())},
          "optimizers": {}, "epoch": 7}
    torch.save(ck, os.path.join(OUT_DIR, name + ".pth"))


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    torch.set_default_dtype(torch.float32)
    seed(21)
    W = {k: v.float() for k, v in RC.make_weights().items()}
    x = torch.rand(B, 3, OUT, OUT) * 2 - 1
    xd = torch.rand(B, 3, DF_OUT, DF_OUT) * 2 - 1
    s = torch.randn(B, E)
    z = torch.randn(B, ZD)
    out = {f"clip.{k}": v for k, v in W.items() if k.startswith("visual.")}
    out.update(x=x, x_dfgan=xd, s=s, z=z)
    with torch.no_grad():
        for name, ratlip in (("galip", False), ("ratlip", True)):
            G, D, C = NetG(ratlip, W), NetD(), NetC(D_NF, GRID // 2 + 1, GRID - (GRID // 2 + 1) + 1, 0)
            perturb(G, D, C)
            G.eval()
            out[name + ".fake"] = G(z, s)
            w = RC.galip_transform(x, RC.CFG["image"])
            xx = RC.vision_embed(W, w)
            taps = []
            for i in range(LAYERS):
                xx = RC.vblock(W, i, xx)
                if i in TAPS:
                    taps.append(xx[:, 1:].transpose(1, 2).reshape(B, VW, GRID, GRID))
            out[name + ".logits"] = C(D(torch.stack(taps, 1)), s)
            save_pth(name, G, D, C, W, ddp=ratlip)
        G, D, C = DfNetG(), DfNetD(), NetC(DF_DNF, 3, 4, 1)
        perturb(G, D, C)
        G.eval()
        out["dfgan.fake"] = G(z, s)
        out["dfgan.logits"] = C(D(xd), s)
        save_pth("dfgan", G, D, C)
    save_safetensors(os.path.join(OUT_DIR, "outputs.safetensors"), out, {"torch": torch.__version__,
                                                                        "generator": "ref_released.py"})
    print("wrote", os.path.normpath(OUT_DIR))


if __name__ == "__main__":
    main()
