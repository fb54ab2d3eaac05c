"""The reference of `scripts/bench.py`: the plain PyMC analysis of the Chen 2025 overall 2x2 table.

This is what a user would write without bayes_rescue: mRS 0-2 at 90 days, 15/20 (EVT) vs 8/23 (medical),
Chen et al., Am J Transl Res 2025;17(5):3766-3777 (PMID 40535629, abstract); arms at baseline -/+ log_or/2,
baseline ~ N(0, 2), log OR ~ N(0, 0.35) (the priors named in issue 14); PyMC's default `pm.sample` (NUTS,
1000 tuning + 1000 draws, 4 chains) and `az.summary`. Run as its own process: `python scripts/bench_reference.py`.
"""

import arviz as az
import pymc as pm

with pm.Model():
    baseline = pm.Normal("baseline", 0.0, 2.0)
    log_or = pm.Normal("log_or", 0.0, 0.35)
    pm.Binomial("y_treatment", n=20, p=pm.math.invlogit(baseline + log_or / 2), observed=15)
    pm.Binomial("y_control", n=23, p=pm.math.invlogit(baseline - log_or / 2), observed=8)
    idata = pm.sample(random_seed=20250531)

print(az.summary(idata))
