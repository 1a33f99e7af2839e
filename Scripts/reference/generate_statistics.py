#!/usr/bin/env python3
"""Generate reference values for the Statistics module's tests.

Writes JSON files to Tests/StatisticsTests/Reference/. Nothing here runs at test time: the JSON is
committed and the Swift tests only read it.

Set-up (once):
    python3 -m venv /work/.venv-ref
    /work/.venv-ref/bin/pip install scipy statsmodels gbstats==0.8.0 numpy pandas mpmath
Run from the repository root:
    /work/.venv-ref/bin/python Scripts/reference/generate_statistics.py

Each case is {"id", "tol", "input", "expected"} or {"id", "input", "error": {"field"}} where the error is
the wire field our implementation must name (the reference libraries either raise, return NaN or, like
gbstats, a placeholder for these inputs). "tol" is "closed" (relative 1e-9, absolute 1e-12 near zero),
"integral" (relative 1e-8: numerical quadrature) or "root" (relative 1e-6: root finding).

Where a reference library computes a p-value as 1 - cdf (gbstats), the stored p-value is the same
quantity computed from the upper tail (sf) so that tiny p-values are exact; the script asserts
agreement with the library where the library is accurate.
"""

import json
import math
import os
import sys
from importlib.metadata import version

import mpmath
import numpy as np
from scipy import stats
from scipy.optimize import brentq
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    proportion_effectsize,
    proportions_ztest,
    test_proportions_2indep,
)

from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior
from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import (
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "Tests", "StatisticsTests", "Reference")
rng = np.random.default_rng(20240611)
ALTERNATIVES = ["two-sided", "greater", "less"]


def f(x):
    """Plain float for JSON (numpy scalars → float); refuses non-finite values."""
    x = float(x)
    assert math.isfinite(x), x
    return x


def close(a, b, rel=1e-9, abs_=1e-12):
    return abs(a - b) <= max(abs_, rel * max(abs(a), abs(b)))


# ---------------------------------------------------------------------------------------------
# Shared finishing for normal/t based tests: p-value and interval by alternative.

def finish(estimate, se, df, alpha, alternative):
    s = estimate / se if se > 0 else 0.0
    dist = stats.norm if df is None else stats.t(df)
    if alternative == "two-sided":
        p = min(1.0, 2 * dist.sf(abs(s)))
        q = dist.isf(alpha / 2)
        ci = [estimate - q * se, estimate + q * se]
    elif alternative == "greater":
        p = dist.sf(s)
        ci = [estimate - dist.isf(alpha) * se, None]
    else:
        p = dist.cdf(s)
        ci = [None, estimate + dist.isf(alpha) * se]
    return {
        "estimate": f(estimate), "se": f(se), "statistic": f(s), "df": None if df is None else f(df),
        "p_value": f(p), "ci": [None if v is None else f(v) for v in ci],
    }


# ---------------------------------------------------------------------------------------------
# stats.compare

compare_cases = []


def add_compare(case_id, metric, control, treatment, options, expected=None, error=None, tol="closed"):
    case = {"id": case_id, "input": {"metric": metric, "control": control, "treatment": treatment, **options}}
    if error is not None:
        case["error"] = {"field": error}
    else:
        case["tol"] = tol
        case["expected"] = expected
    compare_cases.append(case)


def binomial_z(c, t, variance, alpha, alternative):
    """statsmodels proportions_ztest (pooled) / test_proportions_2indep wald (unpooled); Wald interval."""
    nc, xc = c["n"], c["successes"]
    nt, xt = t["n"], t["successes"]
    sm_alt = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}[alternative]
    if variance == "pooled":
        z, p = proportions_ztest([xt, xc], [nt, nc], alternative=sm_alt)
        pp = (xt + xc) / (nt + nc)
        se = math.sqrt(pp * (1 - pp) * (1 / nt + 1 / nc))
    else:
        r = test_proportions_2indep(xt, nt, xc, nc, method="wald", compare="diff", alternative=sm_alt)
        z, p = r.statistic, r.pvalue
        se = math.sqrt(r.variance)
    pc, pt = xc / nc, xt / nt
    d = pt - pc
    wald = math.sqrt(pc * (1 - pc) / nc + pt * (1 - pt) / nt)
    out = finish(d, wald, None, alpha, alternative)
    assert close(out["estimate"] / se, z, 1e-9), (z, d / se)
    ref = finish(d, se, None, alpha, alternative)
    assert close(ref["p_value"], p, 1e-9, 1e-300) or p > 1 - 1e-12, (ref["p_value"], p)
    return {**ref, "ci": out["ci"], "control_mean": f(pc), "treatment_mean": f(pt)}


def welch_student(c, t, equal_var, alpha, alternative):
    """scipy ttest_ind_from_stats; df and t interval by the textbook formulas."""
    r = stats.ttest_ind_from_stats(t["mean"], math.sqrt(t["variance"]), t["n"], c["mean"], math.sqrt(c["variance"]), c["n"],
                                   equal_var=equal_var, alternative=alternative)
    vc, vt, nc, nt = c["variance"], t["variance"], c["n"], t["n"]
    if equal_var:
        df = nc + nt - 2
        sp = ((nc - 1) * vc + (nt - 1) * vt) / df
        se = math.sqrt(sp * (1 / nc + 1 / nt))
    else:
        a = vt / nt + vc / nc
        df = a * a / ((vt / nt) ** 2 / (nt - 1) + (vc / nc) ** 2 / (nc - 1))
        se = math.sqrt(a)
    out = finish(t["mean"] - c["mean"], se, df, alpha, alternative)
    assert close(out["statistic"], r.statistic, 1e-8), (out["statistic"], r.statistic)
    assert close(out["p_value"], r.pvalue, 1e-8, 1e-15), (out["p_value"], r.pvalue)
    # The library's own values are the reference for statistic and p.
    out["statistic"], out["p_value"] = f(r.statistic), f(r.pvalue)
    return {**out, "control_mean": f(c["mean"]), "treatment_mean": f(t["mean"])}


