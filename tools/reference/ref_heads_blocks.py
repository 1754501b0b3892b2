"""Golden fixtures for the generator_block types (plugins/gblock.c) and the discriminator_head types
(plugins/heads.c), written from the equations of ../shared/reference/ratlip-reference.md §2.5-2.6 (G_Block, DF
fusion block), §5.4-5.5 (GALIP and DF-GAN NetC) and Miyato and Koyama 2018 eq. (3) (projection), not from the
released code.

Every case stores the parameters under ratfw's names, the inputs, the output, the gradients of <out, R> (R fixed
random) w.r.t. every parameter and input; head cases also store MA-GP (k = 2, p = 6 as released) computed through
a double backward and its gradient w.r.t. every head parameter.
"""
import math

import torch
import torch.nn.functional as F

from common import Fixture, seed
from ref_conditioners import Params, modulate, mlp, record

torch.set_default_dtype(torch.float64)


def u(shape, b):
    return (torch.rand(shape) * 2 - 1) * b


def linear_p(P, n, fin, fout, bias=True):
    b = 1 / math.sqrt(fin)
    P.add(n + ".weight", u((fout, fin), b))
    if bias:
        P.add(n + ".bias", u((fout,), b))


def conv_p(P, n, cin, cout, k, bias=True):
    b = 1 / math.sqrt(cin * k * k)
    P.add(n + ".weight", u((cout, cin, k, k), b))
    if bias:
        P.add(n + ".bias", u((cout,), b))


# ---- G_Block (§2.5): up_nearest(h, size); shortcut(h) + c2(fuse2(c1(fuse1(h, c)), c)) ----

def affine_p(P, n, C, din):
    for name, base in (("gamma", 1.0), ("beta", 0.0)):
        linear_p(P, f"{n}.{name}.fc1", din, C)
        P.add(f"{n}.{name}.fc2.weight", u((C, C), 0.3))  # released init 0 / base; random keeps gradients alive
        P.add(f"{n}.{name}.fc2.bias", base + u((C,), 0.1))


def gblock_p(P, cin, cout, din):
    if cin != cout:
        conv_p(P, "c_sc", cin, cout, 1)
    affine_p(P, "fuse1.affine0", cin, din)
    affine_p(P, "fuse1.affine1", cin, din)
    conv_p(P, "c1.conv", cin, cout, 3)
    affine_p(P, "fuse2.affine0", cout, din)
    affine_p(P, "fuse2.affine1", cout, din)
    conv_p(P, "c2.conv", cout, cout, 3)


def fuse(P, n, x, c):
    x = F.leaky_relu(modulate(x, mlp(P, n + ".affine0.gamma", c), mlp(P, n + ".affine0.beta", c)), 0.2)
    return F.leaky_relu(modulate(x, mlp(P, n + ".affine1.gamma", c), mlp(P, n + ".affine1.beta", c)), 0.2)


def gblock(P, h, c, size):
    h = F.interpolate(h, size=(size, size), mode="nearest")
    sc = F.conv2d(h, P["c_sc.weight"], P["c_sc.bias"]) if "c_sc.weight" in P else h
    r = F.conv2d(fuse(P, "fuse1", h, c), P["c1.conv.weight"], P["c1.conv.bias"], padding=1)
    r = F.conv2d(fuse(P, "fuse2", r, c), P["c2.conv.weight"], P["c2.conv.bias"], padding=1)
    return sc + r


# ---- heads ----

def netc(P, f, s, k1pad):
    B, E = s.shape
    st = s.reshape(B, E, 1, 1).expand(B, E, f.shape[2], f.shape[3])
    h = F.conv2d(torch.cat([f, st], 1), P["0.weight"], None, padding=k1pad)
    return F.conv2d(F.leaky_relu(h, 0.2), P["2.weight"], None).reshape(B)


def projection(P, f, s, conditional, pool):
    r = F.relu(f)
    phi = r.sum((2, 3)) if pool == "sum" else r.mean((2, 3))
    logit = F.linear(phi, P["linear.weight"], P["linear.bias"]).reshape(-1)
    if conditional:
        logit = logit + (F.linear(s, P["embed.weight"]) * phi).sum(1)
    return logit


def ma_gp(logits, f, s, k=2.0, p=6.0):
    ins = (f, s) if s is not None else (f,)
    g = torch.autograd.grad(logits.sum(), ins, create_graph=True)
    nsq = sum(gi.reshape(gi.shape[0], -1).pow(2).sum(1) for gi in g)
    return k * nsq.pow(p / 2).mean()


def head_case(fx, name, P, f, s, fn, conditional):
    out = fn()
    gp = ma_gp(out, f, s if conditional else None)
    gp_grads = torch.autograd.grad(gp, list(P.values()), allow_unused=True)
    extra = {"gp": gp.detach().reshape(1)}
    for (k, v), g in zip(P.items(), gp_grads):
        extra["gp_grad." + k] = g if g is not None else torch.zeros_like(v)  # a bias does not reach d logit / d f
    record(fx, name, P, {"f": f, "s": s}, fn, extra=extra)


def main():
    seed(0)
    fx = Fixture("heads_blocks")
    B, E, C, NF = 3, 6, 8, 2

    # GALIP NetC on a 5 x 5 grid: k1 = 3, k2 = 3; hidden 2 nf = 4
    P = Params()
    P.add("0.weight", u((2 * NF, C + E, 3, 3), 0.2))
    P.add("2.weight", u((1, 2 * NF, 3, 3), 0.3))
    f = (torch.randn(B, C, 5, 5) * 0.5).requires_grad_(True)
    s = torch.randn(B, E).requires_grad_(True)
    head_case(fx, "galip_netc", P, f, s, lambda: netc(P, f, s, 0), True)

    # DF-GAN NetC on 4 x 4: 3x3 pad 1 then 4x4
    P = Params()
    P.add("0.weight", u((2 * NF, C + E, 3, 3), 0.2))
    P.add("2.weight", u((1, 2 * NF, 4, 4), 0.3))
    f = (torch.randn(B, C, 4, 4) * 0.5).requires_grad_(True)
    s = torch.randn(B, E).requires_grad_(True)
    head_case(fx, "dfgan_netc", P, f, s, lambda: netc(P, f, s, 1), True)

    # projection (sum and mean pooling) and unconditional on a 3 x 3 grid
    for name, cond, pool in (("projection", True, "sum"), ("projection_mean", True, "mean"),
                             ("unconditional", False, "sum")):
        P = Params()
        linear_p(P, "linear", C, 1)
        if cond:
            linear_p(P, "embed", E, C, bias=False)
        f = torch.randn(B, C, 3, 3).requires_grad_(True)
        s = torch.randn(B, E).requires_grad_(True)
        head_case(fx, name, P, f, s, lambda: projection(P, f, s, cond, pool), cond)

    # G_Blocks: galip_block 6 -> 4 channels, 3 x 3 -> 5 x 5 (learnable shortcut, non-uniform nearest);
    # dfgan_block 4 -> 4 channels, 3 x 3 -> 6 x 6 (identity shortcut, x2)
    din = 5
    for name, cin, cout, hw, size in (("galip_block", 6, 4, 3, 5), ("dfgan_block", 4, 4, 3, 6)):
        P = Params()
        gblock_p(P, cin, cout, din)
        h = torch.randn(B, cin, hw, hw).requires_grad_(True)
        c = torch.randn(B, din).requires_grad_(True)
        record(fx, name, P, {"h": h, "cond": c}, lambda: gblock(P, h, c, size))
    fx.save()


if __name__ == "__main__":
    main()
