"""The logistic baseline's fitting routine: Newton (statsmodels Logit) must give the Binomial GLM's answer."""
import numpy as np
import statsmodels.api as sm

from vai.verticals.master_score.model import _logistic_fit


def test_newton_fit_matches_the_binomial_glm():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5000, 6))
    y = (rng.random(5000) < 1 / (1 + np.exp(-(0.8 * X[:, 0] - 0.5 * X[:, 3])))).astype(float)
    A = sm.add_constant(X)
    res = _logistic_fit(y, A)
    glm = sm.GLM(y, A, family=sm.families.Binomial()).fit()
    assert np.allclose(res.params, glm.params, atol=1e-8)
    assert np.allclose(res.bse, glm.bse, rtol=1e-6)
    assert np.allclose(res.pvalues, glm.pvalues, atol=1e-8)
    assert abs(res.params[1] - 0.8) < 0.1 and abs(res.params[4] + 0.5) < 0.1


def test_a_singular_design_falls_back_to_irls():
    rng = np.random.default_rng(4)
    x = rng.normal(size=2000)
    A = sm.add_constant(np.stack([x, x], axis=1))  # two identical columns: Newton's Hessian is singular
    y = (rng.random(2000) < 1 / (1 + np.exp(-x))).astype(float)
    res = _logistic_fit(y, A)
    assert np.all(np.isfinite(res.params))
    assert abs(res.params[1] + res.params[2] - 1.0) < 0.2  # the effect is split over the twin columns
