"""Golden fixtures for the GALIP / RATLIP generator (plugins/galip.c), GALIP's CLIP-feature discriminator
(plugins/galip_d.c) and ONE WHOLE TRAINING ITERATION (core/gan/train.c), written from
../shared/reference/ratlip-reference.md §2 (generator), §3.2 (released RAT), §5 (discriminator), §6.1 (losses) and
§7.1 (the iteration), not from the released code. The frozen CLIP is ref_clip.py's tiny random CLIP.

The iteration, in float64:
  D: X_r = taps(CLIP(galip_transform(x))) (a leaf), l_r = NetC(NetD(X_r), s_leaf)
     L_real = mean relu(1 - l_r); L_mis = mean relu(1 + NetC(NetD(X_r), roll(s, -1)))
     fake = G(z, s); X_f, e_f = CLIP(fake); L_fake = mean relu(1 + NetC(NetD(X_f.detach()), s))
     L_gp = 2 mean ||grad(sum l_r, (X_r, s_leaf))||^6 (create_graph); L_D = L_real + (L_fake + L_mis)/2 + L_gp
     torch.optim.Adam(D, lr 4e-4, betas (0, 0.9)) step
  G: L_G = -mean NetC(NetD(X_f), s) - 4 mean cos(e_f, s) with the updated D; Adam(G, 1e-4, (0, 0.9)) step
Stored: the CLIP's vision tower ("clip.*", OpenAI names), parameters before ("g0.*", "d0.*"), the inputs, the forward
pieces, the loss terms, every gradient ("ggrad.*", "dgrad.*") and batch norm's running statistics after the step
("g1.*"). Parameters after the Adam steps are not stored (torch.optim.Adam is golden-tested in test-optim); the C test
checks that each network's step applied its own learning rate and betas. Parameter names are ratfw's.
"""
import math
import os

import torch
import torch.nn.functional as F

import ref_clip as RC
from common import FIXTURE_DIR, save_safetensors, seed
from ref_conditioners import Params, mlp, modulate, rat_batch_sequence, shuffle_attention

torch.set_default_dtype(torch.float64)

# A smaller CLIP than ref_clip's own fixture (the fixture stays small): vision width 12, 3 blocks; only the vision
# tower is stored (the iteration never runs the text tower: sentence embeddings are inputs).
RC.CFG.update(vision_width=12, vision_heads=2, text_width=8, text_layers=1, text_heads=2)

# Sizes shared with tests/test-gan-golden.c
NF, ZD, CODE, MID, MAP, OUT, PROMPTS, B = 4, 8, 8, 8, 2, 16, (1, 2), 3
D_NF, TAPS, RAT_H, SA_G = 4, (0, 1, 2), 6, 2
VW, GRID, E, LAYERS = RC.CFG["vision_width"], RC.CFG["image"] // RC.CFG["patch"], RC.CFG["embed"], RC.CFG["vision_layers"]


def u(shape, bound):
    return (torch.rand(shape) * 2 - 1) * bound


