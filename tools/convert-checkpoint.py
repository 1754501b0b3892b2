#!/usr/bin/python3
"""Converts a GALIP, RATLIP or DF-GAN PyTorch checkpoint (torch.save of {'model': {'netG', 'netD', 'netC'}, ...};
names of reference §2.12) into a ratfw checkpoint (safetensors: model.generator.*, model.discriminator.*), so
that released or PyTorch-trained weights can be sampled with ratfw sample.

  /usr/bin/python3 tools/convert-checkpoint.py IN.pth OUT.safetensors [--kind galip|ratlip|dfgan] [--no-discriminator]

Needs python3-torch (to unpickle the checkpoint). A bare generator state dict (netG only) is accepted too. The
frozen CLIP copy inside GALIP/RATLIP generators (mapping.CLIP_ViT.*) is dropped: ratfw takes the CLIP from the
experiment's text encoder. DDP's "module." prefix is removed; BatchNorm's num_batches_tracked is dropped.
Use the model with the experiment that has the same widths (configs/paper/*); ratfw reports any tensor that does
not fit, by name and shape.
"""
import argparse
import os
import re
import sys

try:
    import torch
except ImportError:
    sys.exit("convert-checkpoint: needs PyTorch (Debian: apt-get install python3-torch)")

from safetensors_writer import save_safetensors  # tools/safetensors_writer.py, beside this script


def detect(g):
    names = " ".join(g)
    if "mapping.FBlocks." in names:
        return "ratlip" if ".rnn.weight_ih_l0" in names or ".se.cweight" in names else "galip"
    if "GBlocks." in names and re.search(r"(^| )fc\.weight", names):
        return "dfgan"
    sys.exit("convert-checkpoint: cannot tell the model from the generator's names (expected GALIP/RATLIP "
             "mapping.FBlocks.* or DF-GAN fc.* + GBlocks.*); give --kind")


# Affine MLPs: DF affine (named Sequential) and RATLIP's Affine_rnn (unnamed Sequential + LSTM).
AFFINE = [(r"\.fc_gamma\.(linear1|0)\.", ".gamma.fc1."), (r"\.fc_gamma\.(linear2|2)\.", ".gamma.fc2."),
          (r"\.fc_beta\.(linear1|0)\.", ".beta.fc1."), (r"\.fc_beta\.(linear2|2)\.", ".beta.fc2."),
          (r"\.rnn\.(weight_ih|weight_hh|bias_ih|bias_hh)_l0$", r".lstm.\1")]


def generator_name(k):
    """Released generator name -> ratfw name (without the model.generator. prefix), or None to drop."""
    if k.startswith("mapping.CLIP_ViT.") or k.endswith("num_batches_tracked"):
        return None
    k = re.sub(r"^mapping\.FBlocks\.(\d+)\.", r"mapping.\1.", k)
    k = re.sub(r"^GBlocks\.(\d+)\.", r"blocks.\1.", k)
    k = re.sub(r"^to_rgb\.1\.", "to_rgb.", k)
    for pat, rep in AFFINE:
        k = re.sub(pat, rep, k)
    # Slot convolutions are modules in ratfw: a plain nn.Conv2d there becomes the conv block's ".conv".
    k = re.sub(r"^(blocks\.\d+\.c[12]|mapping\.\d+\.conv2)\.(weight|bias)$", r"\1.conv.\2", k)
    k = k.replace(".se.", ".sa.")
    return k


def tensor_for(k, v):
    v = v.detach().to(torch.float32).contiguous()
    if re.search(r"\.sa\.(cweight|cbias|sweight|sbias)$", k):
        v = v.reshape(-1)  # (1, m, 1, 1) -> (m,)
    return v


def strip(sd):
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in sd.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--kind", choices=["galip", "ratlip", "dfgan"])
    ap.add_argument("--no-discriminator", action="store_true", help="write the generator only")
    a = ap.parse_args()
    try:
        ck = torch.load(a.input, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - any unpickling failure is reported the same way
        sys.exit(f"convert-checkpoint: cannot read {a.input} as a PyTorch checkpoint: {e}")
    models = ck.get("model", ck) if isinstance(ck, dict) else None
    if not isinstance(models, dict):
        sys.exit(f"convert-checkpoint: {a.input} holds no state dicts")
    if "netG" in models:
        g, d, c = strip(models["netG"]), strip(models.get("netD", {})), strip(models.get("netC", {}))
    elif all(torch.is_tensor(v) for v in models.values()):
        g, d, c = strip(models), {}, {}
    else:
        sys.exit(f"convert-checkpoint: {a.input}: expected {{'model': {{'netG', 'netD', 'netC'}}}} or a state dict")
    kind = a.kind or detect(g)
    out, dropped = {}, 0
    for k, v in g.items():
        n = generator_name(k)
        if n is None:
            dropped += 1
            continue
        out["model.generator." + n] = tensor_for(n, v)
    if not a.no_discriminator:
        for k, v in list(d.items()) + list(c.items()):
            if k.endswith("num_batches_tracked"):
                continue
            out["model.discriminator." + k] = tensor_for(k, v)
    meta = {"step": "0", "converted_from": os.path.basename(a.input), "kind": kind}
    if isinstance(ck, dict) and "epoch" in ck:
        meta["epoch"] = str(ck["epoch"])
    save_safetensors(a.output, out, meta)
    ng = sum(1 for k in out if k.startswith("model.generator."))
    print(f"convert-checkpoint: {kind}: {ng} generator and {len(out) - ng} discriminator tensors -> {a.output}"
          f" ({dropped} frozen CLIP / counter tensors dropped)")


if __name__ == "__main__":
    main()
