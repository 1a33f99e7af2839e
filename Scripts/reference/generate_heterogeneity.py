#!/usr/bin/env python3
"""Reference values for Cochran's Q (Heterogeneity.cochranQ, used by results.segments) and for the
Benjamini-Hochberg adjustment across a dimension's values.

Writes Tests/StatisticsTests/Reference/heterogeneity.json. Nothing here runs at test time.
Set-up: python3 -m venv .venv-ref && .venv-ref/bin/pip install numpy scipy statsmodels
Run from the repository root: .venv-ref/bin/python Scripts/reference/generate_heterogeneity.py

Q, its degrees of freedom and p-value come from statsmodels.stats.meta_analysis.combine_effects (fixed effect,
inverse-variance weights); the p-value is checked against scipy.stats.chi2.sf; BH from statsmodels multipletests.
"""
import json
import os
import random
from importlib.metadata import version

import numpy as np
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.multitest import multipletests

rng = random.Random(20261201)
cases = []
for i in range(120):
    k = rng.choice([2, 3, 5, 8, 20, 50])
    base = rng.uniform(-0.05, 0.05)
    spread = rng.choice([0.0, 0.002, 0.01, 0.05])
    ses = [rng.uniform(0.001, 0.03) for _ in range(k)]
    est = [base + rng.gauss(0, spread) + rng.gauss(0, se) for se in ses]
    res = combine_effects(np.array(est), np.array(ses) ** 2, method_re="chi2")
    q = float(res.q)
    df = k - 1
    p = float(stats.chi2.sf(q, df))
    assert abs(p - float(res.test_homogeneity().pvalue)) <= 1e-12 + 1e-9 * p
    pvals = [float(2 * stats.norm.sf(abs(e / s))) for e, s in zip(est, ses)]
    reject, adjusted, _, _ = multipletests(pvals, alpha=0.05, method="fdr_bh")
    cases.append({"id": f"q{i}", "tol": "closed",
                  "input": {"estimates": est, "standard_errors": ses, "p_values": pvals},
                  "expected": {"q": q, "df": df, "p_value": p, "pooled": float(res.mean_effect_fe),
                               "bh_adjusted": [float(x) for x in adjusted], "bh_reject": [bool(x) for x in reject]}})
cases.append({"id": "one-segment", "input": {"estimates": [0.1], "standard_errors": [0.01], "p_values": [0.5]}, "error": {"field": "estimates"}})
cases.append({"id": "zero-se", "input": {"estimates": [0.1, 0.2], "standard_errors": [0.01, 0.0], "p_values": [0.5, 0.5]},
              "error": {"field": "standard_errors[1]"}})
out = {"source": f"statsmodels {version('statsmodels')} combine_effects and multipletests(fdr_bh), scipy {version('scipy')} chi2.sf",
       "cases": cases}
path = os.path.join("Tests", "StatisticsTests", "Reference", "heterogeneity.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
print(f"wrote {path}: {len(cases)} cases")
