#!/usr/bin/env python3
"""Reference values for the interaction test (Statistics/Interaction.swift), from statsmodels' OLS.

For each case: simulated units of two overlapping experiments A (control, treatment) and B (2 or 3 arms), a
continuous or 0/1 outcome, with and without a planted interaction. The cells' sums (n, sum, sum of squares per arm
of B x arm of A) go to Referee; statsmodels fits y ~ C(a) * C(b) on the units: the coefficient of a:b (B's arm
against B's control) is the difference of differences, its HC2 standard error and normal test the `unpooled`
answer, its plain OLS standard error and t test (N - cells degrees of freedom) the `pooled` one.

    .venv-bench/bin/python Scripts/reference/generate_interactions.py > Tests/StatisticsTests/Reference/interactions.json
(needs numpy, pandas and statsmodels)
"""
import json
import sys
from importlib.metadata import version

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

rng = np.random.default_rng(20261202)
cases = []
for kind in ("continuous", "binomial"):
    for b_arms in (2, 3):
        for interaction in (0.0, 0.15):
            for n in (400, 5000):
                a = rng.integers(0, 2, n)
                b = rng.integers(0, b_arms, n)
                if kind == "continuous":
                    y = 10 + 0.5 * a + 0.3 * (b == 1) + interaction * 10 * a * (b == 1) + rng.lognormal(0, 1, n)
                else:
                    p = np.clip(0.2 + 0.03 * a + 0.02 * (b == 1) + interaction * 0.5 * a * (b == 1), 0, 1)
                    y = (rng.random(n) < p).astype(float)
                df = pd.DataFrame({"y": y, "a": a, "b": b})
                cells = [[{"n": int(((b == j) & (a == i)).sum()), "sum": float(y[(b == j) & (a == i)].sum()),
                           "sum_squares": float((y[(b == j) & (a == i)] ** 2).sum())} for i in (0, 1)] for j in range(b_arms)]
                model = smf.ols("y ~ C(a) * C(b)", data=df)
                robust, plain = model.fit(cov_type="HC2"), model.fit()
                for arm in range(1, b_arms):
                    term = f"C(a)[T.1]:C(b)[T.{arm}]"
                    cases.append({
                        "kind": kind, "b_arms": b_arms, "planted": interaction, "n": n, "arm": arm, "cells": cells,
                        "unpooled": {"estimate": float(robust.params[term]), "se": float(robust.bse[term]),
                                     "p_value": float(robust.pvalues[term]), "ci": [float(x) for x in robust.conf_int().loc[term]]},
                        "pooled": {"estimate": float(plain.params[term]), "se": float(plain.bse[term]), "df": float(plain.df_resid),
                                   "p_value": float(plain.pvalues[term]), "ci": [float(x) for x in plain.conf_int().loc[term]]},
                    })
json.dump({"generator": "Scripts/reference/generate_interactions.py",
           "versions": {"statsmodels": version("statsmodels"), "numpy": version("numpy"), "pandas": version("pandas")},
           "cases": cases}, sys.stdout, indent=1)
print()