def gb_stat(metric, arm):
    if metric == "binomial":
        return ProportionStatistic(n=arm["n"], sum=arm["successes"])
    if metric == "continuous":
        return SampleMeanStatistic(n=arm["n"], sum=arm["sum"], sum_squares=arm["sum_squares"])
    if metric == "ratio":
        m, d = arm["numerator"], arm["denominator"]
        return RatioStatistic(n=arm["n"],
                              m_statistic=SampleMeanStatistic(n=arm["n"], sum=m["sum"], sum_squares=m["sum_squares"]),
                              d_statistic=SampleMeanStatistic(n=arm["n"], sum=d["sum"], sum_squares=d["sum_squares"]),
                              m_d_sum_of_products=arm["numerator_denominator_sum_of_products"])
    if metric == "cuped":
        post, pre = arm["post"], arm["pre"]
        return RegressionAdjustedStatistic(n=arm["n"],
                                           post_statistic=SampleMeanStatistic(n=arm["n"], sum=post["sum"], sum_squares=post["sum_squares"]),
                                           pre_statistic=SampleMeanStatistic(n=arm["n"], sum=pre["sum"], sum_squares=pre["sum_squares"]),
                                           post_pre_sum_of_products=arm["post_pre_sum_of_products"], theta=0)
    raise ValueError(metric)


def gb_frequentist(metric, c, t, difference, alpha, alternative, test="welch"):
    """gbstats 0.8.0 TwoSidedTTest; other alternatives and test z from its estimate, variance and dof."""
    ttest = TwoSidedTTest(gb_stat(metric, c), gb_stat(metric, t), FrequentistConfig(alpha=alpha, difference_type=difference))
    res = ttest.compute_result()
    assert res.error_message is None, res.error_message
    se = res.uplift.stddev
    df = ttest.dof if test == "welch" else None
    out = finish(res.expected, se, df, alpha, alternative)
    if alternative == "two-sided" and test == "welch":
        assert close(out["ci"][0], res.ci[0], 1e-9, 1e-12) and close(out["ci"][1], res.ci[1], 1e-9, 1e-12), (out["ci"], res.ci)
        if res.p_value > 1e-6:
            assert close(out["p_value"], res.p_value, 1e-7), (out["p_value"], res.p_value)
    return {**out, "control_mean": f(ttest.stat_a.mean), "treatment_mean": f(ttest.stat_b.mean)}


def gb_sequential(metric, c, t, difference, alpha, tuning):
    test = SequentialTwoSidedTTest(gb_stat(metric, c), gb_stat(metric, t),
                                   SequentialConfig(alpha=alpha, difference_type=difference, sequential_tuning_parameter=tuning))
    res = test.compute_result()
    assert res.error_message is None, res.error_message
    se = res.uplift.stddev
    return {"estimate": f(res.expected), "se": f(se), "statistic": f(res.expected / se), "df": None,
            "p_value": f(res.p_value), "ci": [f(res.ci[0]), f(res.ci[1])],
            "control_mean": f(test.stat_a.mean), "treatment_mean": f(test.stat_b.mean)}


def gb_bayesian(metric, c, t, difference, alpha, prior):
    cfg = EffectBayesianConfig(alpha=alpha, difference_type=difference,
                               prior_effect=GaussianPrior(mean=prior["mean"], variance=prior["stddev"] ** 2, proper=prior["proper"]))
    test = EffectBayesianABTest(gb_stat(metric, c), gb_stat(metric, t), cfg)
    res = test.compute_result()
    assert res.error_message is None, res.error_message
    mu, sd = res.expected, res.uplift.stddev
    # Closed forms of gbstats' truncated-normal risk (scipy truncnorm loses accuracy far in the tail).
    z = mu / sd
    risk_c = mu * stats.norm.cdf(z) + sd * stats.norm.pdf(z)
    risk_t = sd * stats.norm.pdf(z) - mu * stats.norm.sf(z)
    assert close(risk_c, res.risk[0], 1e-6, 1e-10) and close(risk_t, res.risk[1], 1e-6, 1e-10), (risk_c, risk_t, res.risk)
    return {"estimate": f(mu), "se": f(sd), "statistic": f(z), "df": None, "p_value": None,
            "ci": [f(res.ci[0]), f(res.ci[1])], "chance_to_win": f(res.chance_to_win),
            "risk": [f(max(risk_c, 0)), f(max(risk_t, 0))],
            "control_mean": f(test.stat_a.mean), "treatment_mean": f(test.stat_b.mean)}


def random_binomial_arm(n=None):
    n = int(n if n is not None else rng.choice([rng.integers(2, 50), rng.integers(50, 5000), rng.integers(5000, 10 ** 7)]))
    p = rng.choice([rng.uniform(0.001, 0.05), rng.uniform(0.05, 0.95), rng.uniform(0.95, 0.999)])
    return {"n": n, "successes": int(rng.binomial(n, p))}


def random_moments():
    n = int(rng.choice([rng.integers(2, 30), rng.integers(30, 10 ** 4), rng.integers(10 ** 4, 10 ** 8)]))
    scale = 10 ** rng.uniform(-3, 4)
    return {"n": n, "mean": f(rng.normal(0, 3) * scale), "variance": f((rng.uniform(0.1, 3) * scale) ** 2)}


def random_sums(positive_mean=False):
    """Sums of a random sample (so they are internally consistent)."""
    n = int(rng.integers(2, 3000))
    loc = rng.uniform(0.5, 20) if positive_mean else rng.normal(0, 5)
    x = rng.normal(loc, rng.uniform(0.1, 5), n)
    return {"n": n, "sum": f(x.sum()), "sum_squares": f((x * x).sum())}, x


def random_ratio():
    n = int(rng.integers(3, 3000))
    d = rng.poisson(rng.uniform(1, 10), n) + 1.0
    m = d * rng.uniform(0.5, 5) + rng.normal(0, 2, n)
    return {"n": n, "numerator": {"sum": f(m.sum()), "sum_squares": f((m * m).sum())},
            "denominator": {"sum": f(d.sum()), "sum_squares": f((d * d).sum())},
            "numerator_denominator_sum_of_products": f((m * d).sum())}


def random_cuped(shift=0.0):
    n = int(rng.integers(3, 3000))
    pre = rng.normal(rng.uniform(5, 20), rng.uniform(1, 5), n)
    post = pre * rng.uniform(0.2, 1.2) + rng.normal(shift + 3, rng.uniform(0.5, 3), n)
    return {"n": n, "post": {"sum": f(post.sum()), "sum_squares": f((post * post).sum())},
            "pre": {"sum": f(pre.sum()), "sum_squares": f((pre * pre).sum())},
            "post_pre_sum_of_products": f((post * pre).sum())}


