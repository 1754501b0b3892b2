#!/usr/bin/python3
"""Golden data for the Inception-v3 FID extractors (core/eval/inception.c, tests/test-inception.sh).

Writes into OUTDIR (generated at test time: the weights are ~100 MB each, never committed):
  tv.safetensors    (and tv.pth with --pth) torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True), seed 0,
                    with BatchNorm running statistics calibrated on random images and then randomised (and random
                    affine gamma/beta), so that folding them into the convolutions is tested;
  fid.safetensors   pytorch-fid's FID-Inception (1008-class fc) built here the same way;
  data.safetensors  images [N, 3, S, S] in [-1, 1]; the pool3 features [N, 2048] of each network and
                    preprocessing, computed by the model in float64 from the float32 weights written; and the pooling
                    ops' cases (max_pool2d, avg_pool2d with count_include_pad True/False).

pytorch-fid is not installed here, so its blocks are written below from the published source,
pytorch_fid/inception.py (mseitzer/pytorch-fid v0.3.0, Apache-2.0): fid_inception_v3() builds torchvision's
Inception3(num_classes=1008, aux_logits=False) and replaces Mixed_5b..5d with FIDInceptionA, Mixed_6b..6e with
FIDInceptionC, Mixed_7b with FIDInceptionE_1 and Mixed_7c with FIDInceptionE_2; InceptionV3 resizes its [0, 1] input
bilinearly to 299 (align_corners=False) and normalises it to 2x - 1.

GALIP/RATLIP's preprocessing (reference §9.1, the released quirk): u = (x + 1)/2, bilinear resize to 299,
v_c = u std_c/0.5 + (mean_c - 0.5)/0.5 with ImageNet mean/std. "standard": the network sees x in [-1, 1] resized.

Usage: /usr/bin/python3 tools/reference/ref_inception.py OUTDIR [--images N] [--size S]
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F
import torchvision
from torchvision.models.inception import InceptionA, InceptionC, InceptionE, Inception3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import save_safetensors  # noqa: E402


class FIDInceptionA(InceptionA):
    def forward(self, x):
        branch1x1 = self.branch1x1(x)
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        # Patch: Tensorflow's average pool does not use the padded zero's in its average calculation
        branch_pool = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
        branch_pool = self.branch_pool(branch_pool)
        return torch.cat([branch1x1, branch5x5, branch3x3dbl, branch_pool], 1)


class FIDInceptionC(InceptionC):
    def forward(self, x):
        branch1x1 = self.branch1x1(x)
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = self.branch7x7dbl_1(x)
        branch7x7dbl = self.branch7x7dbl_3(self.branch7x7dbl_2(branch7x7dbl))
        branch7x7dbl = self.branch7x7dbl_5(self.branch7x7dbl_4(branch7x7dbl))
        branch_pool = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
        branch_pool = self.branch_pool(branch_pool)
        return torch.cat([branch1x1, branch7x7, branch7x7dbl, branch_pool], 1)


class FIDInceptionE_1(InceptionE):
    def forward(self, x):
        branch1x1 = self.branch1x1(x)
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1)
        branch_pool = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
        branch_pool = self.branch_pool(branch_pool)
        return torch.cat([branch1x1, branch3x3, branch3x3dbl, branch_pool], 1)


class FIDInceptionE_2(InceptionE):
    def forward(self, x):
        branch1x1 = self.branch1x1(x)
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1)
        # Patch: The FID Inception model uses max pooling instead of average pooling. This is likely an error in
        # this specific Inception implementation, as other Inception models use average pooling here.
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        branch_pool = self.branch_pool(branch_pool)
        return torch.cat([branch1x1, branch3x3, branch3x3dbl, branch_pool], 1)


def fid_inception_v3():
    net = Inception3(num_classes=1008, aux_logits=False, init_weights=True)
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE_1(1280)
    net.Mixed_7c = FIDInceptionE_2(2048)
    return net


def randomise_bn(net, gen):
    """Running statistics from one train-mode pass over random images (so activations stay of order one through
    94 layers), then perturbed, with random gamma/beta: every BatchNorm parameter matters."""
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    net.train()
    with torch.no_grad():
        net(torch.rand(2, 3, 299, 299, generator=gen) * 2 - 1)
        for m in bns:
            c = m.num_features
            m.running_mean += 0.2 * m.running_var.sqrt() * torch.randn(c, generator=gen)
            m.running_var *= 0.5 + 1.5 * torch.rand(c, generator=gen)
            m.weight.copy_(0.5 + torch.rand(c, generator=gen))
            m.bias.copy_(0.2 * torch.randn(c, generator=gen))
    net.eval()


def pool3(net, x):
    """Features after the final average pool: Inception3's forward with fc (and dropout, eval) replaced."""
    fc = net.fc
    net.fc = torch.nn.Identity()
    try:
        with torch.no_grad():
            return net(x)
    finally:
        net.fc = fc


