"""Reference for the Frechet distance (core/eval/fid.c, `ratfw eval fid`): pytorch-fid's
calculate_frechet_distance (scipy.linalg.sqrtm of the product, the 1e-6 I offset when the result is not finite,
the real part after the imaginary-component check) on small seeded feature sets, plus the same distance computed
at 50 significant digits with mpmath (eigenvalues of S1^(1/2) S2 S1^(1/2)) as the exact value.

Writes tests/fixtures/fid/: feature sets (`features` [N, D]) and Gaussian statistics (`mu` [D], `sigma` [D, D]) as
.npz, and fid.json with, for each pair of files, the value pytorch-fid gives (`scipy`), whether its fallback ran,
the value with the offset forced (`scipy_offset`, to show what the fallback changes), and the exact value with its
terms. Regenerate with /usr/bin/python3 tools/reference/ref_fid.py (python3-scipy, python3-mpmath).

Cases: two correlated 40 x 16 sets (one stored float64, one float32, whose reference is computed from the float32
values widened); their mu/sigma files; a mixed pair (features against statistics); a set against itself (FID 0);
and a rank-deficient pair, 10 samples of 16-d features of which 4 are constant (dead units, as ReLU features have),
so both covariances are singular. scipy's sqrtm stays finite on it, so pytorch-fid's offset does not run there
either; `scipy_offset` records how far the offset would move the value (1.5e-6 to 2.7e-6 relative here).
"""
import json
import os

import mpmath
import numpy as np
import scipy
from scipy import linalg

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "tests", "fixtures", "fid")
EPS = 1e-6  # pytorch-fid's default


def calculate_frechet_distance(mu1, sigma1, mu2, sigma2, eps=EPS, force_offset=False):
    """pytorch-fid 0.3.0 src/pytorch_fid/fid_score.py, line for line (plus force_offset and the flag returned)."""
    mu1 = np.atleast_1d(mu1)
    mu2 = np.atleast_1d(mu2)
    sigma1 = np.atleast_2d(sigma1)
    sigma2 = np.atleast_2d(sigma2)
    assert mu1.shape == mu2.shape
    assert sigma1.shape == sigma2.shape
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    fallback = False
    if force_offset or not np.isfinite(covmean).all():
        fallback = True
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            m = np.max(np.abs(covmean.imag))
            raise ValueError("Imaginary component {}".format(m))
        covmean = covmean.real
    tr_covmean = np.trace(covmean)
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean), fallback


def exact_terms(mu1, sigma1, mu2, sigma2):
    """||mu1 - mu2||^2, Tr S1, Tr S2 and Tr sqrtm(S1 S2) at 50 digits from the float64 inputs."""
    mpmath.mp.dps = 50
    D = len(mu1)
    s1 = mpmath.matrix(sigma1.tolist())
    s2 = mpmath.matrix(sigma2.tolist())
    w, V = mpmath.eigsy(s1)
    B = V * mpmath.diag([mpmath.sqrt(max(w[i], 0)) for i in range(D)])
    M = B.T * s2 * B
    M = (M + M.T) / 2
    lam, _ = mpmath.eigsy(M)
    tr_sqrt = sum(mpmath.sqrt(max(lam[i], 0)) for i in range(D))
    mean = sum((mpmath.mpf(float(a)) - mpmath.mpf(float(b))) ** 2 for a, b in zip(mu1, mu2))
    t1 = sum(s1[i, i] for i in range(D))
    t2 = sum(s2[i, i] for i in range(D))
    fid = mean + t1 + t2 - 2 * tr_sqrt
    return {"exact": float(fid), "mean_term": float(mean), "trace1": float(t1), "trace2": float(t2),
            "trace_sqrt": float(tr_sqrt), "min_eigenvalue": float(min(lam[i] for i in range(D)))}


def stats_of(x):
    """mu and sigma as pytorch-fid's calculate_activation_statistics (np.cov divides by N - 1), in float64."""
    x = x.astype(np.float64)
    return np.mean(x, axis=0), np.cov(x, rowvar=False)


def correlated(rng, n, d, scale, shift):
    """Rows z A + b: features with a full, non-diagonal covariance (A mixes the standard normals z)."""
    a = rng.normal(size=(d, d)) * scale / np.sqrt(d)
    b = rng.normal(size=d) * shift
    return rng.normal(size=(n, d)) @ a + b


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20261204)
    files = {}
    files["feat_a"] = {"features": correlated(rng, 40, 16, 1.0, 1.0)}
    files["feat_b"] = {"features": (correlated(rng, 40, 16, 1.5, 0.5) + 0.3).astype(np.float32)}
    rank_a = correlated(rng, 10, 16, 1.0, 1.0)
    rank_a[:, :4] = 0.5
    rank_b = correlated(rng, 10, 16, 0.8, 1.0)
    rank_b[:, :4] = 0.25
    files["rank_a"] = {"features": rank_a}
    files["rank_b"] = {"features": rank_b}
    for src, dst in (("feat_a", "stats_a"), ("feat_b", "stats_b")):
        mu, sigma = stats_of(files[src]["features"])
        files[dst] = {"mu": mu, "sigma": sigma}
    for name, arrays in files.items():
        np.savez(os.path.join(OUT, name + ".npz"), **arrays)

    def gaussian(name):
        f = files[name]
        return (f["mu"], f["sigma"]) if "mu" in f else stats_of(f["features"])

    cases = []
    for a, b, rank_deficient in (("feat_a", "feat_b", False), ("stats_a", "stats_b", False),
                                 ("feat_a", "stats_b", False), ("feat_a", "feat_a", False),
                                 ("rank_a", "rank_b", True)):
        mu1, s1 = gaussian(a)
        mu2, s2 = gaussian(b)
        value, fallback = calculate_frechet_distance(mu1, s1, mu2, s2)
        offset, _ = calculate_frechet_distance(mu1, s1, mu2, s2, force_offset=True)
        case = {"a": a + ".npz", "b": b + ".npz", "allow_rank_deficient": rank_deficient, "scipy": value,
                "scipy_fallback": fallback, "scipy_offset": offset}
        case.update(exact_terms(mu1, s1, mu2, s2))
        cases.append(case)
        print("%-8s %-8s scipy %.15g exact %.15g offset %.15g%s" % (a, b, value, case["exact"], offset,
                                                                   " (fallback)" if fallback else ""))
    with open(os.path.join(OUT, "fid.json"), "w") as f:
        json.dump({"source": "tools/reference/ref_fid.py (scipy %s, numpy %s, mpmath %s)" % (
            scipy.__version__, np.__version__, mpmath.__version__), "eps": EPS, "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