def moments_to_sums(a):
    n, m, v = a["n"], a["mean"], a["variance"]
    s = n * m
    return {"n": n, "sum": f(s), "sum_squares": f(v * (n - 1) + s * s / n)}


def gen_compare():
    k = 0

    def nid(prefix):
        nonlocal k
        k += 1
        return f"{prefix}-{k}"

    # Binomial z, pooled and unpooled.
    for _ in range(300):
        c, t = random_binomial_arm(), random_binomial_arm()
        variance = str(rng.choice(["pooled", "unpooled"]))
        alpha, alt = float(rng.choice([0.05, 0.01, 0.1, 0.2])), str(rng.choice(ALTERNATIVES))
        pc, pt = c["successes"] / c["n"], t["successes"] / t["n"]
        if variance == "unpooled" and pc * (1 - pc) == 0 and pt * (1 - pt) == 0:
            continue
        if (c["successes"] + t["successes"]) in (0, c["n"] + t["n"]):
            continue
        add_compare(nid("binomial-z"), "binomial", c, t, {"variance": variance, "alpha": alpha, "alternative": alt},
                    binomial_z(c, t, variance, alpha, alt))
    edge_binomial = [
        ({"n": 100, "successes": 0}, {"n": 100, "successes": 3}),
        ({"n": 100, "successes": 100}, {"n": 100, "successes": 97}),
        ({"n": 1, "successes": 0}, {"n": 1, "successes": 1}),
        ({"n": 2, "successes": 1}, {"n": 2, "successes": 1}),
        ({"n": 1000, "successes": 120}, {"n": 1000, "successes": 120}),
        ({"n": 10 ** 9, "successes": 10 ** 8}, {"n": 10 ** 9, "successes": 10 ** 8 + 20000}),
        ({"n": 10 ** 9, "successes": 5}, {"n": 10 ** 9, "successes": 9}),
    ]
    for c, t in edge_binomial:
        for variance in ["pooled", "unpooled"]:
            pc, pt = c["successes"] / c["n"], t["successes"] / t["n"]
            if variance == "unpooled" and pc * (1 - pc) == 0 and pt * (1 - pt) == 0:
                add_compare(nid("binomial-z-edge-error"), "binomial", c, t, {"variance": variance}, error="control.successes")
                continue
            for alt in ALTERNATIVES:
                add_compare(nid("binomial-z-edge"), "binomial", c, t, {"variance": variance, "alternative": alt},
                            binomial_z(c, t, variance, 0.05, alt))
    for c, t, field in [
        ({"n": 100, "successes": 0}, {"n": 50, "successes": 0}, "control.successes"),
        ({"n": 100, "successes": 100}, {"n": 50, "successes": 50}, "control.successes"),
        ({"n": 100, "successes": 101}, {"n": 50, "successes": 5}, "control.successes"),
        ({"n": 100, "successes": 10}, {"n": 50, "successes": 51}, "treatment.successes"),
        ({"n": -5, "successes": 0}, {"n": 50, "successes": 5}, "control.n"),
        ({"n": 0, "successes": 0}, {"n": 50, "successes": 5}, "control.n"),
        ({"n": 100, "successes": -1}, {"n": 50, "successes": 5}, "control.successes"),
    ]:
        add_compare(nid("binomial-z-error"), "binomial", c, t, {}, error=field)
    add_compare(nid("binomial-z-error"), "binomial", {"n": 100, "successes": 0}, {"n": 100, "successes": 100},
                {"variance": "unpooled"}, error="control.successes")
    add_compare(nid("binomial-alpha-error"), "binomial", {"n": 100, "successes": 5}, {"n": 100, "successes": 9},
                {"alpha": 1.5}, error="alpha")

    # Welch and Student from moments, and Welch from sums.
    for _ in range(300):
        c, t = random_moments(), random_moments()
        test = str(rng.choice(["welch", "student"]))
        alpha, alt = float(rng.choice([0.05, 0.01, 0.1])), str(rng.choice(ALTERNATIVES))
        add_compare(nid(test), "continuous", c, t, {"test": test, "alpha": alpha, "alternative": alt},
                    welch_student(c, t, test == "student", alpha, alt))
    for c, t in [
        ({"n": 2, "mean": 1.0, "variance": 0.5}, {"n": 2, "mean": 2.0, "variance": 0.7}),
        ({"n": 10, "mean": 3.0, "variance": 1.0}, {"n": 10, "mean": 3.0, "variance": 1.0}),
        ({"n": 10, "mean": 3.0, "variance": 0.0}, {"n": 12, "mean": 3.5, "variance": 2.0}),
        ({"n": 10 ** 9, "mean": 10.0, "variance": 4.0}, {"n": 10 ** 9, "mean": 10.0002, "variance": 4.0}),
        ({"n": 50, "mean": 1e-6, "variance": 1e-20}, {"n": 60, "mean": 1.00000001e-6, "variance": 2e-20}),
    ]:
        for test in ["welch", "student"]:
            add_compare(nid(f"{test}-edge"), "continuous", c, t, {"test": test}, welch_student(c, t, test == "student", 0.05, "two-sided"))
    for c, t, field in [
        ({"n": 1, "mean": 1.0, "variance": 0.0}, {"n": 5, "mean": 2.0, "variance": 1.0}, "control.n"),
        ({"n": 5, "mean": 1.0, "variance": 1.0}, {"n": 1, "mean": 2.0, "variance": 0.0}, "treatment.n"),
        ({"n": 5, "mean": 1.0, "variance": 0.0}, {"n": 5, "mean": 2.0, "variance": 0.0}, "control.variance"),
        ({"n": 5, "mean": 1.0, "variance": -1.0}, {"n": 5, "mean": 2.0, "variance": 1.0}, "control.variance"),
    ]:
        add_compare(nid("continuous-error"), "continuous", c, t, {}, error=field)
    add_compare(nid("continuous-error"), "continuous", {"n": 5, "mean": 0.0, "variance": 1.0}, {"n": 5, "mean": 2.0, "variance": 1.0},
                {"difference": "relative"}, error="control.mean")
    add_compare(nid("continuous-error"), "continuous", {"n": 5, "sum": 10.0, "sum_squares": 1.0}, {"n": 5, "sum": 2.0, "sum_squares": 3.0},
                {}, error="control.sum_squares")

    # gbstats TwoSidedTTest: continuous sums (absolute and relative), binomial welch / relative, ratio, CUPED.
    for _ in range(150):
        c, _x = random_sums(positive_mean=True)
        t, _y = random_sums(positive_mean=True)
        diff = str(rng.choice(["absolute", "relative"]))
        alpha, alt = float(rng.choice([0.05, 0.1])), str(rng.choice(ALTERNATIVES))
        add_compare(nid("sums-welch"), "continuous", c, t, {"difference": diff, "alpha": alpha, "alternative": alt},
                    gb_frequentist("continuous", c, t, diff, alpha, alt))
    for _ in range(150):
        c, t = random_binomial_arm(), random_binomial_arm()
        if c["successes"] in (0, c["n"]) or t["successes"] in (0, t["n"]):
            continue  # gbstats returns a placeholder when either arm has zero variance
        diff = str(rng.choice(["absolute", "relative"]))
        alt = str(rng.choice(ALTERNATIVES))
        opts = {"difference": diff, "alternative": alt}
        if diff == "absolute" or rng.uniform() < 0.5:
            opts["test"] = "welch"
        add_compare(nid("binomial-gbstats"), "binomial", c, t, opts, gb_frequentist("binomial", c, t, diff, 0.05, alt))
    for _ in range(40):
        c, t = random_binomial_arm(), random_binomial_arm()
        if c["successes"] in (0, c["n"]) or t["successes"] in (0, t["n"]):
            continue
        add_compare(nid("binomial-relative-z"), "binomial", c, t, {"difference": "relative", "test": "z"},
                    gb_frequentist("binomial", c, t, "relative", 0.05, "two-sided", test="z"))
    add_compare(nid("binomial-relative-error"), "binomial", {"n": 100, "successes": 0}, {"n": 100, "successes": 4},
                {"difference": "relative"}, error="control.successes")
    add_compare(nid("binomial-welch-error"), "binomial", {"n": 1, "successes": 0}, {"n": 100, "successes": 4},
                {"test": "welch"}, error="control.n")
    for _ in range(150):
        c, t = random_ratio(), random_ratio()
        diff = str(rng.choice(["absolute", "relative"]))
        alt = str(rng.choice(ALTERNATIVES))
        add_compare(nid("ratio"), "ratio", c, t, {"difference": diff, "alternative": alt}, gb_frequentist("ratio", c, t, diff, 0.05, alt))
    bad_ratio = random_ratio()
    bad_ratio["denominator"] = {"sum": 0.0, "sum_squares": 0.0}
    add_compare(nid("ratio-error"), "ratio", bad_ratio, random_ratio(), {}, error="control.denominator.sum")
    for _ in range(150):
        c, t = random_cuped(), random_cuped(shift=float(rng.normal(0, 0.3)))
        diff = str(rng.choice(["absolute", "relative"]))
        alt = str(rng.choice(ALTERNATIVES))
        add_compare(nid("cuped"), "cuped", c, t, {"difference": diff, "alternative": alt}, gb_frequentist("cuped", c, t, diff, 0.05, alt))

    # NPS: normal test on score = pP − pD with variance (pP + pD − (pP − pD)²)/n (formula; no library has it).
    for _ in range(200):
        arms = []
        for _a in range(2):
            n = int(rng.choice([rng.integers(1, 40), rng.integers(40, 10 ** 6)]))
            probs = rng.dirichlet([2, 1, 1.5])
            counts = rng.multinomial(n, probs)
            arms.append({"promoters": int(counts[0]), "passives": int(counts[1]), "detractors": int(counts[2])})
        c, t = arms
        scores, variances = [], []
        for a in arms:
            n = a["promoters"] + a["passives"] + a["detractors"]
            pp, pd = a["promoters"] / n, a["detractors"] / n
            scores.append(pp - pd)
            variances.append((pp + pd - (pp - pd) ** 2) / n)
        if variances[0] + variances[1] == 0:
            continue
        alt = str(rng.choice(ALTERNATIVES))
        out = finish(scores[1] - scores[0], math.sqrt(variances[0] + variances[1]), None, 0.05, alt)
        add_compare(nid("nps"), "nps", c, t, {"alternative": alt}, {**out, "control_mean": f(scores[0]), "treatment_mean": f(scores[1])})
    add_compare(nid("nps-error"), "nps", {"promoters": 0, "passives": 0, "detractors": 0}, {"promoters": 1, "passives": 2, "detractors": 3},
                {}, error="control.promoters")
    add_compare(nid("nps-error"), "nps", {"promoters": 5, "passives": 0, "detractors": 0}, {"promoters": 7, "passives": 0, "detractors": 0},
                {}, error="control.promoters")

    # Sequential (gbstats SequentialTwoSidedTTest).
    for _ in range(200):
        metric = str(rng.choice(["binomial", "continuous", "ratio", "cuped"]))
        if metric == "binomial":
            c, t = random_binomial_arm(), random_binomial_arm()
            if c["successes"] in (0, c["n"]) or t["successes"] in (0, t["n"]):
                continue
        elif metric == "continuous":
            c, _ = random_sums(True)
            t, _ = random_sums(True)
        elif metric == "ratio":
            c, t = random_ratio(), random_ratio()
        else:
            c, t = random_cuped(), random_cuped(0.2)
        diff = str(rng.choice(["absolute", "relative"]))
        alpha = float(rng.choice([0.05, 0.1, 0.01]))
        tuning = float(rng.choice([5000, 1000, 20000, 123.5]))
        opts = {"difference": diff, "alpha": alpha, "analysis": "sequential"}
        if tuning != 5000 or rng.uniform() < 0.5:
            opts["sequential_tuning"] = tuning
        add_compare(nid("sequential"), metric, c, t, opts, gb_sequential(metric, c, t, diff, alpha, tuning))
    add_compare(nid("sequential-error"), "continuous", {"n": 10, "sum": 10.0, "sum_squares": 20.0}, {"n": 10, "sum": 12.0, "sum_squares": 25.0},
                {"analysis": "sequential", "alternative": "greater"}, error="alternative")

    # Bayesian (gbstats EffectBayesianABTest).
    for _ in range(200):
        metric = str(rng.choice(["binomial", "continuous", "ratio", "cuped"]))
        if metric == "binomial":
            c, t = random_binomial_arm(), random_binomial_arm()
            if c["successes"] in (0, c["n"]) or t["successes"] in (0, t["n"]):
                continue
        elif metric == "continuous":
            c, _ = random_sums(True)
            t, _ = random_sums(True)
        elif metric == "ratio":
            c, t = random_ratio(), random_ratio()
        else:
            c, t = random_cuped(), random_cuped(0.2)
        diff = str(rng.choice(["absolute", "relative"]))
        alpha = float(rng.choice([0.05, 0.1]))
        prior = {"mean": f(rng.normal(0, 0.1)), "stddev": f(rng.uniform(0.01, 1)), "proper": bool(rng.uniform() < 0.6)}
        add_compare(nid("bayesian"), metric, c, t, {"difference": diff, "alpha": alpha, "analysis": "bayesian", "prior": prior},
                    gb_bayesian(metric, c, t, diff, alpha, prior))
    add_compare(nid("bayesian-error"), "binomial", {"n": 100, "successes": 0}, {"n": 100, "successes": 4},
                {"analysis": "bayesian", "difference": "relative"}, error="control.successes")
    add_compare(nid("bayesian-error"), "binomial", {"n": 100, "successes": 10}, {"n": 100, "successes": 4},
                {"analysis": "bayesian", "prior": {"mean": 0.0, "stddev": 0.0, "proper": True}}, error="prior.stddev")
    return compare_cases


