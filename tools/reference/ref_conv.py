"""Golden fixtures for convolution and pooling (tests/test-conv.c) and for the MA-GP gradient penalty through a
small DF-GAN-like discriminator (tests/test-gradient-penalty.c). PyTorch 1.13 semantics, computed in float64 from
float32 inputs. Writes tests/fixtures/conv.safetensors, conv_patch.safetensors, gradient_penalty.safetensors.

MA-GP (DF-GAN lib/modules.py MA_GP, reference section 6.1): P = 2 * mean_n ||concat(dD/dx_n, dD/ds_n)||_2^6 with
grad_outputs = ones and create_graph=True, then dP/dtheta by a second backward.
"""
import torch
import torch.nn.functional as F

from common import Fixture, seed


def f32(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).float()


def conv_case(fx, name, x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, bias=True):
    pair = lambda v: list(v) if isinstance(v, (tuple, list)) else [v, v]
    x = f32(*x_shape)
    w = f32(*w_shape, scale=(w_shape[1] * w_shape[2] * w_shape[3]) ** -0.5)
    b = f32(w_shape[0]) if bias else None
    xd = x.double().requires_grad_()
    wd = w.double().requires_grad_()
    bd = b.double().requires_grad_() if bias else None
    y = F.conv2d(xd, wd, bd, stride=stride, padding=padding, dilation=dilation, groups=groups)
    gy = f32(*y.shape)
    ins = [xd, wd] + ([bd] if bias else [])
    gs = torch.autograd.grad(y, ins, gy.double())
    kw = dict(x=x, w=w, gy=gy, y=y.detach(), gx=gs[0], gw=gs[1])
    if bias:
        kw.update(b=b, gb=gs[2])
    fx.case(op="conv2d", name=name, stride=pair(stride), padding=pair(padding), dilation=pair(dilation),
            groups=groups, bias=bias, **kw)


