"""Reference for ratfw ablate's statistics (core/ablate/stats.c): mean, sample standard deviation, the
regularised incomplete beta function and Welch's two-sided t-test, computed by SciPy
(scipy.stats.ttest_ind(equal_var=False), scipy.special.betainc) on seeded samples of the sizes and scales an
ablation table meets (2 to 10 seeds; accuracies near 0.4, FIDs near 100, CLIP scores near 25). Writes
tests/fixtures/ablate_stats.json (doubles as repr, so nothing is lost). Run with /usr/bin/python3 (python3-scipy).
"""
import json
import os

import numpy as np
from scipy import special, stats

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "ablate_stats.json")


def main():
    rng = np.random.default_rng(20240512)
    welch = []
    # (n_a, n_b, mean_a, mean_b, std_a, std_b): equal means, small and large differences, unequal spreads and sizes
    shapes = [(2, 2, 0.40, 0.41, 0.01, 0.02), (3, 3, 0.40, 0.46, 0.015, 0.02), (3, 3, 100.0, 100.5, 3.0, 1.0),
              (3, 3, 25.0, 31.0, 0.2, 0.3), (2, 5, 0.30, 0.35, 0.05, 0.01), (5, 2, 12.0, 11.0, 0.5, 2.0),
              (3, 10, 0.5, 0.5, 0.1, 0.1), (10, 10, 50.0, 50.2, 1.0, 1.0), (4, 3, 1e-3, 2e-3, 1e-4, 5e-4),
              (3, 3, 0.9, 0.2, 0.001, 0.002), (2, 3, -5.0, 5.0, 4.0, 4.0), (6, 4, 0.0, 0.0, 1.0, 3.0)]
    for na, nb, ma, mb, sa, sb in shapes:
        a = rng.normal(ma, sa, na)
        b = rng.normal(mb, sb, nb)
        res = stats.ttest_ind(a, b, equal_var=False)
        va, vb = a.var(ddof=1) / na, b.var(ddof=1) / nb
        df = (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1))
        welch.append({"a": [float(x) for x in a], "b": [float(x) for x in b],
                      "mean_a": float(np.mean(a)), "std_a": float(np.std(a, ddof=1)),
                      "mean_b": float(np.mean(b)), "std_b": float(np.std(b, ddof=1)),
                      "t": float(res.statistic), "df": float(df), "p": float(res.pvalue)})
    betainc = []
    for a, b, x in [(0.5, 0.5, 0.3), (1.0, 0.5, 0.999), (2.5, 0.5, 0.01), (0.5, 2.0, 0.5), (10.0, 0.5, 0.9),
                    (25.0, 0.5, 0.98), (3.0, 7.0, 0.2), (7.0, 3.0, 0.8), (50.0, 50.0, 0.5), (1.5, 0.5, 1e-6),
                    (0.75, 0.5, 0.999999), (4.0, 4.0, 0.0), (4.0, 4.0, 1.0)]:
        betainc.append({"a": a, "b": b, "x": x, "value": float(special.betainc(a, b, x))})
    with open(OUT, "w") as f:
        json.dump({"source": "tools/reference/ref_ablate_stats.py (scipy " + __import__("scipy").__version__ + ")",
                   "welch": welch, "betainc": betainc}, f, indent=1)
        f.write("\n")
    print(OUT)


if __name__ == "__main__":
    main()
