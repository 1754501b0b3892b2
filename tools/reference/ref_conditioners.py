"""Golden fixtures for the conditioner plugins (conditioners/): affine, cbn, cin, rat (batch_sequence and
chained), shuffle_attention and conv_shuffle. Written from the equations of
../shared/reference/ratlip-reference.md §2.6-2.8, §3 and §4 (not from the released code).

Parameter names are ratfw's (the C test loads them by name). Every case stores the parameters, the inputs,
the output, and the gradients of <out, R> (R fixed random) w.r.t. every parameter and input.
"""
import math

import torch
import torch.nn.functional as F

from common import Fixture, seed

torch.set_default_dtype(torch.float64)


def uniform(shape, bound):
    return (torch.rand(shape) * 2 - 1) * bound


class Params(dict):
    """name -> leaf tensor (float64, requires grad)."""

    def add(self, name, t):
        t = t.detach().to(torch.float64).clone().requires_grad_(True)
        self[name] = t
        return t


def linear_init(P, prefix, fin, fout, zero_weight=None):
    # PyTorch default: kaiming_uniform(a=sqrt 5) => U(-1/sqrt(fin), 1/sqrt(fin)); bias the same bound.
    b = 1 / math.sqrt(fin)
    w = uniform((fout, fin), b)
    bias = uniform((fout,), b)
    if zero_weight is not None:  # DF-GAN affine second layers: weight 0, bias 1 (gamma) or 0 (beta)
        # Fixtures use small random values instead so that gradients w.r.t. the first layer are non-zero;
        # the C side loads whatever the fixture holds.
        w = uniform((fout, fin), 0.3)
        bias = zero_weight + uniform((fout,), 0.1)
    P.add(prefix + ".weight", w)
    P.add(prefix + ".bias", bias)


def mlp(P, prefix, x):
    h = F.relu(F.linear(x, P[prefix + ".fc1.weight"], P[prefix + ".fc1.bias"]))
    return F.linear(h, P[prefix + ".fc2.weight"], P[prefix + ".fc2.bias"])


def make_mlps(P, prefix, din, C):
    for name, base in (("gamma", 1.0), ("beta", 0.0)):
        linear_init(P, f"{prefix}{name}.fc1", din, C)
        linear_init(P, f"{prefix}{name}.fc2", C, C, zero_weight=base)


def modulate(x, gamma, beta):
    return gamma[:, :, None, None] * x + beta[:, :, None, None]


def affine(P, x, c, prefix=""):
    return modulate(x, mlp(P, prefix + "gamma", c), mlp(P, prefix + "beta", c))


def lstm_step(P, prefix, x, h, c):
    g = F.linear(x, P[prefix + "weight_ih"], P[prefix + "bias_ih"]) + F.linear(h, P[prefix + "weight_hh"], P[prefix + "bias_hh"])
    i, f, gg, o = g.chunk(4, dim=1)
    c2 = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
    h2 = torch.sigmoid(o) * torch.tanh(c2)
    return h2, c2


def make_lstm(P, prefix, din, H):
    b = 1 / math.sqrt(H)
    P.add(prefix + "weight_ih", uniform((4 * H, din), b))
    P.add(prefix + "weight_hh", uniform((4 * H, H), b))
    P.add(prefix + "bias_ih", uniform((4 * H,), b))
    P.add(prefix + "bias_hh", uniform((4 * H,), b))


def rat_batch_sequence(P, x, c, H, prefix=""):
    """Released RATLIP Affine_rnn: the batch is read as one sequence of length B; the last hidden state sets
    gamma/beta for every sample (§3.2). Uses torch.nn.LSTM itself, to pin the released semantics."""
    lstm = torch.nn.LSTM(c.shape[1], H, batch_first=True).double()
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(P[prefix + "lstm.weight_ih"])
        lstm.weight_hh_l0.copy_(P[prefix + "lstm.weight_hh"])
        lstm.bias_ih_l0.copy_(P[prefix + "lstm.bias_ih"])
        lstm.bias_hh_l0.copy_(P[prefix + "lstm.bias_hh"])
    # Our own unrolled recurrence (gradients reach P) over the batch axis read as time...
    h = torch.zeros(1, H)
    cs = torch.zeros(1, H)
    for t in range(c.shape[0]):
        h, cs = lstm_step(P, prefix + "lstm.", c[t:t + 1], h, cs)
    # ...must equal torch.nn.LSTM(batch_first=True) fed [1, B, D], the released call.
    ref, _ = lstm(c.unsqueeze(0).detach())
    assert torch.allclose(ref[0, -1:], h.detach())
    hB = h  # [1, H]
    gamma = mlp(P, prefix + "gamma", hB)
    beta = mlp(P, prefix + "beta", hB)
    return modulate(x, gamma.expand(x.shape[0], -1), beta.expand(x.shape[0], -1))