# ---------------------------------------------------------------------------------------------
# stats.chance_to_beat: Evan Miller's sum evaluated with 40 significant digits in mpmath.

def miller(a_t, b_t, a_c, b_c):
    mpmath.mp.dps = 40
    total = mpmath.mpf(0)
    base = mpmath.log(mpmath.beta(a_c, b_c))
    for i in range(int(a_t)):
        total += mpmath.exp(mpmath.log(mpmath.beta(a_c + i, b_c + b_t)) - mpmath.log(b_t + i) - mpmath.log(mpmath.beta(1 + i, b_t)) - base)
    return float(total)


def beta_integral(a_t, b_t, a_c, b_c):
    """P(p_t > p_c) = ∫ f_c(x) P(p_t > x) dx with scipy quad (boost's beta), over ±40 sd of the control posterior."""
    from scipy.integrate import quad
    mean = a_c / (a_c + b_c)
    sd = math.sqrt(a_c * b_c / ((a_c + b_c) ** 2 * (a_c + b_c + 1)))
    lo, hi = max(0.0, mean - 40 * sd), min(1.0, mean + 40 * sd)
    g = lambda x: stats.beta.pdf(x, a_c, b_c) * stats.beta.sf(x, a_t, b_t)
    val, err = quad(g, lo, hi, points=[mean - 3 * sd, mean, mean + 3 * sd], epsabs=0, epsrel=1e-13, limit=500)
    return val


