"""Golden fixtures for ratfw's elementwise ops and reductions (tests/test-elementwise.c).

Writes tests/fixtures/elementwise.safetensors (elementwise, broadcasting, 0-d and empty operands) and
tests/fixtures/elementwise-reduce.safetensors (sum/mean over every axis set, sum_to, max, large-input precision).
Each case stores float32 inputs in0.., the float64-computed outputs y0.., random output gradients gy0.. and the
input gradients g0.. of sum_k <gy_k, y_k>. Run with Debian's torch 1.13: /usr/bin/python3 ref_elementwise.py
"""
import itertools

import torch

from common import Fixture, seed


def add_case(fx, op, inputs, fn, grad=None, **params):
    """inputs: list of float32 tensors; fn(*float64 tensors) -> tensor or tuple; grad: indices of inputs that
    take a gradient (default: all)."""
    grad = list(range(len(inputs))) if grad is None else grad
    xs = [t.double().requires_grad_(i in grad) for i, t in enumerate(inputs)]
    out = fn(*xs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    gys = [torch.randn(o.shape, dtype=torch.float32) for o in outs]
    tensors = {}
    for i, t in enumerate(inputs):
        tensors[f"in{i}"] = t.float()
    for k, (o, g) in enumerate(zip(outs, gys)):
        tensors[f"y{k}"] = o.detach().float()
        tensors[f"gy{k}"] = g
    if grad and any(o.requires_grad for o in outs):
        diff = [o for o in outs if o.requires_grad]
        dgy = [g.double() for o, g in zip(outs, gys) if o.requires_grad]
        gs = torch.autograd.grad(diff, [xs[i] for i in grad], dgy, allow_unused=True)
        for i, g in zip(grad, gs):
            tensors[f"g{i}"] = (g if g is not None else torch.zeros_like(xs[i])).detach().float()
    fx.case(op=op, params=params, n_in=len(inputs), n_out=len(outs), grad=grad, **tensors)


def rnd(*shape, lo=-2.0, hi=2.0):
    return torch.empty(shape, dtype=torch.float32).uniform_(lo, hi)


def away_from_zero(*shape, lo=0.5, hi=1.5):
    """Values with |v| in [lo, hi] and random sign (divisors, kinks kept away)."""
    v = rnd(*shape, lo=lo, hi=hi)
    return v * (torch.randint(0, 2, shape) * 2 - 1).float()


def elementwise():
    fx = Fixture("elementwise")
    pairs = [
        ((2, 3, 4, 5), (2, 3, 4, 5)),
        ((2, 3, 4, 5), (2, 3, 1, 1)),  # per-sample per-channel affine
        ((2, 3, 1, 1), (2, 3, 4, 5)),  # first operand broadcasts
        ((2, 3), (3,)),  # [B,C] + [C]
        ((3,), (2, 3)),
        ((), (2, 3)),  # 0-d scalar tensor
        ((2, 3), ()),
        ((4, 1), (1, 5)),  # both broadcast
        ((0, 3), (3,)),  # empty
    ]
    binops = {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b,
        "axpby": lambda a, b: 0.75 * a - 1.25 * b,
    }
    for name, f in binops.items():
        for sa, sb in pairs:
            b = away_from_zero(*sb) if name == "div" else rnd(*sb)
            add_case(fx, name, [rnd(*sa), b], f)

    x4 = (2, 3, 4, 5)
    add_case(fx, "add_scalar", [rnd(*x4)], lambda a: a + 0.7, s=0.7)
    add_case(fx, "mul_scalar", [rnd(*x4)], lambda a: a * -1.3, s=-1.3)
    add_case(fx, "rsub_scalar", [rnd(*x4)], lambda a: 2.0 - a, s=2.0)
    add_case(fx, "mul_scalar", [rnd()], lambda a: a * 3.0, s=3.0)  # 0-d
    add_case(fx, "add_scalar", [rnd(0, 4)], lambda a: a + 1.0, s=1.0)  # empty
    unary = {
        "neg": (lambda a: -a, rnd(*x4)),
        "exp": (torch.exp, rnd(*x4)),
        "log": (torch.log, rnd(*x4, lo=0.1, hi=3)),
        "sqrt": (torch.sqrt, rnd(*x4, lo=0.1, hi=3)),
        "rsqrt": (torch.rsqrt, rnd(*x4, lo=0.1, hi=3)),
        "square": (torch.square, rnd(*x4)),
        "abs": (torch.abs, away_from_zero(*x4, lo=0.05, hi=2)),
        "tanh": (torch.tanh, rnd(*x4, lo=-3, hi=3)),
        "sigmoid": (torch.sigmoid, rnd(*x4, lo=-6, hi=6)),
        "relu": (torch.relu, away_from_zero(*x4, lo=0.05, hi=2)),
        "quick_gelu": (lambda a: a * torch.sigmoid(1.702 * a), rnd(*x4, lo=-4, hi=4)),
    }
    for name, (f, x) in unary.items():
        add_case(fx, name, [x], f)
    add_case(fx, "exp", [rnd()], torch.exp)  # 0-d
    add_case(fx, "tanh", [rnd(3, 0)], torch.tanh)  # empty
    # extreme arguments: saturation without NaN
    add_case(fx, "sigmoid", [torch.tensor([-100.0, -30.0, 0.0, 30.0, 100.0])], torch.sigmoid)
    add_case(fx, "quick_gelu", [torch.tensor([-100.0, -30.0, 0.0, 30.0, 100.0])],
             lambda a: a * torch.sigmoid(1.702 * a))
    add_case(fx, "tanh", [torch.tensor([-50.0, -10.0, 0.0, 10.0, 50.0])], torch.tanh)
    # kinks at exactly zero follow torch's choices (abs'(0) = 0, relu'(0) = 0)
    add_case(fx, "abs", [torch.tensor([-1.0, 0.0, 1.0])], torch.abs)
    add_case(fx, "relu", [torch.tensor([-1.0, 0.0, 1.0, -0.0])], torch.relu)
    add_case(fx, "sign", [torch.tensor([-2.0, -0.0, 0.0, 3.0])], torch.sign, grad=[])
    add_case(fx, "sign", [rnd(*x4)], torch.sign, grad=[])
    for p in (3.0, 2.0, 1.0, -1.5, 0.5):
        add_case(fx, "pow_scalar", [rnd(*x4, lo=0.2, hi=2)], lambda a, p=p: a ** p, p=p)
    add_case(fx, "pow_scalar", [torch.tensor([-2.0, 0.0, 0.5, 3.0])], lambda a: a ** 0.0, p=0.0)
    add_case(fx, "pow_scalar", [torch.tensor([-2.0, -1.0, 0.0, 0.5, 3.0])], lambda a: a ** 3.0, p=3.0)
    add_case(fx, "leaky_relu", [away_from_zero(*x4, lo=0.05, hi=2)],
             lambda a: torch.nn.functional.leaky_relu(a, 0.2), slope=0.2)
    add_case(fx, "leaky_relu", [torch.tensor([-1.0, 0.0, 1.0])], lambda a: torch.nn.functional.leaky_relu(a, 0.2),
             slope=0.2)
    x = rnd(*x4)
    x.view(-1)[:6] = torch.tensor([-0.5, 0.5, -0.5000001, 0.5000001, 0.0, 1.0])  # bounds are inclusive
    add_case(fx, "clamp", [x], lambda a: torch.clamp(a, -0.5, 0.5), lo=-0.5, hi=0.5, nofd=True)
    nn = torch.tensor([1.0, float("nan"), float("inf"), -float("inf"), -2.0, 0.0])
    add_case(fx, "nan_to_num", [nn], lambda a: torch.nan_to_num(a, 0.5, 100.0, -100.0), nan=0.5, pos=100.0, neg=-100.0)
    for sm, sa, sb in [(x4, x4, x4), (x4, (2, 3, 1, 1), x4), ((2, 1, 4, 5), x4, ()), ((3,), (2, 3), (2, 3))]:
        add_case(fx, "where_positive", [rnd(*sm), rnd(*sa), rnd(*sb)], lambda m, a, b: torch.where(m > 0, a, b),
                 grad=[1, 2])
    xr = away_from_zero(*x4, lo=0.05, hi=2)
    add_case(fx, "leaky_relu_backward", [rnd(*x4), xr], lambda g, x: torch.where(x > 0, g, g * 0.2), grad=[0],
             slope=0.2)
    add_case(fx, "leaky_relu_backward", [rnd(*x4), xr], lambda g, x: torch.where(x > 0, g, g * 0.0), grad=[0],
             slope=0.0)
    fx.save()


def reductions():
    fx = Fixture("elementwise-reduce")
    x = rnd(2, 3, 4, 5)
    for mask in range(1, 16):
        dims = [d for d in range(4) if mask >> d & 1]
        for keep in (False, True):
            add_case(fx, "sum", [x], lambda a: a.sum(dims, keepdim=keep), axes=mask, keepdim=keep)
            add_case(fx, "mean", [x], lambda a: a.mean(dims, keepdim=keep), axes=mask, keepdim=keep)
    x3 = rnd(3, 70, 9)  # longer reductions (vector and scalar loop shapes)
    for mask in (1, 2, 4, 5, 6, 3):
        dims = [d for d in range(3) if mask >> d & 1]
        add_case(fx, "sum", [x3], lambda a: a.sum(dims), axes=mask, keepdim=False)
    add_case(fx, "sum", [rnd()], lambda a: a.sum(), axes=0, keepdim=False)  # 0-d
    add_case(fx, "sum", [rnd(0, 3)], lambda a: a.sum(0), axes=1, keepdim=False)  # empty reduced axis: 0
    add_case(fx, "sum", [rnd(0, 3)], lambda a: a.sum(1), axes=2, keepdim=False)  # empty kept axis
    add_case(fx, "mean", [rnd(3, 0)], lambda a: a.mean(1, keepdim=True), axes=2, keepdim=True)  # NaN
    add_case(fx, "sum_all", [x], lambda a: a.sum())
    add_case(fx, "mean_all", [x], lambda a: a.mean())
    add_case(fx, "sum_all", [rnd()], lambda a: a.sum())
    add_case(fx, "mean_all", [rnd(7)], lambda a: a.mean())
    for target in [(3, 1, 1), (1, 4, 5), (5,), (), (2, 1, 4, 1), (2, 3, 4, 5), (1, 1, 1, 1)]:
        add_case(fx, "sum_to", [x], lambda a: a.sum_to_size(target) if target else a.sum(),
                 shape=list(target))
    for ax in range(4):
        for keep in (False, True):
            add_case(fx, "max", [x], lambda a: a.max(ax, keepdim=keep)[0], axis=ax, keepdim=keep)
    add_case(fx, "max", [x], lambda a: a.max(-1)[0], axis=-1, keepdim=False)
    ties = torch.tensor([[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 5.0, 5.0], [-1.0, -2.0, -1.0, -3.0]])
    add_case(fx, "max", [ties], lambda a: a.max(1)[0], axis=1, keepdim=False, nofd=True)
    add_case(fx, "max", [ties], lambda a: a.max(0)[0], axis=0, keepdim=False, nofd=True)
    add_case(fx, "max", [rnd()], lambda a: a.max(0)[0], axis=0, keepdim=False)
    # Precision: mean of 2^20 values 1000 + u (u from an integer hash, exactly reproducible in C).
    n = 1 << 20
    i = torch.arange(n, dtype=torch.int64)
    u = ((i * 2654435761) % (1 << 32)).double() / float(1 << 32)
    big = (1000.0 + u).float().double()  # float32 inputs, float64 reference
    fx.case(op="precision", n=n, mean=big.mean().item(), sum=big.sum().item(),
            sum_rows=big.view(16, -1).sum(1).float(), mean_cols=big.view(1024, 1024).mean(0).float())
    fx.save()


if __name__ == "__main__":
    seed(1)
    elementwise()
    reductions()
