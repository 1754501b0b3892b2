"""Golden fixtures for core/nn and core/io/png.c: Philox4x32-10 vectors and the value mappings of RatRng (from a
pure-Python Philox checked against Random123's published known answers), torch.optim.Adam / SGD trajectories over
5 steps of fixed gradients (computed in float64 from float32 inputs), and tiny PNG files written with zlib only
(8/16-bit, gray/gray+alpha/RGB/RGBA, palette with and without tRNS, all five row filters, Adam7 interlacing).

Run: /usr/bin/python3 tools/reference/ref_nn.py  ->  tests/fixtures/nn_rng, nn_optim, nn_png .safetensors and
tests/fixtures/png/*.png
"""
import math
import os
import struct
import zlib

import numpy as np
import torch

from common import FIXTURE_DIR, Fixture, seed

M32 = 0xFFFFFFFF

# ---- Philox4x32-10 (Salmon et al. SC'11; Random123 philox.h) -------------------------------------------------


def philox4x32_10(ctr, key):
    c = list(ctr)
    k0, k1 = key
    for r in range(10):
        if r:
            k0 = (k0 + 0x9E3779B9) & M32
            k1 = (k1 + 0xBB67AE85) & M32
        p0 = 0xD2511F53 * c[0]
        p1 = 0xCD9E8D57 * c[2]
        hi0, lo0, hi1, lo1 = p0 >> 32, p0 & M32, p1 >> 32, p1 & M32
        c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0]
    return c


