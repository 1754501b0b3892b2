"""Golden fixtures for the data layer (core/data): images decoded by PIL, the reference augmentation computed by
torchvision 0.14 on PIL images (Resize, crop, flip, ToTensor, Normalize; RATLIP lib/datasets.py get_imgs with the
CUB bounding-box rule), pickles written by Python's own pickle module, and tiny IDX files.

Run with Debian's python3 (python3-torch, python3-torchvision, python3-pil): /usr/bin/python3 ref_data.py
Writes tests/fixtures/data.safetensors and small files in tests/fixtures/data/.
"""
import gzip
import json
import os
import pickle
import pickletools
import struct

import numpy as np
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from PIL import Image

from common import FIXTURE_DIR, Fixture, seed

DATA_DIR = os.path.join(FIXTURE_DIR, "data")


def synthetic_photo(w, h, rs):
    """Smooth colour fields, hard edges and mild noise: exercises both the filter and the JPEG codec."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 90 * np.sin(x / 7.0) * np.cos(y / 11.0)
    g = 255 * (x + y) / (w + h)
    b = np.where((x - w / 2) ** 2 + (y - h / 2) ** 2 < (min(w, h) / 3) ** 2, 230.0, 30.0)
    img = np.stack([r, g, b], -1) + rs.normal(0, 6, (h, w, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def save_ref(img, name):
    """Large uint8 references go to lossless PNG files next to the fixture (the decoder's PNG path is checked
    against values stored in the fixture itself)."""
    img.convert("RGB").save(os.path.join(DATA_DIR, "ref", name))
    return name


def u8(img):
    """PIL image (RGB) -> [H, W, 3] int tensor."""
    return torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.uint8).copy())


def on_white(rgba):
    a = np.asarray(rgba, dtype=np.int64)
    rgb, al = a[..., :3], a[..., 3:4]
    return torch.from_numpy(((rgb * al + 255 * (255 - al) + 127) // 255).astype(np.uint8))


def reference_transform(img, resize, size, i, j, flip, plain=False):
    """RATLIP's pipeline with the crop and flip given (as drawn by RandomCrop / RandomHorizontalFlip)."""
    img = TF.resize(img, [size, size] if plain else resize, T.InterpolationMode.BILINEAR)
    if not plain:
        img = TF.crop(img, i, j, size, size)
    if flip:
        img = TF.hflip(img)
    t = TF.to_tensor(img)
    return TF.normalize(t, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5])


def cub_box(width, height, bbox):
    """RATLIP lib/datasets.py get_imgs: bbox cast to int by pandas astype(int)."""
    bbox = [int(v) for v in bbox]
    r = int(np.maximum(bbox[2], bbox[3]) * 0.75)
    center_x = int((2 * bbox[0] + bbox[2]) / 2)
    center_y = int((2 * bbox[1] + bbox[3]) / 2)
    y1 = np.maximum(0, center_y - r)
    y2 = np.minimum(height, center_y + r)
    x1 = np.maximum(0, center_x - r)
    x2 = np.minimum(width, center_x + r)
    return [int(x1), int(y1), int(x2), int(y2)]


def write_images(fx, rs):
    photo = synthetic_photo(83, 61, rs)
    big = synthetic_photo(160, 120, rs)
    files = {
        "photo.jpg": lambda p: photo.save(p, quality=90),
        "photo444.jpg": lambda p: photo.save(p, quality=95, subsampling=0),
        "progressive.jpg": lambda p: photo.save(p, quality=85, progressive=True),
        "gray.jpg": lambda p: photo.convert("L").save(p, quality=90),
        "cmyk.jpg": lambda p: photo.convert("CMYK").save(p, quality=95),
    }
    big.save(os.path.join(DATA_DIR, "big.png"))
    for name, save in files.items():
        save(os.path.join(DATA_DIR, name))
        img = Image.open(os.path.join(DATA_DIR, name))
        fx.case(op="decode", file=name, mode=img.mode, alpha="drop", ref=save_ref(img, f"ref-{name}.png"))
    # PNG variants: RGBA with graded alpha, palette with a transparent entry, 16-bit RGB, 8-bit gray, 2-bit gray.
    h, w = 23, 31
    yy, xx = np.mgrid[0:h, 0:w]
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., 0] = (xx * 8) % 256
    rgba[..., 1] = (yy * 11) % 256
    rgba[..., 2] = 200
    rgba[..., 3] = (xx * 9 + yy * 3) % 256
    im = Image.fromarray(rgba, "RGBA")
    im.save(os.path.join(DATA_DIR, "rgba.png"))
    fx.case(op="decode", file="rgba.png", mode="RGBA", alpha="drop", rgb=u8(im))
    fx.case(op="decode", file="rgba.png", mode="RGBA", alpha="white", rgb=on_white(im))
    pal = im.convert("RGB").quantize(16)
    pal.info["transparency"] = 3
    pal.save(os.path.join(DATA_DIR, "palette.png"), transparency=3)
    pim = Image.open(os.path.join(DATA_DIR, "palette.png"))
    fx.case(op="decode", file="palette.png", mode=pim.mode, alpha="drop", rgb=u8(pim))
    fx.case(op="decode", file="palette.png", mode=pim.mode, alpha="white", rgb=on_white(pim.convert("RGBA")))
    # 16-bit RGB written by hand (PIL cannot write it); PIL reads it keeping the high byte.
    rgb16 = ((xx[..., None] * 2111 + yy[..., None] * 977 + np.array([0, 20000, 40000])) % 65536).astype(">u2")
    write_png16(os.path.join(DATA_DIR, "rgb16.png"), rgb16)
    fx.case(op="decode", file="rgb16.png", mode="RGB;16", alpha="drop",
            rgb=u8(Image.open(os.path.join(DATA_DIR, "rgb16.png"))))
    gray = Image.fromarray(((xx * 7 + yy * 5) % 256).astype(np.uint8), "L")
    gray.save(os.path.join(DATA_DIR, "gray.png"))
    fx.case(op="decode", file="gray.png", mode="L", alpha="drop", rgb=u8(gray))
    return photo, big


