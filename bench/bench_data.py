"""PyTorch side of bench/bench-data.c: PIL decode alone, and PIL + torchvision (Resize(304), RandomCrop(256),
RandomHorizontalFlip, ToTensor, Normalize(0.5, 0.5): the reference transform, §7.3) through a DataLoader with
num_workers = OMP_NUM_THREADS (0 workers for one thread), on the same JPEG files.
  bench_data.py DIR [size] [batch] [passes]      time
  bench_data.py --make DIR [count]               write count (default 256) synthetic 500x375 JPEG photos
"""
import os
import sys
import time

import torch
from PIL import Image, ImageDraw


def make(d, count):
    import random
    os.makedirs(d, exist_ok=True)
    rs = random.Random(0)
    for i in range(count):
        w, h = 500, 375
        # Smooth gradients, a few ellipses and noise, saved at quality 90 like a photo.
        img = Image.linear_gradient("L").resize((w, h)).convert("RGB")
        dr = ImageDraw.Draw(img)
        for _ in range(6):
            x, y = rs.randrange(w), rs.randrange(h)
            r = rs.randrange(20, 120)
            dr.ellipse([x - r, y - r, x + r, y + r], fill=(rs.randrange(256), rs.randrange(256), rs.randrange(256)))
        noise = Image.effect_noise((w, h), 24).convert("RGB")
        img = Image.blend(img, noise, 0.15)
        img.save(os.path.join(d, f"img_{i:05d}.jpg"), quality=90)
    print(f"wrote {count} images to {d}")


class Files(torch.utils.data.Dataset):
    def __init__(self, paths, tf):
        self.paths, self.tf = paths, tf

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.tf(Image.open(self.paths[i]).convert("RGB"))


def main():
    if sys.argv[1] == "--make":
        make(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 256)
        return
    import torchvision.transforms as T
    d = sys.argv[1]
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    passes = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
    torch.set_num_threads(1)  # per-image work is PIL's; parallelism comes from the workers
    paths = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".jpg"))
    n = len(paths) - len(paths) % batch
    paths = paths[:n]
    t0 = time.perf_counter()
    for _ in range(passes):
        for p in paths:
            Image.open(p).convert("RGB")
    dec = time.perf_counter() - t0
    tf = T.Compose([T.Resize(int(size * 76 / 64)), T.RandomCrop(size), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    workers = threads if threads > 1 else 0
    dl = torch.utils.data.DataLoader(Files(paths, tf), batch_size=batch, shuffle=False, num_workers=workers,
                                     persistent_workers=workers > 0)
    for b in dl:  # warm-up pass (starts the workers)
        break
    t0 = time.perf_counter()
    for _ in range(passes):
        for b in dl:
            pass
    full = time.perf_counter() - t0
    print(f"{'torch':6s} {'decode (1 thread, PIL)':44s} {1:8d} {passes * n / dec:10.1f}")
    print(f"{'torch':6s} {'decode + augment + batch (PIL+torchvision)':44s} {threads:8d} {passes * n / full:10.1f}")


if __name__ == "__main__":
    main()