def beta_integral_near_one(a_t, b_t, a_c, b_c):
    """For posteriors crowded against 1, where doubles are sparse: P(p_t > p_c) = P(1 - p_c > 1 - p_t), integrated
    near 0 over the bulk of 1 - p_t ~ Beta(b_t, a_t), with scipy quad (boost's beta)."""
    from scipy.integrate import quad
    mean = b_t / (a_t + b_t)
    sd = math.sqrt(a_t * b_t / ((a_t + b_t) ** 2 * (a_t + b_t + 1)))
    g = lambda x: stats.beta.pdf(x, b_t, a_t) * stats.beta.sf(x, b_c, a_c)
    val, err = quad(g, 0.0, mean + 40 * sd, points=[mean], epsabs=0, epsrel=1e-12, limit=500)
    return val


def gen_chance_to_beat():
    cases = []
    for i in range(250):
        nc, nt = int(rng.integers(0, 400)), int(rng.integers(0, 400))
        p = rng.uniform(0.01, 0.6)
        c = {"n": nc, "successes": int(rng.binomial(nc, p))}
        t = {"n": nt, "successes": int(rng.binomial(nt, p * rng.uniform(0.8, 1.3)))}
        prior = {"alpha": 1.0, "beta": 1.0} if i % 3 else {"alpha": float(rng.integers(1, 5)), "beta": float(rng.integers(1, 20))}
        a_c, b_c = c["successes"] + prior["alpha"], nc - c["successes"] + prior["beta"]
        a_t, b_t = t["successes"] + prior["alpha"], nt - t["successes"] + prior["beta"]
        cases.append({"id": f"ctb-{i}", "tol": "closed", "input": {"control": c, "treatment": t, "prior": prior},
                      "expected": {"chance_to_beat_control": miller(a_t, b_t, a_c, b_c)}})
    for i, (c, t, prior) in enumerate([
        ({"n": 0, "successes": 0}, {"n": 0, "successes": 0}, {"alpha": 1.0, "beta": 1.0}),
        ({"n": 10, "successes": 10}, {"n": 10, "successes": 0}, {"alpha": 1.0, "beta": 1.0}),
        ({"n": 10, "successes": 0}, {"n": 10, "successes": 10}, {"alpha": 1.0, "beta": 1.0}),
        ({"n": 1, "successes": 1}, {"n": 2, "successes": 1}, {"alpha": 1.0, "beta": 1.0}),
        ({"n": 10 ** 9, "successes": 50}, {"n": 10 ** 9, "successes": 70}, {"alpha": 1.0, "beta": 1.0}),
    ]):
        a_c, b_c = c["successes"] + prior["alpha"], c["n"] - c["successes"] + prior["beta"]
        a_t, b_t = t["successes"] + prior["alpha"], t["n"] - t["successes"] + prior["beta"]
        cases.append({"id": f"ctb-edge-{i}", "tol": "closed", "input": {"control": c, "treatment": t, "prior": prior},
                      "expected": {"chance_to_beat_control": miller(a_t, b_t, a_c, b_c)}})
    # Non-integer priors and huge counts: no finite sum applies; compare with quadrature.
    for i, (c, t, prior) in enumerate([
        ({"n": 100, "successes": 10}, {"n": 120, "successes": 17}, {"alpha": 0.5, "beta": 0.5}),
        ({"n": 1000, "successes": 300}, {"n": 900, "successes": 290}, {"alpha": 1.5, "beta": 2.5}),
        ({"n": 10 ** 5, "successes": 40000}, {"n": 10 ** 5, "successes": 40300}, {"alpha": 0.7, "beta": 1.3}),
        # All four posterior parameters huge (no short finite sum; GSL's incomplete beta does not converge):
        # boost's beta (scipy) is accurate here through its large-parameter expansions.
        ({"n": 10 ** 9, "successes": 2 * 10 ** 8}, {"n": 10 ** 9, "successes": 2 * 10 ** 8 + 30000}, {"alpha": 1.0, "beta": 1.0}),
        ({"n": 10 ** 9, "successes": 5 * 10 ** 8}, {"n": 9 * 10 ** 8, "successes": 45 * 10 ** 7 - 12000}, {"alpha": 1.0, "beta": 1.0}),
        ({"n": 4 * 10 ** 8, "successes": 10 ** 8}, {"n": 4 * 10 ** 8, "successes": 10 ** 8 + 2000}, {"alpha": 0.5, "beta": 0.5}),
        ({"n": 3 * 10 ** 7, "successes": 6 * 10 ** 6}, {"n": 3 * 10 ** 7, "successes": 6 * 10 ** 6 + 9000}, {"alpha": 1.0, "beta": 1.0}),
        ({"n": 2 * 10 ** 9, "successes": 10 ** 9}, {"n": 2 * 10 ** 9, "successes": 10 ** 9 - 60000}, {"alpha": 1.0, "beta": 1.0}),
    ]):
        a_c, b_c = c["successes"] + prior["alpha"], c["n"] - c["successes"] + prior["beta"]
        a_t, b_t = t["successes"] + prior["alpha"], t["n"] - t["successes"] + prior["beta"]
        cases.append({"id": f"ctb-integral-{i}", "tol": "integral", "input": {"control": c, "treatment": t, "prior": prior},
                      "expected": {"chance_to_beat_control": beta_integral(a_t, b_t, a_c, b_c)}})
    # Rates crowded against 1 with huge counts (including all successes, where a prior below 1 makes the density
    # unbounded at 1).
    for i, (c, t, prior) in enumerate([
        ({"n": 10 ** 9, "successes": 10 ** 9 - 20}, {"n": 2 * 10 ** 9, "successes": 2 * 10 ** 9 - 30}, {"alpha": 0.5, "beta": 0.5}),
        ({"n": 10 ** 9, "successes": 10 ** 9}, {"n": 10 ** 9, "successes": 10 ** 9 - 3}, {"alpha": 0.5, "beta": 0.5}),
        ({"n": 5 * 10 ** 8, "successes": 5 * 10 ** 8 - 1000}, {"n": 5 * 10 ** 8, "successes": 5 * 10 ** 8 - 1100}, {"alpha": 1.5, "beta": 0.7}),
    ]):
        a_c, b_c = c["successes"] + prior["alpha"], c["n"] - c["successes"] + prior["beta"]
        a_t, b_t = t["successes"] + prior["alpha"], t["n"] - t["successes"] + prior["beta"]
        cases.append({"id": f"ctb-near-one-{i}", "tol": "integral", "input": {"control": c, "treatment": t, "prior": prior},
                      "expected": {"chance_to_beat_control": beta_integral_near_one(a_t, b_t, a_c, b_c)}})
    for i, (c, t, prior, field) in enumerate([
        ({"n": 10, "successes": 11}, {"n": 10, "successes": 1}, {"alpha": 1.0, "beta": 1.0}, "control.successes"),
        ({"n": 10, "successes": 1}, {"n": -1, "successes": 0}, {"alpha": 1.0, "beta": 1.0}, "treatment.n"),
        ({"n": 10, "successes": 1}, {"n": 10, "successes": 2}, {"alpha": 0.0, "beta": 1.0}, "prior.alpha"),
        ({"n": 10, "successes": 1}, {"n": 10, "successes": 2}, {"alpha": 1.0, "beta": -2.0}, "prior.beta"),
    ]):
        cases.append({"id": f"ctb-error-{i}", "input": {"control": c, "treatment": t, "prior": prior}, "error": {"field": field}})
    return cases


