#!/usr/bin/python3
"""Writes tests/fixtures/layouts/: tiny datasets in the cub, oxford, faces and folder layouts (reference §8), with
the split pickles written by Python's own pickle module at protocols 2, 3 and 4, a corrupt image, a pickle that
would run code if unpickled, and expected.json with what a correct loader must report: the keys of each split in
order, each item's captions (non-empty lines of its text file), and for cub the crop box of the reference's
get_imgs (RATLIP lib/datasets.py: bbox cast to int, r = int(0.75 max(w, h)), centre int((2x+w)/2)) with the
size and per-channel pixel sums PIL gives for Image.open(p).convert('RGB').crop(box).

  /usr/bin/python3 tools/make-layout-fixtures.py          (needs python3-pil)
"""
import json
import os
import pickle
import random
import shutil

from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "layouts")


def picture(w, h, rs):
    """Smooth colour field with a bright rectangle: crops and flips change the channel sums."""
    img = Image.new("RGB", (w, h))
    px = img.load()
    a, b, c = rs.randrange(256), rs.randrange(256), rs.randrange(256)
    x0, y0 = rs.randrange(w // 2), rs.randrange(h // 2)
    for y in range(h):
        for x in range(w):
            inside = x0 <= x < x0 + w // 3 and y0 <= y < y0 + h // 3
            px[x, y] = (255, 250, 40) if inside else ((a + 3 * x) % 256, (b + 5 * y) % 256, (c + x + y) % 256)
    return img


def save_jpeg(img, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path, quality=92)


def write_text(path, lines, crlf=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write(("\r\n" if crlf else "\n").join(lines))


def write_pickle(path, keys, proto):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(keys, f, protocol=proto)


def captions_of(lines):
    return [l for l in lines if l]


def pixel_sums(img):
    s = [0, 0, 0]
    for p in img.getdata():
        for k in range(3):
            s[k] += p[k]
    return s


def cub_box(w, h, bbox):
    x, y, bw, bh = [int(v) for v in bbox]
    r = int(max(bw, bh) * 0.75)
    cx, cy = int((2 * x + bw) / 2), int((2 * y + bh) / 2)
    return [max(0, cx - r), max(0, cy - r), min(w, cx + r), min(h, cy + r)]


def make_cub(rs, expect):
    d = os.path.join(ROOT, "birds")
    classes = ["001.Black_footed_Albatross", "014.Indigo_Bunting"]
    keys, boxes = [], {}
    lines_images, lines_boxes = [], []
    n = 0
    for ci, cls in enumerate(classes):
        for k in range(3):
            n += 1
            key = f"{cls}/{cls.split('.')[1]}_{k + 1:04d}_{1000 + n}"
            w, h = 40 + 8 * k, 36 + 4 * ci
            img = picture(w, h, rs)
            save_jpeg(img, os.path.join(d, "CUB_200_2011", "images", key + ".jpg"))
            # Floats as in the real file; one box at the border so the crop is clipped and not square.
            bbox = [[6.0, 5.0, 20.0, 14.0], [0.0, 1.0, 30.7, 22.2], [25.0, 20.0, 17.0, 15.0]][k]
            boxes[key] = bbox
            lines_images.append(f"{n} {key}.jpg")
            lines_boxes.append(f"{n} " + " ".join(f"{v:.1f}" for v in bbox))
            caps = [f"a small bird number {n} with a {['red', 'blue', 'grey'][k]} crown", "",
                    "this bird has wings that are brown and has a long bill", f"caption {n}.3: über-bird, naïve café"]
            write_text(os.path.join(d, "text", key + ".txt"), caps + [""], crlf=(k == 1))
            keys.append(key)
    # An image listed in images.txt but in no split (the real images.txt lists all 11,788).
    lines_images.append(f"{n + 1} 014.Indigo_Bunting/unused.jpg")
    lines_boxes.append(f"{n + 1} 1.0 1.0 5.0 5.0")
    write_text(os.path.join(d, "CUB_200_2011", "images.txt"), lines_images + [""])
    write_text(os.path.join(d, "CUB_200_2011", "bounding_boxes.txt"), lines_boxes + [""])
    split = {"train": [keys[0], keys[1], keys[3], keys[4]], "test": [keys[5], keys[2]]}
    write_pickle(os.path.join(d, "train", "filenames.pickle"), split["train"], 2)
    write_pickle(os.path.join(d, "test", "filenames.pickle"), split["test"], 3)
    out = {}
    for s, ks in split.items():
        items = []
        for key in ks:
            with open(os.path.join(d, "text", key + ".txt")) as f:  # universal newlines, as the reference reads
                caps = captions_of(f.read().split("\n"))
            img = Image.open(os.path.join(d, "CUB_200_2011", "images", key + ".jpg")).convert("RGB")
            box = cub_box(img.width, img.height, boxes[key])
            crop = img.crop(box)
            items.append({"key": key, "captions": caps, "box": box, "size": [crop.width, crop.height],
                          "sums": pixel_sums(crop)})
        out[s] = items
    expect["cub"] = out


def make_simple(rs, expect, name, kind, protos):
    d = os.path.join(ROOT, name)
    keys = []
    for i in range(5):
        if kind == "oxford":
            key = f"image_{i + 1:05d}.jpg"
            img_path, txt_key = os.path.join(d, "images", key), key[:-4]
        else:
            key = f"{i * 7 + 3}"
            img_path, txt_key = os.path.join(d, "images", key + ".jpg"), key
        save_jpeg(picture(24 + 4 * i, 30, rs), img_path)
        write_text(os.path.join(d, "text", txt_key + ".txt"),
                   [f"{kind} item {i} caption {c}" for c in range(1 + i % 3)] + [""])
        keys.append(key)
    split = {"train": keys[:3], "test": keys[3:]}
    if kind == "oxford":
        # A corrupt test image: a truncated JPEG.
        bad = os.path.join(d, "images", keys[4])
        with open(bad, "rb") as f:
            data = f.read()
        with open(bad, "wb") as f:
            f.write(data[: len(data) // 3])
    write_pickle(os.path.join(d, "train", "filenames.pickle"), split["train"], protos[0])
    write_pickle(os.path.join(d, "test", "filenames.pickle"), split["test"], protos[1])
    out = {}
    for s, ks in split.items():
        items = []
        for key in ks:
            txt_key = key[:-4] if kind == "oxford" else key
            with open(os.path.join(d, "text", txt_key + ".txt")) as f:
                caps = captions_of(f.read().split("\n"))
            item = {"key": key, "captions": caps}
            path = os.path.join(d, "images", key if kind == "oxford" else key + ".jpg")
            try:
                img = Image.open(path).convert("RGB")
                item["size"], item["sums"] = [img.width, img.height], pixel_sums(img)
            except OSError:
                item["corrupt"] = True
            items.append(item)
        out[s] = items
    expect[kind] = out


def make_folder(rs, expect):
    d = os.path.join(ROOT, "folder")
    names = ["cats/tabby.png", "cats/black.jpg", "dogs/collie.jpeg", "dogs/pug.png", "lone.png"]
    for i, n in enumerate(names):
        p = os.path.join(d, n)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        picture(20 + 2 * i, 16, rs).save(p)
        stem = os.path.splitext(n)[0]
        write_text(os.path.join(d, stem + ".txt"), [f"a picture of {os.path.basename(stem)}", "second line"])
    write_text(os.path.join(ROOT, "folder-test.txt"), ["dogs/pug.png", "lone", ""])
    # Sorted relative paths; test items from the list, in that same order.
    order = sorted(names)
    expect["folder"] = {"train": [n for n in order if n not in ("dogs/pug.png", "lone.png")],
                        "test": [n for n in order if n in ("dogs/pug.png", "lone.png")]}


def make_evil():
    """A faces layout whose train pickle would call os.system when unpickled: the loader must refuse it."""
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch /tmp/ratfw-pickle-pwned",))

    d = os.path.join(ROOT, "evil")
    os.makedirs(os.path.join(d, "train"), exist_ok=True)
    with open(os.path.join(d, "train", "filenames.pickle"), "wb") as f:
        pickle.dump([Evil()], f, protocol=4)
    write_pickle(os.path.join(d, "test", "filenames.pickle"), ["1"], 4)


def main():
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    os.makedirs(ROOT)
    rs = random.Random(7)
    expect = {}
    make_cub(rs, expect)
    make_simple(rs, expect, "flower", "oxford", (4, 2))
    make_simple(rs, expect, "faces", "faces", (3, 4))
    make_folder(rs, expect)
    make_evil()
    with open(os.path.join(ROOT, "expected.json"), "w") as f:
        json.dump(expect, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("wrote", os.path.normpath(ROOT))


if __name__ == "__main__":
    main()
