#!/usr/bin/env python3
"""Reference values for quantile comparisons (stats.compare_quantiles), from GrowthBook's gbstats and NumPy.

For each case: unit values of two arms drawn from lognormal, Pareto-tailed, normal and discrete distributions
(ties), a quantile q and a difference kind. NumPy gives the sample quantiles (linear interpolation, its default):
the estimate at q and the order-statistic interval at q -/+ z*sqrt(q(1-q)/n), z the 97.5% normal quantile, as
GrowthBook's quantile metrics define them. gbstats 0.8.0 `QuantileStatistic` (n_star = n) and `TwoSidedTTest`
give the comparison: estimate, standard error, interval, degrees of freedom and p-value.

    .venv-bench/bin/python Scripts/reference/generate_quantiles.py > Tests/StatisticsTests/Reference/quantiles.json
(needs numpy, scipy and gbstats==0.8.0)
"""
import json
import sys
from importlib.metadata import version

import numpy as np
from scipy import stats
from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest
from gbstats.models.statistics import QuantileStatistic

Z = stats.norm.ppf(0.975)


def arm(values, q):
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    half = Z * np.sqrt(q * (1 - q) / n)
    return {"n": n, "quantile": float(np.quantile(x, q)),
            "lower": float(np.quantile(x, max(q - half, 0.0))), "upper": float(np.quantile(x, min(q + half, 1.0)))}


def draw(rng, kind, n, scale):
    if kind == "lognormal":
        return rng.lognormal(mean=3.0, sigma=1.0, size=n) * scale
    if kind == "pareto":
        return (rng.pareto(2.5, size=n) + 1) * 10 * scale
    if kind == "normal":
        return rng.normal(100 * scale, 15, size=n)
    if kind == "discrete":  # many ties
        return rng.integers(0, 12, size=n).astype(float) * scale
    raise ValueError(kind)


def main():
    rng = np.random.default_rng(20261201)
    cases = []
    for kind in ["lognormal", "pareto", "normal", "discrete"]:
        for q in [0.1, 0.5, 0.9, 0.99]:
            for n_c, n_t in [(300, 320), (1000, 900)]:
                for effect, difference in [(1.0, "absolute"), (1.05, "relative")]:
                    c = draw(rng, kind, n_c, 1.0)
                    t = draw(rng, kind, n_t, effect)
                    a, b = arm(c, q), arm(t, q)
                    sa = QuantileStatistic(n=a["n"], n_star=a["n"], nu=q, quantile_hat=a["quantile"],
                                           quantile_lower=a["lower"], quantile_upper=a["upper"])
                    sb = QuantileStatistic(n=b["n"], n_star=b["n"], nu=q, quantile_hat=b["quantile"],
                                           quantile_lower=b["lower"], quantile_upper=b["upper"])
                    if sa._has_zero_variance or sb._has_zero_variance:
                        continue
                    test = TwoSidedTTest(sa, sb, FrequentistConfig(alpha=0.05, difference_type=difference))
                    r = test.compute_result()
                    if r.error_message:
                        continue
                    cases.append({
                        "distribution": kind, "q": q, "difference": difference,
                        "control": [round(v, 3) for v in c.tolist()], "treatment": [round(v, 3) for v in t.tolist()],
                        "expected": {"control": a, "treatment": b, "control_variance": sa.variance, "treatment_variance": sb.variance,
                                     "estimate": r.expected, "se": r.uplift.stddev, "ci": list(r.ci), "df": test.dof,
                                     "p_value": r.p_value},
                    })
    # The values are rounded to 3 decimals above: recompute the expectations from the rounded values.
    for case in cases:
        q = case["q"]
        a, b = arm(case["control"], q), arm(case["treatment"], q)
        sa = QuantileStatistic(n=a["n"], n_star=a["n"], nu=q, quantile_hat=a["quantile"], quantile_lower=a["lower"], quantile_upper=a["upper"])
        sb = QuantileStatistic(n=b["n"], n_star=b["n"], nu=q, quantile_hat=b["quantile"], quantile_lower=b["lower"], quantile_upper=b["upper"])
        test = TwoSidedTTest(sa, sb, FrequentistConfig(alpha=0.05, difference_type=case["difference"]))
        r = test.compute_result()
        case["expected"] = {"control": a, "treatment": b, "control_variance": sa.variance, "treatment_variance": sb.variance,
                            "estimate": r.expected, "se": r.uplift.stddev, "ci": list(r.ci), "df": test.dof, "p_value": r.p_value}
    json.dump({"generator": "Scripts/reference/generate_quantiles.py",
               "versions": {"gbstats": version("gbstats"), "numpy": np.__version__, "scipy": version("scipy")},
               "cases": cases}, sys.stdout, separators=(",", ":"))


main()