class Model:
    def __init__(self, ratlip):
        self.ratlip = ratlip
        self.P = Params()  # trainable (G and D share the dict; names are disjoint)
        self.buf = {}  # batch norm running statistics

    # ---- parameter creation (random values of a sensible scale; names as ratfw's) ----
    def lin(self, n, fin, fout, bias=True):
        self.P.add(n + ".weight", u((fout, fin), 1 / math.sqrt(fin)))
        if bias:
            self.P.add(n + ".bias", u((fout,), 1 / math.sqrt(fin)))

    def conv(self, n, cin, cout, k, bias=True):
        self.P.add(n + ".weight", u((cout, cin, k, k), 1 / math.sqrt(cin * k * k)))
        if bias:
            self.P.add(n + ".bias", u((cout,), 1 / math.sqrt(cin * k * k)))

    def mlp2(self, n, fin, hid, out, base):
        self.lin(n + ".fc1", fin, hid)
        self.P.add(n + ".fc2.weight", u((out, hid), 0.3))  # released init is 0 / base; random keeps gradients alive
        self.P.add(n + ".fc2.bias", base + u((out,), 0.1))

    def affine_p(self, n, C, din):
        if self.ratlip_adapter(n):
            b = 1 / math.sqrt(RAT_H)
            self.P.add(n + ".lstm.weight_ih", u((4 * RAT_H, din), b))
            self.P.add(n + ".lstm.weight_hh", u((4 * RAT_H, RAT_H), b))
            self.P.add(n + ".lstm.bias_ih", u((4 * RAT_H,), b))
            self.P.add(n + ".lstm.bias_hh", u((4 * RAT_H,), b))
            din = RAT_H
        self.mlp2(n + ".gamma", din, C, C, 1.0)
        self.mlp2(n + ".beta", din, C, C, 0.0)

    def ratlip_adapter(self, n):
        return self.ratlip and ".mapping." in n

    def fuse_p(self, n, C, din):
        self.affine_p(n + ".affine0", C, din)
        self.affine_p(n + ".affine1", C, din)

    def blockconv_p(self, n, cin, cout):
        if self.ratlip:  # conv_shuffle: conv (no bias), BN, LeakyReLU(0.01), shuffle attention
            self.conv(n + ".conv", cin, cout, 3, bias=False)
            self.P.add(n + ".bn.weight", 1 + u((cout,), 0.2))
            self.P.add(n + ".bn.bias", u((cout,), 0.2))
            self.buf[n + ".bn.running_mean"] = u((cout,), 0.1)
            self.buf[n + ".bn.running_var"] = 1 + u((cout,), 0.2)
            m = cout // (2 * SA_G)
            self.P.add(n + ".sa.cweight", u((m,), 0.5))
            self.P.add(n + ".sa.cbias", 1 + u((m,), 0.2))
            self.P.add(n + ".sa.sweight", u((m,), 0.5))
            self.P.add(n + ".sa.sbias", 1 + u((m,), 0.2))
            self.P.add(n + ".sa.gn.weight", 1 + u((m,), 0.2))
            self.P.add(n + ".sa.gn.bias", u((m,), 0.2))
        else:
            self.conv(n + ".conv", cin, cout, 3)

    def plan(self):
        sizes = [p for p in (2 ** i for i in range(20)) if GRID < p < OUT] + [OUT]
        n = len(sizes)
        chans = [8 * NF] + [NF * min(2 ** (n - k), 8) for k in range(1, n + 1)]
        return sizes, chans

    def build(self):
        cd = ZD + E
        g = "generator"
        self.lin(g + ".fc_code", ZD, CODE * GRID * GRID)
        for k in range(MAP):
            n = f"{g}.mapping.{k}"
            self.conv(n + ".conv1", CODE, MID, 3)
            self.fuse_p(n + ".fuse1", MID, cd)
            self.blockconv_p(n + ".conv2", MID, CODE)
            self.fuse_p(n + ".fuse2", CODE, cd)
        self.conv(g + ".mapping.conv_fuse", CODE, VW, 5)
        self.lin(g + ".mapping.fc_prompt", cd, len(PROMPTS) * VW)
        self.conv(g + ".mapping.conv", VW, 8 * NF, 5)
        sizes, chans = self.plan()
        for k in range(len(sizes)):
            n = f"{g}.blocks.{k}"
            if chans[k] != chans[k + 1]:
                self.conv(n + ".c_sc", chans[k], chans[k + 1], 1)
            self.fuse_p(n + ".fuse1", chans[k], cd)
            self.blockconv_p(n + ".c1", chans[k], chans[k + 1])
            self.fuse_p(n + ".fuse2", chans[k + 1], cd)
            self.blockconv_p(n + ".c2", chans[k + 1], chans[k + 1])
        self.conv(g + ".to_rgb", NF, 3, 3)
        d = "discriminator"
        for k in range(1, len(TAPS)):
            self.dblock_p(f"{d}.DBlocks.{k - 1}", VW, VW, True)
        self.dblock_p(d + ".main", VW, 8 * D_NF, False)
        k1 = GRID // 2 + 1
        k2 = GRID - k1 + 1
        self.P.add(d + ".joint_conv.0.weight", u((2 * D_NF, 8 * D_NF + E, k1, k1), 1 / math.sqrt((8 * D_NF + E) * k1 * k1)))
        self.P.add(d + ".joint_conv.2.weight", u((1, 2 * D_NF, k2, k2), 1 / math.sqrt(2 * D_NF * k2 * k2)))

    def dblock_p(self, n, fin, fout, clip_feat):
        self.P.add(n + ".conv_r.0.weight", u((fout, fin, 3, 3), 1 / math.sqrt(fin * 9)))
        self.P.add(n + ".conv_r.2.weight", u((fout, fout, 3, 3), 1 / math.sqrt(fout * 9)))
        self.conv(n + ".conv_s", fin, fout, 1)
        self.P.add(n + ".gamma", u((1,), 0.5))  # released init 0; non-zero so the residual path is exercised
        if clip_feat:
            self.P.add(n + ".beta", u((1,), 0.5))

    # ---- forward ----
    def affine(self, n, x, c):
        P = self.P
        if self.ratlip_adapter(n):
            return rat_batch_sequence(P, x, c, RAT_H, prefix=n + ".")
        return modulate(x, mlp(P, n + ".gamma", c), mlp(P, n + ".beta", c))

    def fuse(self, n, x, c):
        x = F.leaky_relu(self.affine(n + ".affine0", x, c), 0.2)
        return F.leaky_relu(self.affine(n + ".affine1", x, c), 0.2)

    def blockconv(self, n, x):
        P = self.P
        if self.ratlip:
            h = F.conv2d(x, P[n + ".conv.weight"], None, padding=1)
            h = F.batch_norm(h, self.buf[n + ".bn.running_mean"], self.buf[n + ".bn.running_var"], P[n + ".bn.weight"],
                             P[n + ".bn.bias"], True, 0.1, 1e-5)
            return shuffle_attention(P, F.leaky_relu(h, 0.01), SA_G, prefix=n + ".sa.")
        return F.conv2d(x, P[n + ".conv.weight"], P[n + ".conv.bias"], padding=1)

    def conv2d(self, n, x, pad):
        return F.conv2d(x, self.P[n + ".weight"], self.P.get(n + ".bias"), padding=pad)

    def G(self, W, z, s):
        P, g = self.P, "generator"
        Bn = z.shape[0]
        cond = torch.cat([z, s], 1)
        h = F.linear(z, P[g + ".fc_code.weight"], P[g + ".fc_code.bias"]).reshape(Bn, CODE, GRID, GRID)
        for k in range(MAP):
            n = f"{g}.mapping.{k}"
            r = self.fuse(n + ".fuse1", self.conv2d(n + ".conv1", h, 1), cond)
            r = self.fuse(n + ".fuse2", self.blockconv(n + ".conv2", r), cond)
            h = h + r
        Fb = self.conv2d(g + ".mapping.conv_fuse", h, 2)
        prompts = F.linear(cond, P[g + ".mapping.fc_prompt.weight"], P[g + ".mapping.fc_prompt.bias"])
        prompts = prompts.reshape(Bn, len(PROMPTS), VW)
        M = RC.prompted_mapper(W, Fb, prompts, PROMPTS)
        h = self.conv2d(g + ".mapping.conv", Fb + 0.1 * M, 2)
        sizes, chans = self.plan()
        for k, S in enumerate(sizes):
            n = f"{g}.blocks.{k}"
            h = F.interpolate(h, size=(S, S))  # legacy nearest
            sc = self.conv2d(n + ".c_sc", h, 0) if chans[k] != chans[k + 1] else h
            r = self.blockconv(n + ".c1", self.fuse(n + ".fuse1", h, cond))
            r = self.blockconv(n + ".c2", self.fuse(n + ".fuse2", r, cond))
            h = sc + r
        return self.conv2d(g + ".to_rgb", F.leaky_relu(h, 0.2), 1)

    def encode(self, W, img):
        Bn = img.shape[0]
        x = RC.vision_embed(W, RC.galip_transform(img, RC.CFG["image"]))
        taps = []
        for i in range(LAYERS):
            x = RC.vblock(W, i, x)
            if i in TAPS:
                taps.append(x[:, 1:].transpose(1, 2).reshape(Bn, VW, GRID, GRID))
        return torch.stack(taps, 1), RC.vision_head(W, x)

    def dblock(self, n, x, Fx, learnable_sc):
        P = self.P
        r = F.leaky_relu(F.conv2d(x, P[n + ".conv_r.0.weight"], padding=1), 0.2)
        r = F.leaky_relu(F.conv2d(r, P[n + ".conv_r.2.weight"], padding=1), 0.2)
        xs = F.conv2d(x, P[n + ".conv_s.weight"], P[n + ".conv_s.bias"]) if learnable_sc else x
        out = xs + P[n + ".gamma"] * r
        if Fx is not None:
            out = out + P[n + ".beta"] * Fx
        return out

    def features(self, X):
        o = X[:, 0]
        for k in range(1, len(TAPS)):
            o = self.dblock(f"discriminator.DBlocks.{k - 1}", o, X[:, k], False)
        return self.dblock("discriminator.main", o, None, VW != 8 * D_NF)

    def logits(self, f, s):
        P = self.P
        st = s[:, :, None, None].expand(-1, -1, f.shape[2], f.shape[3])
        h = F.leaky_relu(F.conv2d(torch.cat([f, st], 1), P["discriminator.joint_conv.0.weight"]), 0.2)
        return F.conv2d(h, P["discriminator.joint_conv.2.weight"]).reshape(-1)