# ---------------------------------------------------------------------------------------------
# stats.srm: scipy chisquare.

def gen_srm():
    cases = []
    for i in range(250):
        k = int(rng.integers(2, 8))
        w = rng.uniform(0.5, 10, k) if i % 2 else np.ones(k)
        total = int(rng.choice([rng.integers(1, 100), rng.integers(100, 10 ** 6), rng.integers(10 ** 6, 10 ** 9)]))
        probs = w / w.sum() * rng.uniform(0.97, 1.03, k)
        observed = rng.multinomial(total, probs / probs.sum())
        if i % 10 == 0:
            observed[0] = 0
        expected = w / w.sum() * observed.sum()
        r = stats.chisquare(observed, expected)
        threshold = float(rng.choice([0.001, 0.01, 0.05]))
        cases.append({"id": f"srm-{i}", "tol": "closed",
                      "input": {"observed": [int(o) for o in observed], "weights": [f(x) for x in w], "threshold": threshold},
                      "expected": {"chi2": f(r.statistic), "df": k - 1, "p_value": f(r.pvalue), "mismatch": bool(r.pvalue < threshold)}})
    for i, (obs, w, field) in enumerate([
        ([10], [1.0], "observed"),
        ([10, 12], [1.0], "weights"),
        ([10, -1], [1.0, 1.0], "observed[1]"),
        ([10, 12], [1.0, 0.0], "weights[1]"),
        ([0, 0], [1.0, 1.0], "observed"),
    ]):
        cases.append({"id": f"srm-error-{i}", "input": {"observed": obs, "weights": w}, "error": {"field": field}})
    return cases


# ---------------------------------------------------------------------------------------------
# stats.adjust: statsmodels multipletests.

ADJUST = {"bonferroni": "bonferroni", "holm": "holm", "hochberg": "simes-hochberg", "sidak": "sidak",
          "holm-sidak": "holm-sidak", "bh": "fdr_bh", "by": "fdr_by"}


def gen_adjust():
    cases = []
    i = 0
    for method, sm in ADJUST.items():
        for _ in range(45):
            m = int(rng.choice([1, 2, 3, rng.integers(4, 12), rng.integers(12, 60)]))
            p = rng.uniform(0, 1, m) ** rng.uniform(1, 6)
            if rng.uniform() < 0.3 and m > 2:
                p[1] = p[0]  # ties
            if rng.uniform() < 0.1:
                p[0] = 0.0
            if rng.uniform() < 0.1:
                p[-1] = 1.0
            alpha = float(rng.choice([0.05, 0.1, 0.01]))
            reject, corrected, _, _ = multipletests(p, alpha=alpha, method=sm)
            cases.append({"id": f"adjust-{method}-{i}", "tol": "closed",
                          "input": {"p_values": [f(x) for x in p], "method": method, "alpha": alpha},
                          "expected": {"adjusted": [f(x) for x in corrected], "reject": [bool(x) for x in reject]}})
            i += 1
    cases.append({"id": "adjust-error-0", "input": {"p_values": [], "method": "holm"}, "error": {"field": "p_values"}})
    cases.append({"id": "adjust-error-1", "input": {"p_values": [0.1, 1.2], "method": "holm"}, "error": {"field": "p_values[1]"}})
    return cases


