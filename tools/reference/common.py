"""Shared helpers for the PyTorch reference scripts that write ratfw's golden fixtures.

Fixtures are safetensors files (written here without the safetensors package, which Debian lacks) holding
named tensors plus a JSON "cases" list in the metadata. Run with Debian's python3-torch: /usr/bin/python3.
References are computed in float64 from float32 inputs and stored as float32, so the fixture is closer to
the exact answer than either implementation.
"""
import json
import os
import struct
import sys

import torch

FIXTURE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures")


def _dtype_name(t):
    if t.dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        return "F32", t.to(torch.float32)
    if t.dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool):
        return "I32", t.to(torch.int32)
    raise TypeError(f"unsupported dtype {t.dtype}")


def save_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> torch.Tensor (written in insertion order); metadata: dict str -> str."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        dname, t = _dtype_name(t.detach().cpu().contiguous())
        data = t.numpy().tobytes()
        header[name] = {"dtype": dname, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


class Fixture:
    """Collects cases: fx.case(op='conv2d', stride=2, x=tensor, y=tensor, ...). Tensor-valued keyword
    arguments are stored as 'c<index>.<key>'; everything else goes into the case's JSON entry."""

    def __init__(self, name):
        self.name = name
        self.tensors = {}
        self.cases = []

    def case(self, **kw):
        idx = len(self.cases)
        entry = {"index": idx}
        for k, v in kw.items():
            if isinstance(v, torch.Tensor):
                self.tensors[f"c{idx}.{k}"] = v
                entry.setdefault("tensors", []).append(k)
            else:
                entry[k] = v
        self.cases.append(entry)
        return idx

    def save(self):
        os.makedirs(FIXTURE_DIR, exist_ok=True)
        path = os.path.join(FIXTURE_DIR, self.name + ".safetensors")
        meta = {"cases": json.dumps(self.cases), "torch": torch.__version__, "generator": os.path.basename(sys.argv[0])}
        save_safetensors(path, self.tensors, meta)
        size = os.path.getsize(path)
        print(f"wrote {path} ({len(self.cases)} cases, {size} bytes)")


def grads(out, inputs, grad_out):
    """Gradients of <grad_out, out> w.r.t. inputs (None for inputs that get none)."""
    return torch.autograd.grad(out, inputs, grad_out, allow_unused=True)


def seed(s=0):
    torch.manual_seed(s)
    torch.set_num_threads(1)