def d_step(out, m, dnames, lr, leaves, L_real, L_mis, L_fake):
    """MA-GP on the (image input, sentence) leaves, L_D, the penalty's own gradient ("pgrad.*": D's second order,
    stored separately because within L_D it is small next to the hinges), every D gradient ("dgrad.*") and one
    Adam step (lr 4e-4, betas (0, 0.9))."""
    gx, gs = torch.autograd.grad(lr.sum(), leaves, create_graph=True)
    nsq = gx.reshape(B, -1).pow(2).sum(1) + gs.pow(2).sum(1)
    L_gp = 2.0 * nsq.pow(3).mean()
    L_D = L_real + (L_fake + L_mis) / 2 + L_gp
    dparams = [m.P[k] for k in dnames]
    pgrads = torch.autograd.grad(L_gp, dparams, retain_graph=True, allow_unused=True)
    for k, p, gr in zip(dnames, dparams, pgrads):
        out["pgrad." + k] = torch.zeros_like(p) if gr is None else gr
    dgrads = torch.autograd.grad(L_D, dparams, allow_unused=True)
    for k, p, gr in zip(dnames, dparams, dgrads):
        gr = torch.zeros_like(p) if gr is None else gr
        out["dgrad." + k] = gr
        p.grad = gr.detach().clone()
    torch.optim.Adam(dparams, lr=4e-4, betas=(0.0, 0.9), eps=1e-8).step()
    out.update(L_real=L_real.reshape(1), L_mis=L_mis.reshape(1), L_fake=L_fake.reshape(1), L_gp=L_gp.reshape(1),
               L_D=L_D.reshape(1))
    return L_D, L_gp