def write_png16(path, arr):
    import zlib
    h, w, _ = arr.shape
    raw = b"".join(b"\x00" + arr[y].tobytes() for y in range(h))

    def chunk(t, d):
        c = struct.pack(">I", len(d)) + t + d
        return c + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def write_transforms(fx):
    # Source pixels: what PIL decodes (the C side decodes the same files and must agree first).
    photo = Image.open(os.path.join(DATA_DIR, "photo.jpg")).convert("RGB")
    big = Image.open(os.path.join(DATA_DIR, "big.png")).convert("RGB")
    # Plain PIL resizes (uint8, bit-exactness of the resampler): down, up, mixed, one axis unchanged.
    for src, name in ((photo, "photo.jpg"), (big, "big.png")):
        w, h = src.size
        for k, (ow, oh) in enumerate(((w * 2 // 3, h * 2 // 3), (37, 29), (w + 17, h + 9), (w // 3, h + 5),
                                      (w, h // 4), (13, 7), (w // 5, h // 7))):
            fx.case(op="resize", file=name, w=ow, h=oh,
                    ref=save_ref(src.resize((ow, oh), Image.BILINEAR), f"resize-{name}-{k}.png"))
    # Random crops drawn by torchvision itself (seeded), then the full reference pipeline.
    torch.manual_seed(1234)
    for (src, name, resize, size, bbox, plain) in (
        (photo, "photo.jpg", 40, 32, None, False),
        (photo, "photo.jpg", 38, 32, None, False),
        (photo, "photo.jpg", 100, 48, None, False),
        (big, "big.png", 57, 48, None, False),
        (big, "big.png", 0, 40, None, True),
        (big, "big.png", 38, 32, (41.0, 22.0, 57.0, 61.0), False),
        (big, "big.png", 38, 32, (2.0, 90.0, 150.0, 28.0), False),
    ):
        img = src
        box = None
        if bbox is not None:
            box = cub_box(src.size[0], src.size[1], bbox)
            img = src.crop(box)
        if plain:
            i = j = 0
        else:
            rs = TF.resize(img, resize, T.InterpolationMode.BILINEAR)
            i, j, _, _ = T.RandomCrop.get_params(rs, (size, size))
        flip = bool(torch.rand(1) < 0.5)
        out = reference_transform(img, resize, size, i, j, flip, plain)
        fx.case(op="transform", file=name, resize=resize, size=size, crop_y=int(i), crop_x=int(j), flip=flip,
                plain=plain, bbox=list(bbox) if bbox else None, box=box, out=out.double())


def write_pickles():
    pk = os.path.join(DATA_DIR, "pickle")
    os.makedirs(pk, exist_ok=True)
    words = ["001.Black_footed_Albatross/Black_Footed_Albatross_0046_18", "Ünïcødé", "鳥の歌", "🐦 bird", "",
             "a" * 300]
    expect = {}
    for proto in (2, 3, 4):
        name = f"list-p{proto}.pickle"
        with open(os.path.join(pk, name), "wb") as f:
            pickle.dump(words, f, protocol=proto)
        expect[name] = words
        name = f"tuple-p{proto}.pickle"
        with open(os.path.join(pk, name), "wb") as f:
            pickle.dump(tuple(words[:3]), f, protocol=proto)
        expect[name] = words[:3]
        # the same object repeated: memo GET
        s = "repeated/key"
        name = f"memo-p{proto}.pickle"
        with open(os.path.join(pk, name), "wb") as f:
            pickle.dump([s, s, "other", s], f, protocol=proto)
        expect[name] = [s, s, "other", s]
    for proto in (3, 4):  # protocol 2 pickles bytes through _codecs.encode (GLOBAL + REDUCE): refused, see below
        name = f"bytes-p{proto}.pickle"
        with open(os.path.join(pk, name), "wb") as f:
            pickle.dump([b"abc", b"x" * 300, "mixed"], f, protocol=proto)
        expect[name] = ["abc", "x" * 300, "mixed"]
    # 10,000 items (several FRAMEs at protocol 4), keys following a pattern the test regenerates.
    big = [f"k{i}" for i in range(10000)]
    for proto in (2, 4):
        with open(os.path.join(pk, f"big-p{proto}.pickle"), "wb") as f:
            pickle.dump(big, f, protocol=proto)
    # A Python 2 pickle (AttnGAN wrote filenames.pickle with Python 2): SHORT_BINSTRING / BINSTRING.
    py2 = b"\x80\x02]q\x00(U\x05a/b_1q\x01T\x04\x01\x00\x00" + b"y" * 260 + b"q\x02h\x01e."
    assert pickle.loads(py2, encoding="latin1") == ["a/b_1", "y" * 260, "a/b_1"]
    with open(os.path.join(pk, "py2.pickle"), "wb") as f:
        f.write(py2)
    expect["py2.pickle"] = ["a/b_1", "y" * 260, "a/b_1"]

    # Refused: code execution through REDUCE (os.system) at protocols 2 and 4, bytes at protocol 2, a dict.
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > /tmp/ratfw-pwned",))

    allowed = {"PROTO", "FRAME", "MARK", "EMPTY_LIST", "EMPTY_TUPLE", "LIST", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3",
               "APPEND", "APPENDS", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "BINSTRING", "SHORT_BINSTRING",
               "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "MEMOIZE", "BINPUT", "LONG_BINPUT", "BINGET",
               "LONG_BINGET", "STOP"}

    def first_refused(data):
        """The first opcode the C reader must refuse, and its offset (pickletools' own decoding)."""
        for op, _, pos in pickletools.genops(data):
            if op.name not in allowed:
                return f"{op.name} (at byte offset {pos})"
        raise AssertionError("nothing to refuse")

    refused = {}
    cases = {f"evil-p{p}.pickle": ([Evil()], p) for p in (0, 2, 4)}
    cases["bytes-p2.pickle"] = ([b"abc"], 2)
    cases["dict-p4.pickle"] = ({"a": "b"}, 4)
    cases["int-p3.pickle"] = (["a", 1], 3)
    for name, (obj, proto) in cases.items():
        data = pickle.dumps(obj, protocol=proto)
        with open(os.path.join(pk, name), "wb") as f:
            f.write(data)
        refused[name] = first_refused(data)
    assert "REDUCE" in [op.name for op, _, _ in pickletools.genops(pickle.dumps([Evil()], protocol=2))]
    with open(os.path.join(pk, "expect.json"), "w", encoding="utf-8") as f:
        json.dump({"ok": expect, "refused": refused}, f, ensure_ascii=False, indent=0)


def write_idx(rs):
    d = os.path.join(DATA_DIR, "fmnist")
    os.makedirs(d, exist_ok=True)

    def idx(arr):
        return struct.pack(">BBBB", 0, 0, 8, arr.ndim) + b"".join(struct.pack(">I", n) for n in arr.shape) + \
            arr.astype(np.uint8).tobytes()

    tr_i = rs.integers(0, 256, (5, 4, 3))
    tr_l = np.array([0, 9, 7, 3, 1])
    te_i = rs.integers(0, 256, (2, 4, 3))
    te_l = np.array([5, 8])
    with gzip.GzipFile(os.path.join(d, "train-images-idx3-ubyte.gz"), "wb", mtime=0) as f:
        f.write(idx(tr_i))
    with gzip.GzipFile(os.path.join(d, "train-labels-idx1-ubyte.gz"), "wb", mtime=0) as f:
        f.write(idx(tr_l))
    with open(os.path.join(d, "t10k-images-idx3-ubyte"), "wb") as f:
        f.write(idx(te_i))
    with open(os.path.join(d, "t10k-labels-idx1-ubyte"), "wb") as f:
        f.write(idx(te_l))
    with open(os.path.join(d, "expect.json"), "w") as f:
        json.dump({"train_images": tr_i.reshape(-1).tolist(), "train_labels": tr_l.tolist(),
                   "test_images": te_i.reshape(-1).tolist(), "test_labels": te_l.tolist()}, f)


def main():
    seed(0)
    os.makedirs(os.path.join(DATA_DIR, "ref"), exist_ok=True)
    rs = np.random.default_rng(7)
    fx = Fixture("data")
    write_images(fx, rs)
    write_transforms(fx)
    fx.save()
    write_pickles()
    write_idx(rs)


if __name__ == "__main__":
    main()