MEAN = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)


def preprocess(x, how):
    """x [N, 3, S, S] float64 in [-1, 1] -> the network's input."""
    u = (x + 1) / 2
    u = F.interpolate(u, size=(299, 299), mode="bilinear", align_corners=False)
    if how == "galip":  # §9.1: transform_input's formula applied to a [0, 1] image
        return u * (STD / 0.5) + (MEAN - 0.5) / 0.5
    return 2 * u - 1  # standard (torchvision's intent) and pytorch-fid's normalize_input


def state(net):
    return {k: v.detach().float().contiguous() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--pth", action="store_true", help="also write tv.pth (torch.save of the torchvision state dict)")
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("RATFW_TORCH_THREADS", "2")))
    os.makedirs(a.outdir, exist_ok=True)
    data = {}
    gen = torch.Generator().manual_seed(0)
    # images: smooth random fields in [-1, 1] (a coarse grid upsampled) plus some pixel noise, clamped
    coarse = torch.randn(a.images, 3, 8, 8, generator=gen, dtype=torch.float64)
    img = F.interpolate(coarse, size=(a.size, a.size), mode="bicubic", align_corners=False)
    img = (0.6 * img + 0.2 * torch.randn(a.images, 3, a.size, a.size, generator=gen, dtype=torch.float64)).clamp(-1, 1)
    img = img.float().double()  # what the C side reads
    data["images"] = img.float()

    torch.manual_seed(0)
    tv = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True)
    randomise_bn(tv, gen)
    st = state(tv)
    save_safetensors(os.path.join(a.outdir, "tv.safetensors"), st, {"what": "random torchvision inception_v3"})
    if a.pth:  # the state dict as torch.save writes it, for tools/convert-inception.py
        torch.save(tv.state_dict(), os.path.join(a.outdir, "tv.pth"))
    tv.load_state_dict(st, strict=False)
    tv.double()
    for how in ("galip", "standard"):
        data[f"tv.{how}"] = pool3(tv, preprocess(img, how)).float()
    del tv

    torch.manual_seed(1)
    fid = fid_inception_v3()
    randomise_bn(fid, gen)
    st = state(fid)
    save_safetensors(os.path.join(a.outdir, "fid.safetensors"), st, {"what": "random pytorch-fid FID-Inception"})
    fid.load_state_dict(st, strict=False)
    fid.double()
    data["fid.standard"] = pool3(fid, preprocess(img, "standard")).float()

    # the pooling ops alone
    px = torch.randn(2, 5, 9, 9, generator=gen, dtype=torch.float64).float()
    data["pool.x"] = px
    x64 = px.double()
    data["pool.max_3_2_0"] = F.max_pool2d(x64, 3, 2, 0).float()
    data["pool.max_3_1_1"] = F.max_pool2d(x64, 3, 1, 1).float()
    data["pool.avg_incl_3_1_1"] = F.avg_pool2d(x64, 3, 1, 1, count_include_pad=True).float()
    data["pool.avg_excl_3_1_1"] = F.avg_pool2d(x64, 3, 1, 1, count_include_pad=False).float()
    data["pool.avg_excl_3_2_1"] = F.avg_pool2d(x64, 3, 2, 1, count_include_pad=False).float()
    save_safetensors(os.path.join(a.outdir, "data.safetensors"), data,
                     {"torch": torch.__version__, "torchvision": torchvision.__version__})


if __name__ == "__main__":
    main()