def conv_double_case(fx, name, x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """gx, gw with create_graph; L = sum(gx * v) + sum(gw * u); dL/dx, dL/dw, dL/dgy."""
    pair = lambda v: list(v) if isinstance(v, (tuple, list)) else [v, v]
    x = f32(*x_shape)
    w = f32(*w_shape, scale=(w_shape[1] * w_shape[2] * w_shape[3]) ** -0.5)
    b = f32(w_shape[0])
    xd, wd, bd = (t.double().requires_grad_() for t in (x, w, b))
    y = F.conv2d(xd, wd, bd, stride=stride, padding=padding, dilation=dilation, groups=groups)
    gy = f32(*y.shape)
    gyd = gy.double().requires_grad_()
    gx, gw = torch.autograd.grad(y, [xd, wd], gyd, create_graph=True)
    v = f32(*x.shape)
    u = f32(*w.shape)
    L = (gx * v.double()).sum() + (gw * u.double()).sum()
    dx, dw, dgy = torch.autograd.grad(L, [xd, wd, gyd], allow_unused=True)
    fx.case(op="conv_double", name=name, stride=pair(stride), padding=pair(padding), dilation=pair(dilation),
            groups=groups, x=x, w=w, b=b, gy=gy, v=v, u=u, gx=gx.detach(), gw=gw.detach(), dx=dx, dw=dw, dgy=dgy)


def pool_case(fx, name, x_shape, k, s):
    x = f32(*x_shape)
    xd = x.double().requires_grad_()
    y = F.avg_pool2d(xd, k, s) if k else F.adaptive_avg_pool2d(xd, 1)
    gy = f32(*y.shape)
    (gx,) = torch.autograd.grad(y, [xd], gy.double())
    fx.case(op="avg_pool2d" if k else "adaptive_avg_pool2d_1", name=name, k=k, s=s, x=x, gy=gy, y=y.detach(), gx=gx)


def main_conv():
    seed(0)
    fx = Fixture("conv")
    conv_case(fx, "3x3 pad 1 bias", (2, 4, 6, 6), (5, 4, 3, 3), padding=1)
    conv_case(fx, "3x3 pad 1 no bias", (2, 4, 6, 5), (5, 4, 3, 3), padding=1, bias=False)
    conv_case(fx, "1x1", (2, 6, 5, 5), (4, 6, 1, 1))
    conv_case(fx, "4x4 stride 2 pad 1 no bias", (2, 3, 8, 8), (4, 3, 4, 4), stride=2, padding=1, bias=False)
    conv_case(fx, "4x4 stride 1 pad 0", (2, 5, 7, 7), (3, 5, 4, 4))
    conv_case(fx, "5x5 pad 2", (1, 4, 7, 7), (6, 4, 5, 5), padding=2)
    conv_case(fx, "3x3 stride 2 pad 0 (window misses the last row)", (2, 3, 8, 8), (4, 3, 3, 3), stride=2)
    conv_case(fx, "grouped 2", (2, 6, 5, 5), (4, 3, 3, 3), padding=1, groups=2)
    conv_case(fx, "depthwise", (2, 4, 6, 6), (8, 1, 3, 3), padding=1, groups=4)
    conv_case(fx, "dilated 2", (2, 3, 9, 9), (4, 3, 3, 3), padding=2, dilation=2)
    conv_case(fx, "asymmetric 3x2 stride (2,1) pad (1,0) dilation (1,2)", (2, 3, 7, 8), (4, 3, 3, 2),
              stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    conv_case(fx, "wide 3x3 (32 channels)", (2, 32, 4, 4), (16, 32, 3, 3), padding=1)
    conv_double_case(fx, "double 3x3 pad 1", (2, 3, 5, 5), (4, 3, 3, 3), padding=1)
    conv_double_case(fx, "double grouped stride 2", (2, 4, 6, 6), (6, 2, 3, 3), stride=2, padding=1, groups=2)
    pool_case(fx, "avg 2/2", (2, 3, 6, 6), 2, 2)
    pool_case(fx, "avg 3/2 overlapping", (2, 5, 7, 8), 3, 2)
    pool_case(fx, "avg 2/2 odd size", (1, 4, 5, 7), 2, 2)
    pool_case(fx, "adaptive 1x1", (2, 6, 3, 4), 0, 0)
    fx.save()

    seed(1)
    fx = Fixture("conv_patch")
    conv_case(fx, "32x32 stride 32 (CLIP patchify)", (1, 3, 64, 64), (4, 3, 32, 32), stride=32, bias=False)
    fx.save()


class SmallD(torch.nn.Module):
    """conv3x3 -> lrelu -> conv4x4/2 -> lrelu -> concat(s tiled) -> conv4x4 -> one logit per sample."""

    def __init__(self, cin=3, c1=16, c2=32, s_dim=8):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, c1, 3, 1, 1, bias=True)
        self.conv2 = torch.nn.Conv2d(c1, c2, 4, 2, 1, bias=False)
        self.conv3 = torch.nn.Conv2d(c2 + s_dim, 1, 4, 1, 0, bias=True)

    def forward(self, x, s):
        h = F.leaky_relu(self.conv1(x), 0.2)
        h = F.leaky_relu(self.conv2(h), 0.2)
        st = s.view(s.shape[0], -1, 1, 1).repeat(1, 1, h.shape[2], h.shape[3])
        return self.conv3(torch.cat([h, st], 1)).view(-1)


def main_gp():
    seed(2)
    d = SmallD()
    with torch.no_grad():  # gradient norms near 1, so the 6th power is neither tiny nor huge
        d.conv3.weight.mul_(5.0)
    x = f32(4, 3, 8, 8)
    s = f32(4, 8)
    params32 = {k: v.detach().clone().float() for k, v in d.named_parameters()}
    d = d.double()
    xd = x.double().requires_grad_()
    sd = s.double().requires_grad_()
    out = d(xd, sd)
    gx, gs = torch.autograd.grad(out, (xd, sd), torch.ones_like(out), create_graph=True)
    g = torch.cat((gx.view(gx.size(0), -1), gs.view(gs.size(0), -1)), 1)
    norm = g.norm(2, dim=1)
    penalty = 2.0 * torch.mean(norm ** 6)
    names = [k for k, _ in d.named_parameters()]
    plist = [p for _, p in d.named_parameters()]
    pgrads = torch.autograd.grad(penalty, plist, allow_unused=True)
    # biases only move the LeakyReLU kinks: their second-order gradient is zero (None in torch)
    pgrads = [torch.zeros_like(p) if gr is None else gr for p, gr in zip(plist, pgrads)]
    fx = Fixture("gradient_penalty")
    kw = dict(x=x, s=s, out=out.detach(), norm=norm.detach(), penalty=penalty.detach().view(1))
    for k in names:
        kw["p." + k] = params32[k]
        kw["g." + k] = pgrads[names.index(k)]
    fx.case(op="ma_gp", k=2.0, p=6, slope=0.2, params=names, **kw)
    fx.save()
    print("penalty", penalty.item(), "norms", norm.tolist())


if __name__ == "__main__":
    main_conv()
    main_gp()