def g_grads(out, m, gnames, L_G):
    """Every G gradient ("ggrad.*"), also left in .grad for an optimiser step; returns G's parameters."""
    gparams = [m.P[k] for k in gnames]
    ggrads = torch.autograd.grad(L_G, gparams, allow_unused=True)
    for k, p, gr in zip(gnames, gparams, ggrads):
        gr = torch.zeros_like(p) if gr is None else gr
        out["ggrad." + k] = gr
        p.grad = gr.detach().clone()
    return gparams


def run(ratlip, name):
    seed(7 if ratlip else 5)
    W = RC.make_weights()
    m = Model(ratlip)
    m.build()
    out = {f"clip.{k}": v for k, v in W.items() if k.startswith("visual.")}
    gnames = [k for k in m.P if k.startswith("generator.")]
    dnames = [k for k in m.P if k.startswith("discriminator.")]
    for k in gnames:
        out["g0." + k] = m.P[k].detach().clone()
    for k, v in m.buf.items():
        out["g0." + k] = v.clone()
    for k in dnames:
        out["d0." + k] = m.P[k].detach().clone()
    x = u((B, 3, OUT, OUT), 1.0)
    s = torch.randn(B, E)
    z = torch.randn(B, ZD)
    out.update(x=x, s=s, z=z)
    # forward pieces (no state change: batch norm statistics are restored below)
    saved = {k: v.clone() for k, v in m.buf.items()}
    with torch.no_grad():
        out["fake"] = m.G(W, z, s)
        xr, er = m.encode(W, x)
        out["x_real"], out["e_real"] = xr, er
        out["l_real"] = m.logits(m.features(xr), s)
    for k in m.buf:
        m.buf[k].copy_(saved[k])

    # ---- D step ----
    s_leaf = s.clone().requires_grad_(True)
    with torch.no_grad():
        Xr, _ = m.encode(W, x)
    Xr = Xr.clone().requires_grad_(True)
    fr = m.features(Xr)
    lr = m.logits(fr, s_leaf)
    L_real = F.relu(1 - lr).mean()
    s_mis = torch.cat([s[1:], s[0:1]], 0)
    L_mis = F.relu(1 + m.logits(fr, s_mis)).mean()
    fake = m.G(W, z, s)
    Xf, ef = m.encode(W, fake)
    L_fake = F.relu(1 + m.logits(m.features(Xf.detach()), s)).mean()
    L_D, L_gp = d_step(out, m, dnames, lr, (Xr, s_leaf), L_real, L_mis, L_fake)

    # ---- G step with the updated D, reusing the fake's CLIP encoding ----
    lg = m.logits(m.features(Xf), s)
    L_adv = -lg.mean()
    sim = F.cosine_similarity(ef, s, dim=1, eps=1e-8).mean()
    L_G = L_adv - 4.0 * sim
    gparams = g_grads(out, m, gnames, L_G)
    torch.optim.Adam(gparams, lr=1e-4, betas=(0.0, 0.9), eps=1e-8).step()
    for k, v in m.buf.items():  # batch norm's running statistics after the one training-mode forward
        out["g1." + k] = v.clone()
    out.update(L_adv=L_adv.reshape(1), sim=sim.reshape(1), L_G=L_G.reshape(1))
    print(f"{name}: L_D {L_D.item():.6f} (real {L_real.item():.4f} fake {L_fake.item():.4f} mis {L_mis.item():.4f} "
          f"gp {L_gp.item():.3g}), L_G {L_G.item():.6f}; {len(gnames)} G and {len(dnames)} D tensors")
    save_safetensors(os.path.join(FIXTURE_DIR, name + ".safetensors"), out,
                     {"torch": torch.__version__, "generator": "ref_gan.py"})