def cbn(x, c, P, training, prefix=""):
    rm, rv = P.buffers[prefix + "running_mean"], P.buffers[prefix + "running_var"]
    xn = F.batch_norm(x, rm, rv, None, None, training, 0.1, 1e-5)
    return affine(P, xn, c, prefix)


def cin(P, x, c, prefix=""):
    return affine(P, F.instance_norm(x, eps=1e-5), c, prefix)


def shuffle_attention(P, x, G, prefix=""):
    B, C, H, W = x.shape
    m = C // (2 * G)
    y = x.reshape(B * G, C // G, H, W)
    x0, x1 = y[:, :m], y[:, m:]
    a = x0.mean(dim=(2, 3), keepdim=True)
    x0 = x0 * torch.sigmoid(P[prefix + "cweight"].view(1, m, 1, 1) * a + P[prefix + "cbias"].view(1, m, 1, 1))
    n = F.group_norm(x1, m, P[prefix + "gn.weight"], P[prefix + "gn.bias"], 1e-5)
    x1 = x1 * torch.sigmoid(P[prefix + "sweight"].view(1, m, 1, 1) * n + P[prefix + "sbias"].view(1, m, 1, 1))
    y = torch.cat([x0, x1], dim=1).reshape(B, C, H, W)
    return y.reshape(B, 2, C // 2, H, W).transpose(1, 2).reshape(B, C, H, W)


def make_sa(P, prefix, C, G):
    m = C // (2 * G)
    P.add(prefix + "cweight", uniform((m,), 0.5))
    P.add(prefix + "cbias", 1 + uniform((m,), 0.2))
    P.add(prefix + "sweight", uniform((m,), 0.5))
    P.add(prefix + "sbias", 1 + uniform((m,), 0.2))
    P.add(prefix + "gn.weight", 1 + uniform((m,), 0.2))
    P.add(prefix + "gn.bias", uniform((m,), 0.2))


def record(fx, name, P, inputs, fn, extra=None):
    out = fn()
    R = torch.rand(out.shape) * 2 - 1
    leaves = list(P.values()) + list(inputs.values())
    grads = torch.autograd.grad(out, leaves, R, allow_unused=True)
    kw = {}
    for (k, v) in P.items():
        kw["p." + k] = v.detach().float()
    for (k, v) in inputs.items():
        kw["in." + k] = v.detach().float()
    kw["out"] = out.detach().float()
    kw["R"] = R.float()
    for leaf_name, g in zip(list("p." + k for k in P) + list("in." + k for k in inputs), grads):
        if g is None:
            g = torch.zeros_like(leaf_name_tensor(P, inputs, leaf_name))
        kw["grad." + leaf_name] = g.detach().float()
    for k, v in (extra or {}).items():
        kw[k] = v.detach().float() if isinstance(v, torch.Tensor) else v
    fx.case(name=name, **kw)


def leaf_name_tensor(P, inputs, leaf_name):
    kind, k = leaf_name.split(".", 1)
    return P[k] if kind == "p" else inputs[k]


def main():
    seed(0)
    torch.set_default_dtype(torch.float64)
    fx = Fixture("conditioners")
    B, C, H, W, D = 3, 8, 4, 4, 10

    # affine
    P = Params()
    make_mlps(P, "", D, C)
    x = torch.randn(B, C, H, W).requires_grad_(True)
    c = torch.randn(B, D).requires_grad_(True)
    record(fx, "affine", P, {"x": x, "cond": c}, lambda: affine(P, x, c), {"B": B, "C": C, "D": D})

    # cin
    P = Params()
    make_mlps(P, "", D, C)
    record(fx, "cin", P, {"x": x, "cond": c}, lambda: cin(P, x, c))

    # cbn, training (running stats updated) and eval
    for training in (True, False):
        P = Params()
        make_mlps(P, "", D, C)
        P.buffers = {"running_mean": uniform((C,), 0.5), "running_var": 1 + uniform((C,), 0.5)}
        rm0, rv0 = P.buffers["running_mean"].clone(), P.buffers["running_var"].clone()
        record(fx, "cbn_train" if training else "cbn_eval", P, {"x": x, "cond": c}, lambda: cbn(x, c, P, training),
               {"running_mean_before": rm0, "running_var_before": rv0,
                "running_mean_after": P.buffers["running_mean"], "running_var_after": P.buffers["running_var"]})

    # rat batch_sequence at B = 1, 3, 8 (hidden 6)
    Hd = 6
    for b in (1, 3, 8):
        P = Params()
        make_lstm(P, "lstm.", D, Hd)
        make_mlps(P, "", Hd, C)
        xb = torch.randn(b, C, H, W).requires_grad_(True)
        cb = torch.randn(b, D).requires_grad_(True)
        record(fx, f"rat_batch_sequence_b{b}", P, {"x": xb, "cond": cb}, lambda: rat_batch_sequence(P, xb, cb, Hd),
               {"hidden": Hd})

    # rat chained across a small test block: two DF blocks (4 RAT affines) with a conv between; state carried
    # per sample through the affines in order. Variants: shared cell / per-step cells; h0 zero / from noise.
    Z = 5
    for shared in (True, False):
        for init in ("zero", "noise"):
            P = Params()
            n_aff = 4
            if shared:
                make_lstm(P, "rat_cell.", D, Hd)
            else:
                for k in range(n_aff):
                    make_lstm(P, f"a{k}.lstm.", D, Hd)
            if init == "noise":
                linear_init(P, "rat_cell.noise2h", Z, Hd)
                linear_init(P, "rat_cell.noise2c", Z, Hd)
            for k in range(n_aff):
                make_mlps(P, f"a{k}.", Hd, C)
            P.add("conv.weight", uniform((C, C, 3, 3), 1 / math.sqrt(C * 9)))
            z = torch.randn(B, Z).requires_grad_(True)

            def fwd():
                if init == "noise":
                    h = F.linear(z, P["rat_cell.noise2h.weight"], P["rat_cell.noise2h.bias"])
                    cs = F.linear(z, P["rat_cell.noise2c.weight"], P["rat_cell.noise2c.bias"])
                else:
                    h = torch.zeros(B, Hd)
                    cs = torch.zeros(B, Hd)
                y = x
                for k in range(n_aff):
                    pre = "rat_cell." if shared else f"a{k}.lstm."
                    h, cs = lstm_step(P, pre, c, h, cs)
                    y = F.leaky_relu(modulate(y, mlp(P, f"a{k}.gamma", h), mlp(P, f"a{k}.beta", h)), 0.2)
                    if k == 1:
                        y = F.conv2d(y, P["conv.weight"], padding=1)
                return y

            record(fx, f"rat_chained_{'shared' if shared else 'perstep'}_{init}", P, {"x": x, "cond": c, "z": z}, fwd,
                   {"hidden": Hd})

    # shuffle attention, G = 2 on C = 8 (m = 2), and G = 1
    for G in (2, 1):
        P = Params()
        make_sa(P, "", C, G)
        record(fx, f"shuffle_attention_g{G}", P, {"x": x}, lambda: shuffle_attention(P, x, G), {"groups": G})

    # conv_shuffle: conv 3x3 no bias -> BN (train / eval) -> LeakyReLU(0.01) -> SA (G = 2); C -> 2C
    for training in (True, False):
        P = Params()
        P.add("conv.weight", uniform((2 * C, C, 3, 3), 1 / math.sqrt(C * 9)))
        P.add("bn.weight", 1 + uniform((2 * C,), 0.2))
        P.add("bn.bias", uniform((2 * C,), 0.2))
        make_sa(P, "sa.", 2 * C, 2)
        rm, rv = uniform((2 * C,), 0.3), 1 + uniform((2 * C,), 0.3)
        rm0, rv0 = rm.clone(), rv.clone()

        def fwd():
            y = F.conv2d(x, P["conv.weight"], padding=1)
            y = F.batch_norm(y, rm, rv, P["bn.weight"], P["bn.bias"], training, 0.1, 1e-5)
            return shuffle_attention(P, F.leaky_relu(y, 0.01), 2, "sa.")

        record(fx, "conv_shuffle_train" if training else "conv_shuffle_eval", P, {"x": x}, fwd,
               {"running_mean_before": rm0, "running_var_before": rv0, "running_mean_after": rm,
                "running_var_after": rv})
    fx.save()


if __name__ == "__main__":
    main()
