"""Golden fixtures for ratfw's view and shape ops (tests/test-shape.c): reshape/view/permute/transpose/expand,
layout copies, slice/select/squeeze/unsqueeze/flatten, concat, split, tile (torch.Tensor.repeat) and roll.
Writes tests/fixtures/shape.safetensors with the same case layout as ref_elementwise.py.
Run with Debian's torch 1.13: /usr/bin/python3 ref_shape.py
"""
import torch

from common import Fixture, seed
from ref_elementwise import add_case, rnd


def main():
    fx = Fixture("shape")
    x = rnd(2, 3, 4, 5)
    for shape in [(6, 20), (2, -1, 5), (120,), (2, 3, 20), (1, 2, 3, 4, 5, 1), (4, 30)]:
        add_case(fx, "reshape", [x], lambda a: a.reshape(shape), shape=list(shape))
    add_case(fx, "reshape", [rnd()], lambda a: a.reshape(1, 1), shape=[1, 1])
    add_case(fx, "reshape", [rnd(1, 1)], lambda a: a.reshape(()), shape=[])
    add_case(fx, "reshape", [rnd(0, 4)], lambda a: a.reshape(2, 0, 2), shape=[2, 0, 2])
    for shape in [(6, 20), (2, 3, 20), (2, -1)]:
        add_case(fx, "view", [x], lambda a: a.view(shape), shape=list(shape))
    for perm in [(0, 2, 3, 1), (3, 2, 1, 0), (1, 0, 2, 3)]:
        add_case(fx, "permute", [x], lambda a: a.permute(perm), perm=list(perm))
    for d0, d1 in [(0, 1), (1, 3), (-1, -2), (2, 2)]:
        add_case(fx, "transpose", [x], lambda a: a.transpose(d0, d1), d0=d0, d1=d1)
    for src, dst in [((3, 1), (2, 3, 4)), ((1, 3, 1, 1), (2, 3, 4, 5)), ((), (2, 3)), ((4,), (4,)), ((2, 1), (2, 0))]:
        add_case(fx, "expand", [rnd(*src)], lambda a: a.expand(dst), shape=list(dst))
    for op in ("contiguous", "copy", "to_nhwc"):
        add_case(fx, op, [x], lambda a: a.clone())
    for ax, s, e in [(0, 1, 2), (1, 0, 2), (3, 1, 4), (2, -3, -1), (3, 2, 100), (1, 2, 2), (-1, 0, 5)]:
        def f(a, ax=ax, s=s, e=e):
            idx = [slice(None)] * a.dim()
            idx[ax] = slice(s, e)
            return a[tuple(idx)]
        add_case(fx, "slice", [x], f, axis=ax, start=s, end=e)
    for ax, i in [(0, 1), (1, -1), (3, 2), (2, 0)]:
        add_case(fx, "select", [x], lambda a: a.select(ax, i), axis=ax, index=i)
    add_case(fx, "select", [rnd(5)], lambda a: a.select(0, 3), axis=0, index=3)  # to 0-d
    for ax in (0, 2, 4, -1):
        add_case(fx, "unsqueeze", [x], lambda a: a.unsqueeze(ax), axis=ax)
    add_case(fx, "unsqueeze", [rnd()], lambda a: a.unsqueeze(0), axis=0)
    add_case(fx, "flatten", [rnd()], lambda a: a.flatten(), start=0, end=-1)  # 0-d -> [1]
    add_case(fx, "expand", [rnd(3, 1)], lambda a: a.expand(2, -1, 4), shape=[2, -1, 4])
    y = rnd(2, 1, 4, 1)
    for ax in (1, 3, -1, 0):
        add_case(fx, "squeeze", [y], lambda a: a.squeeze(ax), axis=ax)
    for s, e in [(0, -1), (1, 3), (2, 3), (0, 0), (-2, -1)]:
        add_case(fx, "flatten", [x], lambda a: a.flatten(s, e), start=s, end=e)

    # concat along every axis; channel concat of a feature map with tiled sentence vectors (the NetC head)
    for ax in range(4):
        parts = [rnd(*[(k + 1 if d == ax else x.shape[d]) for d in range(4)]) for k in range(3)]
        add_case(fx, "concat", parts, lambda *ts: torch.cat(ts, ax), axis=ax)
    add_case(fx, "concat", [rnd(2, 3), rnd(2, 0), rnd(2, 1)], lambda *ts: torch.cat(ts, 1), axis=1)
    add_case(fx, "concat", [rnd(4)], lambda *ts: torch.cat(ts, 0), axis=0)
    add_case(fx, "concat", [rnd(2, 3, 4, 5), rnd(2, 2, 4, 5)], lambda *ts: torch.cat(ts, -3), axis=-3)

    for ax, sizes in [(1, [1, 2]), (3, [2, 0, 3]), (0, [2]), (-2, [1, 1, 2])]:
        add_case(fx, "split", [x], lambda a: torch.split(a, sizes, ax), axis=ax, sizes=sizes)

    for src, reps in [((2, 3), (2, 2)), ((2, 3, 1, 1), (1, 1, 4, 5)), ((3,), (2, 1, 2)), ((2, 3, 4, 5), (1, 2, 1, 2)),
                      ((), (3,)), ((2, 3), (1, 1)), ((2, 1, 3), (2, 3, 1, 2)), ((2, 3), (0, 2))]:
        add_case(fx, "tile", [rnd(*src)], lambda a: a.repeat(reps), reps=list(reps))
    for shift, ax in [(1, 0), (-1, 0), (2, 3), (-7, 3), (5, 1), (0, 2), (13, -1)]:
        add_case(fx, "roll", [x], lambda a: torch.roll(a, shift, ax), shift=shift, axis=ax)
    fx.save()


if __name__ == "__main__":
    seed(2)
    main()