# Random123 kat_vectors (philox4x32 10): counter[4] key[2] -> out[4]
KAT = [
    ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([M32] * 4, [M32, M32], [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0],
     [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
]


def block(seed_, index, sub=0, tag=0):
    return philox4x32_10([index & M32, index >> 32, sub, tag], [seed_ & M32, seed_ >> 32])


def u32_to_unit_float(x):
    return np.float32(x >> 8) * np.float32(1.0 / 16777216.0)


def open_unit(x):
    return (x + 0.5) * (1.0 / 4294967296.0)


def box_muller(a, b):
    r = math.sqrt(-2.0 * math.log(open_unit(a)))
    th = 2.0 * math.pi * open_unit(b)
    return r * math.cos(th), r * math.sin(th)


def fill_uniform(seed_, offset, n, lo, hi):
    lo, hi = np.float32(lo), np.float32(hi)
    out = []
    for i in range(n):
        w = block(seed_, offset + i // 4)[i % 4]
        v = lo + (hi - lo) * u32_to_unit_float(w)
        if not v < hi:
            v = np.nextafter(hi, lo, dtype=np.float32)
        out.append(np.float32(v))
    return out, offset + (n + 3) // 4


def fill_normal(seed_, offset, n, mean, std):
    out = []
    for i in range(n):
        w = block(seed_, offset + i // 4)
        z = box_muller(w[0], w[1]) + box_muller(w[2], w[3])
        out.append(mean + std * z[i % 4])
    return out, offset + (n + 3) // 4


def fill_truncated(seed_, offset, n, bound):
    out = []
    for i in range(n):
        k = 0
        v = None
        while v is None:
            w = block(seed_, offset + i, k, 1)
            for z in box_muller(w[0], w[1]) + box_muller(w[2], w[3]):
                if abs(z) <= bound:
                    v = z
                    break
            k += 1
        out.append(v)
    return out, offset + n


def permutation(seed_, offset, n):
    perm = list(range(n))
    w = None
    j = 0
    for i in range(n - 1, 0, -1):
        if j % 2 == 0:
            w = block(seed_, offset + j // 2)
        x = (w[2 * (j % 2) + 1] << 32) | w[2 * (j % 2)]
        k = (x * (i + 1)) >> 64
        perm[i], perm[k] = perm[k], perm[i]
        j += 1
    return perm, offset + (n // 2 if n > 1 else 0)


def hexs(v):
    return " ".join(f"{x:08x}" for x in v)


def write_rng():
    for ctr, key, want in KAT:
        got = philox4x32_10(ctr, key)
        assert got == want, f"python Philox disagrees with Random123 KAT: {hexs(got)} vs {hexs(want)}"
    fx = Fixture("nn_rng")
    rng = np.random.default_rng(5)
    for ctr, key, want in KAT:
        fx.case(op="philox", ctr=hexs(ctr), key=hexs(key), out=hexs(want), source="Random123 kat_vectors")
    for _ in range(8):
        ctr = [int(x) for x in rng.integers(0, 2**32, 4)]
        key = [int(x) for x in rng.integers(0, 2**32, 2)]
        fx.case(op="philox", ctr=hexs(ctr), key=hexs(key), out=hexs(philox4x32_10(ctr, key)), source="ref_nn.py")
    # A sequence of draws from one generator: seed, then uniform(13), normal(10), truncated(9), permutation(10).
    s = 0x123456789ABCDEF
    off = 3
    u, off = fill_uniform(s, off, 13, -1.0, 2.0)
    nrm, off = fill_normal(s, off, 10, 0.5, 2.0)
    tr, off = fill_truncated(s, off, 9, 2.0)
    pm, off = permutation(s, off, 10)
    fx.case(op="sequence", seed=str(s), offset=3, final_offset=off,
            uniform=torch.tensor(np.array(u, dtype=np.float32)),
            normal=torch.tensor(nrm, dtype=torch.float64),
            truncated=torch.tensor(tr, dtype=torch.float64),
            perm=torch.tensor(pm, dtype=torch.int64))
    fx.save()


# ---- optimisers ------------------------------------------------------------------------------------------------

SHAPES = {"a.weight": (4, 3), "a.bias": (5,), "b.conv": (2, 3, 2)}


def trajectory(make_opt, steps=5, gseed=11):
    g = torch.Generator().manual_seed(gseed)
    init = {n: torch.randn(s, generator=g).float() for n, s in SHAPES.items()}
    grads = [{n: torch.randn(s, generator=g).float() for n, s in SHAPES.items()} for _ in range(steps)]
    params = {n: init[n].double().clone().requires_grad_(True) for n in SHAPES}
    opt = make_opt(list(params.values()))
    after = []
    for k in range(steps):
        for n, p in params.items():
            p.grad = grads[k][n].double().clone()
        opt.step()
        after.append({n: p.detach().clone() for n, p in params.items()})
    return init, grads, after, opt, params


def write_optim():
    fx = Fixture("nn_optim")
    cases = [
        ("adam_gan", dict(kind="adam", lr=0.01, beta1=0.0, beta2=0.9, eps=1e-8, weight_decay=0.0),
         lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.0, 0.9), eps=1e-8)),
        ("adam_default_wd", dict(kind="adam", lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1),
         lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.1)),
        ("sgd_momentum", dict(kind="sgd", lr=0.05, momentum=0.9, dampening=0.0, weight_decay=0.01, nesterov=False),
         lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01)),
        ("sgd_nesterov", dict(kind="sgd", lr=0.05, momentum=0.8, dampening=0.0, weight_decay=0.0, nesterov=True),
         lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True)),
        ("sgd_dampening", dict(kind="sgd", lr=0.05, momentum=0.5, dampening=0.3, weight_decay=0.0, nesterov=False),
         lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.5, dampening=0.3)),
    ]
    for i, (name, hp, make) in enumerate(cases):
        init, grads, after, opt, params = trajectory(make, gseed=11 + i)
        t = {}
        for n in SHAPES:
            t[f"init.{n}"] = init[n]
            for k in range(len(grads)):
                t[f"grad{k}.{n}"] = grads[k][n]
                t[f"after{k}.{n}"] = after[k][n]
            st = opt.state[params[n]]
            for key in ("exp_avg", "exp_avg_sq", "momentum_buffer"):
                if key in st:
                    t[f"{key}.{n}"] = st[key]
        fx.case(name=name, steps=len(grads), names=list(SHAPES), **hp, **t)
    fx.save()


