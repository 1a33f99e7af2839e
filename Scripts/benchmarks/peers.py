#!/usr/bin/env python3
"""Peer figures for Scripts/bench: GrowthBook's gbstats 0.8.0 and SciPy on the same kind of comparisons
RefereeBench times (Welch, absolute difference, arms n in [1000, 10000], means 10-11, variances 4-5).
Prints `RESULT {json}` lines like RefereeBench. Needs gbstats==0.8.0, scipy, numpy (Scripts/bench installs them)."""
import json, random, time

import numpy as np
from scipy import stats as sst

def report(name, value, unit, **extra):
    print(f"{name:58s} {value:14.3f} {unit}")
    print("RESULT " + json.dumps(dict(name=name, value=value, unit=unit, **extra), sort_keys=True))

random.seed(11)
arms = [((random.randint(1000, 10000), 10 + random.random(), 4 + random.random()),
         (random.randint(1000, 10000), 10 + random.random(), 4 + random.random())) for _ in range(1000)]

# gbstats: TwoSidedTTest on SampleMeanStatistic (sums), absolute difference.
from gbstats.frequentist.tests import TwoSidedTTest, FrequentistConfig
from gbstats.models.statistics import SampleMeanStatistic
def stat(n, mean, var):
    s = mean * n
    return SampleMeanStatistic(n=n, sum=s, sum_squares=var * (n - 1) + s * s / n)
config = FrequentistConfig(difference_type="absolute")
pairs = [(stat(*c), stat(*t)) for c, t in arms]
count = 20000
t0 = time.perf_counter()
for i in range(count):
    a, b = pairs[i % len(pairs)]
    TwoSidedTTest(a, b, config).compute_result()
elapsed = time.perf_counter() - t0
report("peer gbstats 0.8.0 TwoSidedTTest (Welch, absolute)", count / elapsed, "comparisons/s")

# SciPy, vectorised over 2,000,000 comparisons.
n = 2_000_000
idx = np.arange(n) % len(arms)
c = np.array([a[0] for a in arms]); t = np.array([a[1] for a in arms])
t0 = time.perf_counter()
res = sst.ttest_ind_from_stats(c[idx, 1], np.sqrt(c[idx, 2]), c[idx, 0], t[idx, 1], np.sqrt(t[idx, 2]), t[idx, 0], equal_var=False)
elapsed = time.perf_counter() - t0
report("peer scipy ttest_ind_from_stats vectorised (Welch)", n / elapsed, "comparisons/s")
