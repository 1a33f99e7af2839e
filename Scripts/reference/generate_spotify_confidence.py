#!/usr/bin/env python3
"""Reference values for `stats.compare` from Spotify's confidence library (spotify-confidence on PyPI), a third
implementation beside statsmodels/SciPy and gbstats. Only the settings whose definitions coincide with Referee's are
generated; each is also checked against SciPy here, so a change of semantics in the library stops the script rather
than producing wrong reference data.

    python3 -m venv /work/.venv-sc
    /work/.venv-sc/bin/pip install spotify-confidence scipy
    /work/.venv-sc/bin/python Scripts/reference/generate_spotify_confidence.py

Writes Tests/StatisticsTests/Reference/compare_spotify.json:
- `binomial` with `variance: "unpooled"`, absolute difference, two-sided: spotify_confidence.ZTest (Wald interval and
  test with p(1 - p) variances), at several interval sizes;
- `continuous` from sums with Welch's test, absolute difference, two-sided: spotify_confidence.StudentsTTest, when it
  agrees with scipy's `ttest_ind_from_stats(equal_var=False)`.
"""
import json, math, os, sys, warnings
from importlib.metadata import version

import numpy as np
import pandas as pd
from scipy import stats
import spotify_confidence as sc

warnings.filterwarnings("ignore")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "StatisticsTests", "Reference", "compare_spotify.json")
rng = np.random.default_rng(20261125)


def spotify(test, successes_or_sums, sums_squares, ns, alpha):
    df = pd.DataFrame({"group": ["control", "treatment"], "num": successes_or_sums, "ss": sums_squares, "n": ns})
    model = test(df, numerator_column="num", numerator_sum_squares_column="ss", denominator_column="n",
                 categorical_group_columns="group", interval_size=1 - alpha)
    d = model.difference(level_1="control", level_2="treatment", absolute=True).iloc[0]
    return float(d["difference"]), float(d["ci_lower"]), float(d["ci_upper"]), float(d["p-value"])


def close(a, b, rel=1e-9, abs_=1e-12):
    return abs(a - b) <= max(rel * max(abs(a), abs(b)), abs_)


cases = []
for i in range(150):
    nc, nt = int(rng.integers(50, 2_000_000)), int(rng.integers(50, 2_000_000))
    p = float(rng.uniform(0.01, 0.9))
    sc_, st = int(rng.binomial(nc, p)), int(rng.binomial(nt, min(0.99, p * rng.uniform(0.9, 1.1))))
    alpha = [0.05, 0.01, 0.1, 0.2][i % 4]
    est, lo, hi, pv = spotify(sc.ZTest, [sc_, st], [sc_, st], [nc, nt], alpha)
    # The same quantities from first principles (Wald, unpooled), so the library's semantics are pinned.
    pc, pt = sc_ / nc, st / nt
    se = math.sqrt(pc * (1 - pc) / nc + pt * (1 - pt) / nt)
    z = stats.norm.isf(alpha / 2)
    assert close(est, pt - pc) and close(lo, pt - pc - z * se, 1e-8) and close(hi, pt - pc + z * se, 1e-8), (i, est, lo, hi)
    assert close(pv, 2 * stats.norm.sf(abs(pt - pc) / se), 1e-8, 1e-300), (i, pv)
    cases.append({"id": f"spotify-ztest-{i}", "tol": "closed",
                  "input": {"metric": "binomial", "control": {"n": nc, "successes": sc_}, "treatment": {"n": nt, "successes": st},
                            "variance": "unpooled", "alpha": alpha},
                  "expected": {"estimate": est, "ci": [lo, hi], "p_value": pv}})

welch_agrees = True
welch = []
for i in range(150):
    nc, nt = int(rng.integers(5, 200_000)), int(rng.integers(5, 200_000))
    mc, mt = float(rng.uniform(-50, 50)), float(rng.uniform(-50, 50))
    vc, vt = float(rng.uniform(0.1, 400)), float(rng.uniform(0.1, 400))
    sum_c, sum_t = mc * nc, mt * nt
    ss_c, ss_t = vc * (nc - 1) + nc * mc * mc, vt * (nt - 1) + nt * mt * mt
    alpha = [0.05, 0.01, 0.1][i % 3]
    est, lo, hi, pv = spotify(sc.StudentsTTest, [sum_c, sum_t], [ss_c, ss_t], [nc, nt], alpha)
    ref = stats.ttest_ind_from_stats(mt, math.sqrt(vt), nt, mc, math.sqrt(vc), nc, equal_var=False)
    if not close(pv, ref.pvalue, 1e-7, 1e-300):
        welch_agrees = False
        print(f"StudentsTTest differs from Welch (case {i}: p {pv} vs {ref.pvalue}); continuous cases not generated", file=sys.stderr)
        break
    welch.append({"id": f"spotify-welch-{i}", "tol": "closed",
                  "input": {"metric": "continuous", "control": {"n": nc, "sum": sum_c, "sum_squares": ss_c},
                            "treatment": {"n": nt, "sum": sum_t, "sum_squares": ss_t}, "test": "welch", "alpha": alpha},
                  "expected": {"estimate": est, "ci": [lo, hi], "p_value": pv}})
if welch_agrees:
    cases += welch

with open(OUT, "w") as f:
    json.dump({"generator": "Scripts/reference/generate_spotify_confidence.py",
               "versions": {"spotify-confidence": version("spotify-confidence"), "scipy": version("scipy"),
                            "pandas": version("pandas"), "numpy": version("numpy")},
               "cases": cases}, f, indent=1)
    f.write("\n")
print(f"compare_spotify.json: {len(cases)} cases", file=sys.stderr)
