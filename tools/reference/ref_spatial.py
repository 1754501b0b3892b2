"""Golden fixtures for ratfw's feature-map normalisation and resampling (core/ops/norm.c, core/ops/resample.c).

Writes tests/fixtures/spatial_norm.safetensors (batch norm train/eval with running stats, group norm, instance norm)
and tests/fixtures/spatial_resample.safetensors (legacy nearest to an explicit size, bilinear both align_corners).
Inputs are float32; references (outputs and gradients of <gy, y> w.r.t. every input) are computed in float64.
Run with Debian's torch: /usr/bin/python3 tools/reference/ref_spatial.py
"""
import torch
import torch.nn.functional as F

from common import Fixture, grads, seed


def leaf64(t):
    return t.detach().to(torch.float64).requires_grad_(True)


def norm_case(fx, op, x, w=None, b=None, **kw):
    """op: batch_train, batch_eval, group, instance. Stores inputs (float32) and float64 references."""
    x64 = leaf64(x)
    w64 = leaf64(w) if w is not None else None
    b64 = leaf64(b) if b is not None else None
    eps = kw.get("eps", 1e-5)
    tensors = {"x": x}
    meta = {"op": op, "eps": eps, "shape": list(x.shape)}
    if op in ("batch_train", "batch_eval"):
        C = x.shape[1]
        rm = torch.randn(C) * 0.5
        rv = torch.rand(C) + 0.5
        rm64, rv64 = rm.double(), rv.double()
        momentum = kw.get("momentum", 0.1)
        y = F.batch_norm(x64, rm64, rv64, w64, b64, training=(op == "batch_train"), momentum=momentum, eps=eps)
        tensors.update(rm=rm, rv=rv, rm_out=rm64, rv_out=rv64)  # rm64/rv64 were updated in place when training
        meta["momentum"] = momentum
    elif op == "group":
        y = F.group_norm(x64, kw["groups"], w64, b64, eps=eps)
        meta["groups"] = kw["groups"]
    elif op == "instance":
        y = F.instance_norm(x64, weight=w64, bias=b64, eps=eps)
    else:
        raise ValueError(op)
    gy = torch.randn(y.shape)
    ins = [t for t in (x64, w64, b64) if t is not None]
    gs = grads(y, ins, gy.double())
    tensors.update(gy=gy, y=y, gx=gs[0])
    k = 1
    if w is not None:
        tensors.update(w=w, gw=gs[k])
        k += 1
    if b is not None:
        tensors.update(b=b, gb=gs[k])
    fx.case(**meta, **tensors)


def make_norm():
    fx = Fixture("spatial_norm")
    # batch norm, training: 4-D (also run channels-last by the test), non-zero mean; 2-D; 3-D; no affine
    x = torch.randn(4, 6, 5, 7) * 1.5 + 3.0
    norm_case(fx, "batch_train", x, torch.rand(6) + 0.5, torch.randn(6))
    norm_case(fx, "batch_train", torch.randn(8, 5), torch.rand(5) + 0.5, torch.randn(5), momentum=0.3, eps=1e-3)
    norm_case(fx, "batch_train", torch.randn(3, 4, 10) - 2.0, torch.rand(4) + 0.5, torch.randn(4))
    norm_case(fx, "batch_train", torch.randn(2, 3, 4, 4))
    # the shape used by a tiny generator stage: large mean offset exercises the shifted one-pass variance
    norm_case(fx, "batch_train", torch.randn(2, 16, 6, 6) * 0.01 + 100.0, torch.rand(16) + 0.5, torch.randn(16))
    # batch norm, eval: running statistics
    norm_case(fx, "batch_eval", torch.randn(4, 6, 5, 7), torch.rand(6) + 0.5, torch.randn(6))
    norm_case(fx, "batch_eval", torch.randn(5, 3))
    # group norm: G = C (shuffle attention), G < C, G = 1; without affine
    x = torch.randn(3, 6, 5, 4) * 2.0 - 1.0
    for G in (6, 3, 2, 1):
        norm_case(fx, "group", x, torch.rand(6) + 0.5, torch.randn(6), groups=G)
    norm_case(fx, "group", torch.randn(2, 8, 3, 5), groups=4)
    norm_case(fx, "group", torch.randn(2, 4, 9), torch.rand(4) + 0.5, torch.randn(4), groups=2, eps=1e-3)
    # instance norm: per sample and channel, with and without affine
    norm_case(fx, "instance", torch.randn(3, 4, 6, 5) + 0.5, torch.rand(4) + 0.5, torch.randn(4))
    norm_case(fx, "instance", torch.randn(2, 5, 4, 4))
    fx.save()


def resample_case(fx, op, x, size, align=False):
    x64 = leaf64(x)
    if op == "nearest":
        y = F.interpolate(x64, size=size, mode="nearest")
    else:
        y = F.interpolate(x64, size=size, mode="bilinear", align_corners=align, antialias=False)
    gy = torch.randn(y.shape)
    (gx,) = grads(y, [x64], gy.double())
    extra = {}
    if op == "bilinear":
        # torch's float32 kernel computes source positions in float32: ~1e-5 from the float64 reference at 224+
        x32 = x.detach().clone().requires_grad_(True)
        y32 = F.interpolate(x32, size=size, mode="bilinear", align_corners=align, antialias=False)
        (gx32,) = grads(y32, [x32], gy)
        extra = {"y32": y32, "gx32": gx32}
    fx.case(op=op, align_corners=align, out_h=size[0], out_w=size[1], shape=list(x.shape), x=x, gy=gy, y=y, gx=gx,
            **extra)


def make_resample():
    fx = Fixture("spatial_resample")
    # nearest (legacy index rule with an explicit size)
    resample_case(fx, "nearest", torch.randn(2, 3, 7, 7), (8, 8))
    resample_case(fx, "nearest", torch.randn(2, 3, 8, 8), (16, 16))
    resample_case(fx, "nearest", torch.randn(1, 1, 128, 5), (224, 7))  # 128->224 along H (non-uniform)
    resample_case(fx, "nearest", torch.randn(1, 1, 6, 128), (9, 224))  # and along W
    resample_case(fx, "nearest", torch.randn(1, 1, 256, 5), (224, 4))  # 256->224 downsampling along H
    resample_case(fx, "nearest", torch.randn(1, 1, 5, 256), (3, 224))  # and along W
    resample_case(fx, "nearest", torch.randn(2, 3, 5, 7), (12, 3))
    # bilinear, both align_corners, up and down
    for align in (False, True):
        resample_case(fx, "bilinear", torch.randn(1, 1, 224, 3), (299, 4), align)  # 224->299 along H
        resample_case(fx, "bilinear", torch.randn(1, 1, 3, 224), (4, 299), align)  # along W
        resample_case(fx, "bilinear", torch.randn(2, 3, 5, 7), (9, 4), align)
        resample_case(fx, "bilinear", torch.randn(2, 3, 11, 9), (4, 5), align)
        resample_case(fx, "bilinear", torch.randn(1, 2, 5, 6), (1, 3), align)
    fx.save()


if __name__ == "__main__":
    seed(1234)
    make_norm()
    make_resample()