# ---------------------------------------------------------------------------------------------
# stats.sample_size / stats.power / stats.mde.

def z(q):
    return stats.norm.isf(q)


def classic_power(p1, p2, n, alpha, alt, k):
    za = z(alpha / 2 if alt == "two-sided" else alpha)
    pbar = (p1 + k * p2) / (1 + k)
    return stats.norm.cdf((abs(p2 - p1) * math.sqrt(n) - za * math.sqrt(pbar * (1 - pbar) * (1 + 1 / k)))
                          / math.sqrt(p1 * (1 - p1) + p2 * (1 - p2) / k))


def unpooled_power(p1, p2, n, alpha, alt, k):
    za = z(alpha / 2 if alt == "two-sided" else alpha)
    return stats.norm.cdf(abs(p2 - p1) * math.sqrt(n) / math.sqrt(p1 * (1 - p1) + p2 * (1 - p2) / k) - za)


def nip_power(effect, n, alpha, alt, k):
    return NormalIndPower().power(effect_size=effect, nobs1=n, alpha=alpha, ratio=k,
                                  alternative="two-sided" if alt == "two-sided" else "larger")


def nip_n(effect, alpha, power, alt, k):
    """statsmodels solve_power, polished with a tight brentq on statsmodels' own power function."""
    sm = NormalIndPower().solve_power(effect_size=effect, alpha=alpha, power=power, ratio=k,
                                      alternative="two-sided" if alt == "two-sided" else "larger")
    exact = brentq(lambda n: nip_power(effect, n, alpha, alt, k) - power, sm * 0.5, sm * 2, xtol=1e-14, rtol=1e-15)
    assert close(sm, exact, 1e-5), (sm, exact)
    return exact


def t_power(effect, n, alpha, alt, k):
    """R power.t.test (strict = FALSE) through scipy's noncentral t."""
    nu = n + n * k - 2
    crit = stats.t.isf(alpha / 2 if alt == "two-sided" else alpha, nu)
    return stats.nct.sf(crit, nu, effect / math.sqrt(1 / n + 1 / (n * k)))


def gen_power():
    cases = []
    i = 0
    for _ in range(400):
        metric = str(rng.choice(["binomial", "continuous"]))
        alpha = float(rng.choice([0.05, 0.01, 0.1]))
        power = float(rng.choice([0.8, 0.9, 0.95, 0.5]))
        alt = str(rng.choice(["two-sided", "one-sided"]))
        k = float(rng.choice([1.0, 1.0, 2.0, 0.5, 3.0]))
        if metric == "binomial":
            p1 = float(rng.uniform(0.01, 0.6))
            rel = bool(rng.uniform() < 0.5)
            d = float(rng.uniform(0.05, 0.5)) * p1 * float(rng.choice([1, -1]))
            mde = {"relative": d / p1} if rel else {"absolute": d}
            p2 = p1 + (mde["relative"] * p1 if rel else d)
            formula = str(rng.choice(["classic", "unpooled", "cohen_h"]))
            baseline = {"rate": p1}
            if formula == "classic":
                pw = lambda n: classic_power(p1, p2, n, alpha, alt, k)
            elif formula == "unpooled":
                pw = lambda n: unpooled_power(p1, p2, n, alpha, alt, k)
            else:
                h = abs(proportion_effectsize(p2, p1))
                pw = lambda n: nip_power(h, n, alpha, alt, k)
        else:
            mean, sd = float(rng.normal(10, 5)), float(rng.uniform(0.5, 20))
            rel = bool(rng.uniform() < 0.3)
            d = float(rng.uniform(0.02, 1.0)) * sd * float(rng.choice([1, -1]))
            mde = {"relative": d / mean} if rel else {"absolute": d}
            d_eff = mde["relative"] * mean if rel else d
            formula = str(rng.choice(["normal", "t"]))
            baseline = {"mean": mean, "sd": sd}
            e = abs(d_eff) / sd
            pw = (lambda n: nip_power(e, n, alpha, alt, k)) if formula == "normal" else (lambda n: t_power(e, n, alpha, alt, k))
        # Sample size: closed forms where they exist (classic, unpooled, one-sided normal), else brentq.
        if formula in ("classic", "unpooled"):
            za, zb = z(alpha / 2 if alt == "two-sided" else alpha), stats.norm.ppf(power)
            if formula == "classic":
                pbar = (p1 + k * p2) / (1 + k)
                n = (za * math.sqrt(pbar * (1 - pbar) * (1 + 1 / k)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2) / k)) ** 2 / (p2 - p1) ** 2
            else:
                n = (za + zb) ** 2 * (p1 * (1 - p1) + p2 * (1 - p2) / k) / (p2 - p1) ** 2
            tol = "closed"
            assert close(pw(n), power, 1e-9)
        elif formula in ("cohen_h", "normal"):
            eff = h if formula == "cohen_h" else e
            n = nip_n(eff, alpha, power, alt, k)
            tol = "root"
        else:
            n = brentq(lambda n: pw(n) - power, 3 / (1 + k), 1e9, xtol=1e-12, rtol=1e-14)
            tol = "root"
        common = {"metric": metric, "baseline": baseline, "alpha": alpha, "alternative": alt, "ratio": k, "formula": formula}
        cases.append({"id": f"sample-size-{i}", "kind": "sample_size", "tol": tol, "input": {**common, "mde": mde, "power": power},
                      "expected": {"control": f(n), "treatment": f(n * k), "total": f(n + n * k),
                                   "control_ceil": math.ceil(n), "treatment_ceil": math.ceil(n * k)}})
        # Power at a random n.
        n_control = float(rng.choice([int(rng.integers(5, 5000)), float(rng.uniform(5, 5000))]))
        ptol = "integral" if formula == "t" else "closed"
        cases.append({"id": f"power-{i}", "kind": "power", "tol": ptol, "input": {**common, "mde": mde, "n_control": n_control},
                      "expected": {"power": f(pw(n_control))}})
        # MDE at that n (upward effect).
        if metric == "binomial":
            if formula == "cohen_h":
                hh = brentq(lambda h: nip_power(h, n_control, alpha, alt, k) - power, 1e-12, 10, xtol=1e-15, rtol=1e-15)
                ang = math.asin(math.sqrt(p1)) + hh / 2
                if ang >= math.pi / 2:
                    continue
                q2 = math.sin(ang) ** 2
            else:
                fun = classic_power if formula == "classic" else unpooled_power
                top = 1 - 1e-12
                if fun(p1, top, n_control, alpha, alt, k) < power:
                    cases.append({"id": f"mde-{i}", "kind": "mde", "input": {**common, "n_control": n_control, "power": power},
                                  "error": {"field": "n_control"}})
                    i += 1
                    continue
                q2 = brentq(lambda q: fun(p1, q, n_control, alpha, alt, k) - power, p1, top, xtol=1e-15, rtol=1e-15)
            absolute, relative = q2 - p1, (q2 - p1) / p1
        else:
            if formula == "normal":
                ee = brentq(lambda x: nip_power(x, n_control, alpha, alt, k) - power, 1e-12, 100, xtol=1e-15, rtol=1e-15)
            else:
                ee = brentq(lambda x: t_power(x, n_control, alpha, alt, k) - power, 1e-12, 100, xtol=1e-15, rtol=1e-15)
            absolute = ee * sd
            relative = absolute / abs(mean)
        cases.append({"id": f"mde-{i}", "kind": "mde", "tol": "root", "input": {**common, "n_control": n_control, "power": power},
                      "expected": {"absolute": f(absolute), "relative": f(relative)}})
        i += 1
    base = {"metric": "binomial", "alpha": 0.05, "alternative": "two-sided", "power": 0.8}
    for j, (inp, field) in enumerate([
        ({**base, "baseline": {"rate": 0.0}, "mde": {"absolute": 0.01}}, "baseline.rate"),
        ({**base, "baseline": {"rate": 1.2}, "mde": {"absolute": 0.01}}, "baseline.rate"),
        ({**base, "baseline": {"rate": 0.5}, "mde": {"absolute": 0.0}}, "mde.absolute"),
        ({**base, "baseline": {"rate": 0.9}, "mde": {"relative": 0.5}}, "mde.relative"),
        ({**base, "baseline": {"rate": 0.5}, "mde": {"absolute": 0.1}, "alpha": 0.0}, "alpha"),
        ({**base, "baseline": {"rate": 0.5}, "mde": {"absolute": 0.1}, "power": 1.0}, "power"),
        ({**base, "baseline": {"rate": 0.5}, "mde": {"absolute": 0.1}, "ratio": 0.0}, "ratio"),
        ({**base, "metric": "continuous", "baseline": {"mean": 1.0, "sd": 0.0}, "mde": {"absolute": 0.1}}, "baseline.sd"),
    ]):
        cases.append({"id": f"sample-size-error-{j}", "kind": "sample_size", "input": inp, "error": {"field": field}})
    return cases


