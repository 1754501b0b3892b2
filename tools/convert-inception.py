#!/usr/bin/python3
"""Converts Inception-v3 weights for ratfw's FID extractors (core/eval/inception.c, docs/inception.md) from a
PyTorch .pth to safetensors with the same parameter names (Conv2d_1a_3x3.conv.weight, ...bn.running_mean, ...).

  /usr/bin/python3 tools/convert-inception.py IN.pth OUT.safetensors

IN.pth is either
  - torchvision's inception_v3_google-0cc3c7bd.pth (ImageNet, 1000-class fc): use `extractor: inception`
    (GALIP/RATLIP's FID, reference §9.1), or
  - pytorch-fid's pt_inception-2015-12-05-6726825d.pth (the TF FID graph ported, 1008-class fc): use
    `extractor: inception_fid` (the FID most papers report);
a state dict, or a dict holding one under "state_dict"/"model", or a pickled module. AuxLogits.* and BatchNorm's
num_batches_tracked are dropped (pool3 does not use them); "module." prefixes are removed; everything is stored as
float32. The output's metadata records the source file's name and SHA-256 and the variant. Needs python3-torch.
"""
import argparse
import hashlib
import os
import sys

try:
    import torch
except ImportError:
    sys.exit("convert-inception: needs PyTorch (Debian: apt-get install python3-torch)")

from safetensors_writer import save_safetensors  # tools/safetensors_writer.py, beside this script


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("output")
    a = ap.parse_args()
    obj = torch.load(a.input, map_location="cpu")
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        sys.exit(f"convert-inception: {a.input} holds no state dict of tensors")
    out = {}
    for k, v in obj.items():
        k = k[len("module."):] if k.startswith("module.") else k
        if k.startswith("AuxLogits.") or k.endswith("num_batches_tracked"):
            continue
        out[k] = v
    if "Conv2d_1a_3x3.conv.weight" not in out or "Mixed_7c.branch_pool.bn.running_var" not in out:
        sys.exit(f"convert-inception: {a.input} is not an Inception-v3 state dict in torchvision's names "
                 "(no Conv2d_1a_3x3.conv.weight / Mixed_7c.branch_pool.bn.running_var)")
    classes = out["fc.weight"].shape[0] if "fc.weight" in out else None
    variant = {1000: "inception", 1008: "inception_fid"}.get(classes, "unknown")
    with open(a.input, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    save_safetensors(a.output, out, {"source": os.path.basename(a.input), "source_sha256": sha, "extractor": variant,
                                     "fc_classes": classes})
    print(f"{a.output}: {len(out)} tensors from {os.path.basename(a.input)} (fc: {classes} classes): "
          f"use extractor: {variant}" if variant != "unknown" else
          f"{a.output}: {len(out)} tensors; fc has {classes} classes: neither torchvision's (1000) nor pytorch-fid's "
          "(1008) weights")


if __name__ == "__main__":
    main()