# ---- DF-GAN (plugins/dfgan.c; reference §2.5-2.6, §5.5, §6.2) ----
DF_NF, DF_DNF, DF_OUT = 4, 2, 32


def df_widths(nf, S):
    L = int(math.log2(S))
    return [nf * min(2 ** i, 8) for i in range(L - 1)]


class DfganModel(Model):
    def __init__(self):
        super().__init__(False)

    def build(self):
        cd = ZD + E
        g = "generator"
        self.lin(g + ".fc", ZD, 8 * DF_NF * 16)
        w = df_widths(DF_NF, DF_OUT)[::-1]
        for k in range(len(w) - 1):
            n = f"{g}.blocks.{k}"
            if w[k] != w[k + 1]:
                self.conv(n + ".c_sc", w[k], w[k + 1], 1)
            self.fuse_p(n + ".fuse1", w[k], cd)
            self.blockconv_p(n + ".c1", w[k], w[k + 1])
            self.fuse_p(n + ".fuse2", w[k + 1], cd)
            self.blockconv_p(n + ".c2", w[k + 1], w[k + 1])
        self.conv(g + ".to_rgb", DF_NF, 3, 3)
        d = "discriminator"
        self.conv(d + ".conv_img", 3, DF_DNF, 3)
        w = df_widths(DF_DNF, DF_OUT)
        for k in range(len(w) - 1):
            n = f"{d}.DBlocks.{k}"
            self.P.add(n + ".conv_r.0.weight", u((w[k + 1], w[k], 4, 4), 1 / math.sqrt(w[k] * 16)))
            self.P.add(n + ".conv_r.2.weight", u((w[k + 1], w[k + 1], 3, 3), 1 / math.sqrt(w[k + 1] * 9)))
            self.conv(n + ".conv_s", w[k], w[k + 1], 1)
            self.P.add(n + ".gamma", u((1,), 0.5) + 0.5)  # released init 0; non-zero exercises the residual
        self.P.add(d + ".joint_conv.0.weight", u((2 * DF_DNF, 8 * DF_DNF + E, 3, 3), 1 / math.sqrt((8 * DF_DNF + E) * 9)))
        self.P.add(d + ".joint_conv.2.weight", u((1, 2 * DF_DNF, 4, 4), 1 / math.sqrt(2 * DF_DNF * 16)))

    def G(self, z, s):
        g = "generator"
        cond = torch.cat([z, s], 1)
        h = self.conv_lin(g + ".fc", z).reshape(z.shape[0], 8 * DF_NF, 4, 4)
        w = df_widths(DF_NF, DF_OUT)[::-1]
        for k in range(len(w) - 1):
            n = f"{g}.blocks.{k}"
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            sc = self.conv2d(n + ".c_sc", h, 0) if w[k] != w[k + 1] else h
            r = self.blockconv(n + ".c1", self.fuse(n + ".fuse1", h, cond))
            r = self.blockconv(n + ".c2", self.fuse(n + ".fuse2", r, cond))
            h = sc + r
        return torch.tanh(self.conv2d(g + ".to_rgb", F.leaky_relu(h, 0.2), 1))

    def conv_lin(self, n, x):
        return F.linear(x, self.P[n + ".weight"], self.P[n + ".bias"])

    def features(self, x):
        P = self.P
        h = self.conv2d("discriminator.conv_img", x, 1)
        w = df_widths(DF_DNF, DF_OUT)
        for k in range(len(w) - 1):
            n = f"discriminator.DBlocks.{k}"
            r = F.leaky_relu(F.conv2d(h, P[n + ".conv_r.0.weight"], stride=2, padding=1), 0.2)
            r = F.leaky_relu(F.conv2d(r, P[n + ".conv_r.2.weight"], padding=1), 0.2)
            sc = F.conv2d(h, P[n + ".conv_s.weight"], P[n + ".conv_s.bias"]) if w[k] != w[k + 1] else h
            h = F.avg_pool2d(sc, 2) + P[n + ".gamma"] * r
        return h

    def logits(self, f, s):
        P = self.P
        st = s[:, :, None, None].expand(-1, -1, 4, 4)
        h = F.leaky_relu(F.conv2d(torch.cat([f, st], 1), P["discriminator.joint_conv.0.weight"], padding=1), 0.2)
        return F.conv2d(h, P["discriminator.joint_conv.2.weight"]).reshape(-1)