# ---- PNG -------------------------------------------------------------------------------------------------------


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & M32)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_rows(raw_rows, bpp, first_filter=0):
    """raw_rows: list of bytes; row r uses filter (first_filter + r) % 5."""
    out = bytearray()
    prev = bytes(len(raw_rows[0])) if raw_rows else b""
    for r, row in enumerate(raw_rows):
        ft = (first_filter + r) % 5
        f = bytearray()
        for i, x in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][ft]
            f.append((x - pred) & 0xFF)
        out.append(ft)
        out += f
        prev = row
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png_bytes(samples, depth, color_type, palette=None, trns=None, interlace=False):
    """samples: int array [H, W, C] (C samples per pixel as stored: palette index for color type 3)."""
    H, W, C = samples.shape
    bps = depth // 8
    bpp = C * bps

    def row_bytes(rows):
        out = []
        for row in rows:
            b = bytearray()
            for px in row:
                for v in px:
                    b += int(v).to_bytes(bps, "big")
            out.append(bytes(b))
        return out

    if interlace:
        data = b""
        for p, (x0, y0, dx, dy) in enumerate(ADAM7):
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] == 0 or sub.shape[1] == 0:
                continue
            data += filter_rows(row_bytes(sub), bpp, first_filter=p)
    else:
        data = filter_rows(row_bytes(samples), bpp)
    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, depth, color_type, 0, 0, 1 if interlace else 0))
    if palette is not None:
        png += chunk(b"PLTE", bytes(int(v) for rgb in palette for v in rgb))
    if trns is not None:
        png += chunk(b"tRNS", bytes(int(v) for v in trns))
    comp = zlib.compress(data, 9)
    # Two IDAT chunks, to exercise chunk boundaries.
    png += chunk(b"IDAT", comp[: len(comp) // 2]) + chunk(b"IDAT", comp[len(comp) // 2:])
    png += chunk(b"IEND", b"")
    return png


def write_png():
    pdir = os.path.join(FIXTURE_DIR, "png")
    os.makedirs(pdir, exist_ok=True)
    rng = np.random.default_rng(3)
    fx = Fixture("nn_png")
    H, W = 5, 7
    specs = [
        ("gray8.png", 8, 0, 1), ("graya8.png", 8, 4, 2), ("rgb8.png", 8, 2, 3), ("rgba8.png", 8, 6, 4),
        ("gray16.png", 16, 0, 1), ("rgb16.png", 16, 2, 3), ("rgba16.png", 16, 6, 4),
    ]
    for name, depth, ct, C in specs:
        s = rng.integers(0, 2**depth, (H, W, C))
        s[0, 0, :] = 0
        s[0, 1, :] = 2**depth - 1
        with open(os.path.join(pdir, name), "wb") as f:
            f.write(png_bytes(s, depth, ct))
        want = torch.tensor(s.transpose(2, 0, 1), dtype=torch.float64) / (2**depth - 1)
        fx.case(file=name, want=want)
    # palette, without and with transparency
    pal = rng.integers(0, 256, (6, 3))
    idx = rng.integers(0, 6, (H, W, 1))
    with open(os.path.join(pdir, "palette.png"), "wb") as f:
        f.write(png_bytes(idx, 8, 3, palette=pal))
    rgb = pal[idx[..., 0]]
    fx.case(file="palette.png", want=torch.tensor(rgb.transpose(2, 0, 1), dtype=torch.float64) / 255)
    trns = [0, 128, 255, 7]  # alpha of the first four entries; the rest are opaque
    with open(os.path.join(pdir, "palette_trns.png"), "wb") as f:
        f.write(png_bytes(idx, 8, 3, palette=pal, trns=trns))
    alpha = np.array(trns + [255] * 2)[idx[..., 0]]
    rgba = np.concatenate([rgb, alpha[..., None]], axis=2)
    fx.case(file="palette_trns.png", want=torch.tensor(rgba.transpose(2, 0, 1), dtype=torch.float64) / 255)
    # Adam7 interlaced, large enough for all seven passes
    s = rng.integers(0, 256, (11, 9, 3))
    with open(os.path.join(pdir, "interlaced.png"), "wb") as f:
        f.write(png_bytes(s, 8, 2, interlace=True))
    fx.case(file="interlaced.png", want=torch.tensor(s.transpose(2, 0, 1), dtype=torch.float64) / 255)
    s16 = rng.integers(0, 65536, (9, 10, 1))
    with open(os.path.join(pdir, "interlaced16.png"), "wb") as f:
        f.write(png_bytes(s16, 16, 0, interlace=True))
    fx.case(file="interlaced16.png", want=torch.tensor(s16.transpose(2, 0, 1), dtype=torch.float64) / 65535)
    fx.save()


if __name__ == "__main__":
    seed(0)
    write_rng()
    write_optim()
    write_png()
