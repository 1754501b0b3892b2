"""Golden fixtures for the transformer / RNN pieces: matmul, linear (matmul.safetensors) and softmax, log_softmax,
cross_entropy, layer_norm, embedding, scaled dot-product attention, LSTM cell / unrolled LSTM, cosine similarity
(nnops.safetensors). Inputs are float32; references and gradients are computed in float64 by torch 1.13.

Non-contiguous operands: a tensor stored under a name with a flag ('ta': True) is the storage the C test loads;
the operand is its transpose (a view), and the stored gradient is the gradient w.r.t. that storage.
"""
import math

import torch
import torch.nn.functional as F

from common import Fixture, grads, seed


def f32(*shape, scale=1.0, offset=0.0):
    return (torch.randn(tuple(shape)) * scale + offset).float()


def leaf(t):
    return t.double().requires_grad_(True)


def round_params(module):
    """Rounds float64 parameters to float32 values, so the stored (float32) weights are exactly the ones used."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.float().double())


def matmul_cases():
    fx = Fixture("matmul")

    def mm(a_shape, b_shape, ta=False, tb=False, name=""):
        a = f32(*(a_shape[:-2] + (a_shape[-1], a_shape[-2]) if ta else a_shape))
        b = f32(*(b_shape[:-2] + (b_shape[-1], b_shape[-2]) if tb else b_shape))
        A, B = leaf(a), leaf(b)
        y = torch.matmul(A.transpose(-1, -2) if ta else A, B.transpose(-1, -2) if tb else B)
        gy = f32(*y.shape)
        ga, gb = grads(y, [A, B], gy.double())
        fx.case(op="matmul", name=name, ta=ta, tb=tb, a=a, b=b, y=y, gy=gy, ga=ga, gb=gb)

    mm((5, 7), (7, 3), name="2d")
    mm((2, 1, 4, 6), (3, 6, 5), name="batch broadcast")
    mm((6,), (2, 6, 3), name="1d @ batched")
    mm((3, 4, 6), (6,), name="batched @ 1d")
    mm((6,), (6,), name="dot")
    mm((5, 6), (6,), name="matrix-vector")
    mm((6, 5), (5, 4), ta=True, tb=True, name="transposed views")
    mm((2, 3, 8), (8, 4), name="fold batch into M")
    mm((2, 3, 8), (8, 4), tb=True, name="fold, transposed weight")
    mm((4, 6), (3, 6, 5), name="2d @ batched")
    mm((2, 3, 4, 6), (2, 3, 6, 5), ta=True, name="batched transposed a")
    mm((1, 9), (9, 7), name="row vector (gemv path)")

    def lin(x_shape, out, bias=True, wt=False, name=""):
        x = f32(*x_shape)
        n_in = x_shape[-1]
        w = f32(n_in, out) if wt else f32(out, n_in)
        b = f32(out)
        X, W, Bb = leaf(x), leaf(w), leaf(b)
        y = F.linear(X, W.t() if wt else W, Bb if bias else None)
        gy = f32(*y.shape)
        gx, gw, gb = grads(y, [X, W, Bb], gy.double())
        kw = dict(b=b, gb=gb) if bias else {}
        fx.case(op="linear", name=name, bias=bias, tw=wt, x=x, w=w, y=y, gy=gy, gx=gx, gw=gw, **kw)

    lin((2, 3, 8), 5, name="3d input")
    lin((4, 8), 5, wt=True, name="transposed weight view")
    lin((4, 8), 5, bias=False, name="no bias")
    lin((8,), 3, name="1d input")
    fx.save()


def attention_ref(q, k, v, causal, scale):
    s = q @ k.transpose(-1, -2) * scale
    if causal:
        L, S = s.shape[-2], s.shape[-1]
        mask = torch.ones(L, S, dtype=torch.bool).triu(1)
        s = s.masked_fill(mask, float("-inf"))
    return torch.softmax(s, -1) @ v


def nnops_cases():
    fx = Fixture("nnops")

    # softmax / log_softmax along several axes; 'tx' = the operand is the transpose of the stored [.., a, b] pair
    for op, fn in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
        for axis, tx in ((-1, False), (1, False), (0, False), (-1, True)):
            x = f32(3, 4, 5, scale=2.0)
            X = leaf(x)
            y = fn(X.transpose(-1, -2) if tx else X, axis)
            gy = f32(*y.shape)
            (gx,) = grads(y, [X], gy.double())
            fx.case(op=op, axis=axis, tx=tx, x=x, y=y, gy=gy, gx=gx)

    # cross-entropy (mean), large logits to check stability
    x = f32(6, 5, scale=3.0, offset=50.0)
    t = torch.tensor([0, 4, 2, 2, 1, 3], dtype=torch.int32)
    X = leaf(x)
    y = F.cross_entropy(X, t.long())
    (gx,) = grads(y, [X], torch.tensor(0.7, dtype=torch.float64))
    fx.case(op="cross_entropy", x=x, t=t, y=y, gy=torch.tensor(0.7), gx=gx)

    # layer norm: affine, no affine, large mean
    for affine, offset in ((True, 0.0), (False, 0.0), (True, 100.0)):
        x = f32(2, 3, 16, offset=offset)
        w, b = f32(16, scale=0.5, offset=1.0), f32(16, scale=0.5)
        X, W, Bb = leaf(x), leaf(w), leaf(b)
        y = F.layer_norm(X, (16,), W if affine else None, Bb if affine else None, 1e-5)
        gy = f32(*y.shape)
        gx, gw, gb = grads(y, [X, W, Bb], gy.double())
        kw = dict(w=w, b=b, gw=gw, gb=gb) if affine else {}
        fx.case(op="layer_norm", affine=affine, eps=1e-5, x=x, y=y, gy=gy, gx=gx, **kw)

    # embedding with repeated ids
    w = f32(10, 6)
    ids = torch.tensor([[1, 3, 3, 9, 0], [3, 5, 1, 1, 7]], dtype=torch.int32)
    W = leaf(w)
    y = F.embedding(ids.long(), W)
    gy = f32(*y.shape)
    (gw,) = grads(y, [W], gy.double())
    fx.case(op="embedding", w=w, ids=ids, y=y, gy=gy, gw=gw)

    # attention on separate q, k, v
    for causal in (False, True):
        q, k, v = f32(2, 3, 5, 4), f32(2, 3, 5, 4), f32(2, 3, 5, 4)
        Q, K, V = leaf(q), leaf(k), leaf(v)
        scale = 0.5
        y = attention_ref(Q, K, V, causal, scale)
        gy = f32(*y.shape)
        gq, gk, gv = grads(y, [Q, K, V], gy.double())
        fx.case(op="attention", causal=causal, scale=scale, q=q, k=k, v=v, y=y, gy=gy, gq=gq, gk=gk, gv=gv)

    # attention with q, k, v sliced from a packed [B, L, 3E] projection (CLIP's in_proj layout), H heads of D
    B, L, H, D = 2, 6, 2, 4
    E = H * D
    for causal in (False, True):
        p = f32(B, L, 3 * E)
        P = leaf(p)
        q, k, v = (P[..., i * E:(i + 1) * E].reshape(B, L, H, D).transpose(1, 2) for i in range(3))
        y = attention_ref(q, k, v, causal, 1.0 / math.sqrt(D))
        gy = f32(*y.shape)
        (gp,) = grads(y, [P], gy.double())
        fx.case(op="attention_packed", causal=causal, heads=H, scale=1.0 / math.sqrt(D), p=p, y=y, gy=gy, gp=gp)

    # one LSTM cell step against torch.nn.LSTMCell
    Bn, In, Hh = 3, 5, 4
    cell = torch.nn.LSTMCell(In, Hh).double()
    round_params(cell)
    x, h, c = f32(Bn, In), f32(Bn, Hh), f32(Bn, Hh)
    X, Hx, Cx = leaf(x), leaf(h), leaf(c)
    h1, c1 = cell(X, (Hx, Cx))
    gh, gc = f32(Bn, Hh), f32(Bn, Hh)
    params = [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
    g = torch.autograd.grad([h1, c1], [X, Hx, Cx] + params, [gh.double(), gc.double()])
    fx.case(op="lstm_cell", x=x, h=h, c=c, w_ih=cell.weight_ih, w_hh=cell.weight_hh, b_ih=cell.bias_ih,
            b_hh=cell.bias_hh, h1=h1, c1=c1, gh=gh, gc=gc, gx=g[0], gh0=g[1], gc0=g[2], gw_ih=g[3], gw_hh=g[4],
            gb_ih=g[5], gb_hh=g[6])

    # torch.nn.LSTM(batch_first=True) over T steps: backprop through time
    T = 4
    lstm = torch.nn.LSTM(In, Hh, batch_first=True).double()
    round_params(lstm)
    x, h0, c0 = f32(2, T, In), f32(1, 2, Hh), f32(1, 2, Hh)
    X, H0, C0 = leaf(x), leaf(h0), leaf(c0)
    out, (hn, cn) = lstm(X, (H0, C0))
    gy = f32(*out.shape)
    params = [lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0]
    g = torch.autograd.grad(out, [X, H0, C0] + params, gy.double())
    fx.case(op="lstm_seq", steps=T, x=x, h0=h0[0], c0=c0[0], w_ih=params[0], w_hh=params[1], b_ih=params[2],
            b_hh=params[3], y=out, cn=cn[0], gy=gy, gx=g[0], gh0=g[1][0], gc0=g[2][0], gw_ih=g[3], gw_hh=g[4],
            gb_ih=g[5], gb_hh=g[6])

    # cosine similarity: plain, broadcasting, and a row below eps (torch 1.13 clamps each squared norm at eps^2)
    for a_shape, b_shape, axis, eps, tiny in (((4, 6), (4, 6), 1, 1e-8, False), ((3, 1, 5), (4, 5), -1, 1e-8, False),
                                              ((4, 6), (4, 6), 1, 1e-3, True), ((5, 3), (5, 3), 0, 1e-8, False)):
        a, b = f32(*a_shape), f32(*b_shape)
        if tiny:
            a[0] *= 1e-5
        A, Bb = leaf(a), leaf(b)
        y = F.cosine_similarity(A, Bb, dim=axis, eps=eps)
        gy = f32(*y.shape)
        ga, gb = grads(y, [A, Bb], gy.double())
        fx.case(op="cosine", axis=axis, eps=eps, a=a, b=b, y=y, gy=gy, ga=ga, gb=gb)
    fx.save()


if __name__ == "__main__":
    seed(0)
    matmul_cases()
    seed(1)
    nnops_cases()