def run_dfgan(name):
    """One DF-GAN iteration as DF-GAN's lib/modules.py train() computes it: mismatch by rolled real features, MA-GP
    on the pixels and the sentence, L_G = -mean D(G(z, s), s), no CLIP similarity."""
    seed(11)
    m = DfganModel()
    m.build()
    gnames = [k for k in m.P if k.startswith("generator.")]
    dnames = [k for k in m.P if k.startswith("discriminator.")]
    out = {}
    for k in gnames:
        out["g0." + k] = m.P[k].detach().clone()
    for k in dnames:
        out["d0." + k] = m.P[k].detach().clone()
    x = u((B, 3, DF_OUT, DF_OUT), 1.0)
    s = torch.randn(B, E)
    z = torch.randn(B, ZD)
    out.update(x=x, s=s, z=z)
    with torch.no_grad():
        out["fake"] = m.G(z, s)
        out["l_real"] = m.logits(m.features(x), s)
    x_leaf = x.clone().requires_grad_(True)
    s_leaf = s.clone().requires_grad_(True)
    fr = m.features(x_leaf)
    lr = m.logits(fr, s_leaf)
    L_real = F.relu(1 - lr).mean()
    L_mis = F.relu(1 + m.logits(torch.cat([fr[1:], fr[0:1]], 0), s_leaf)).mean()
    fake = m.G(z, s)
    L_fake = F.relu(1 + m.logits(m.features(fake.detach()), s)).mean()
    L_D, L_gp = d_step(out, m, dnames, lr, (x_leaf, s_leaf), L_real, L_mis, L_fake)
    L_adv = -m.logits(m.features(fake), s).mean()
    g_grads(out, m, gnames, L_adv)
    out.update(L_adv=L_adv.reshape(1), L_G=L_adv.reshape(1))
    print(f"{name}: L_D {L_D.item():.6f} (real {L_real.item():.4f} fake {L_fake.item():.4f} mis {L_mis.item():.4f} "
          f"gp {L_gp.item():.3g}), L_G {L_adv.item():.6f}; {len(gnames)} G and {len(dnames)} D tensors")
    save_safetensors(os.path.join(FIXTURE_DIR, name + ".safetensors"), out,
                     {"torch": torch.__version__, "generator": "ref_gan.py"})


if __name__ == "__main__":
    run(False, "gan_galip")
    run(True, "gan_ratlip")
    run_dfgan("gan_dfgan")