# ---------------------------------------------------------------------------------------------
# stats.mann_whitney: scipy mannwhitneyu (x = treatment, y = control).

def gen_mann_whitney():
    cases = []
    for i in range(300):
        n1, n2 = int(rng.integers(1, 60)), int(rng.integers(1, 60))
        if n1 + n2 < 3:
            n2 += 2
        discrete = rng.uniform() < 0.5
        shift = rng.normal(0, 0.5)
        if discrete:
            x = rng.integers(0, int(rng.integers(2, 8)), n1).astype(float) + (shift > 0.3)
            y = rng.integers(0, int(rng.integers(2, 8)), n2).astype(float)
        else:
            x = np.round(rng.normal(shift, 1, n1), 3)
            y = np.round(rng.normal(0, 1, n2), 3)
        if len(set(np.concatenate([x, y]))) < 2:
            continue
        alt = str(rng.choice(ALTERNATIVES))
        cont = bool(rng.uniform() < 0.6)
        r = stats.mannwhitneyu(x, y, use_continuity=cont, alternative=alt, method="asymptotic")
        cases.append({"id": f"mwu-{i}", "tol": "closed",
                      "input": {"control": [f(v) for v in y], "treatment": [f(v) for v in x], "alternative": alt, "use_continuity": cont},
                      "expected": {"u_treatment": f(r.statistic), "u_control": f(n1 * n2 - r.statistic), "p_value": f(r.pvalue)}})
    for i in range(60):
        n1, n2 = int(rng.integers(1, 25)), int(rng.integers(1, 25))
        v = rng.permutation(n1 + n2).astype(float) + rng.uniform(0, 0.5, n1 + n2)
        x, y = v[:n1] + rng.normal(0, 2), v[n1:]
        alt = str(rng.choice(ALTERNATIVES))
        r = stats.mannwhitneyu(x, y, alternative=alt, method="exact")
        cases.append({"id": f"mwu-exact-{i}", "tol": "closed",
                      "input": {"control": [f(u) for u in y], "treatment": [f(u) for u in x], "alternative": alt, "method": "exact"},
                      "expected": {"u_treatment": f(r.statistic), "u_control": f(n1 * n2 - r.statistic), "p_value": f(r.pvalue)}})
    cases.append({"id": "mwu-error-0", "input": {"control": [], "treatment": [1.0]}, "error": {"field": "control"}})
    cases.append({"id": "mwu-error-1", "input": {"control": [2.0, 2.0], "treatment": [2.0]}, "error": {"field": "treatment"}})
    cases.append({"id": "mwu-error-2", "input": {"control": [1.0, 2.0], "treatment": [2.0, 3.0], "method": "exact"}, "error": {"field": "method"}})
    return cases


def write(name, cases):
    path = os.path.join(OUT, name)
    with open(path, "w") as fh:
        json.dump({"generator": "Scripts/reference/generate_statistics.py", "versions": VERSIONS, "cases": cases},
                  fh, separators=(",", ":"), allow_nan=False)
    print(f"{name}: {len(cases)} cases, {os.path.getsize(path)} bytes", file=sys.stderr)


VERSIONS = {p: version(p) for p in ["numpy", "scipy", "statsmodels", "gbstats", "pandas", "mpmath"]}

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    write("compare.json", gen_compare())
    write("chance_to_beat.json", gen_chance_to_beat())
    write("srm.json", gen_srm())
    write("adjust.json", gen_adjust())
    write("power.json", gen_power())
    write("mann_whitney.json", gen_mann_whitney())
