"""The dynamic engine's filter shared over dyads with the same pattern of ratings
(apim/engine/dynamic/patterns.py) against the same filter run per dyad (every dyad its
own node, no merging of histories) and against the dense oracle, on data where some dyads
share patterns (complete dyads, copies of a gappy dyad's pattern) and others do not;
values, profiled means and the analytic gradient, for both initial conditions and for
many parameter sets at once."""

from __future__ import annotations

import numpy as np
import pytest
from dynamic_oracle import dense_loglik
from dynamic_support import simulate_grid, stationary

from apim.engine.dynamic.gradient import gradient_many, loglik_gradient
from apim.engine.dynamic.kalman import evaluate, evaluate_many, prepare_dynamic


def _mixed(seed: int) -> np.ndarray:
    """40 dyads x 8 sessions x 4 variables: 12 complete, 10 with one shared gappy
    pattern (a missing rating, a skipped session, dropout), 6 with a shared late start,
    12 with patterns of their own."""
    rng = np.random.default_rng(seed)
    y = simulate_grid(40, 8, seed=seed)
    y[12:22, 2, 1] = np.nan
    y[12:22, 4] = np.nan
    y[12:22, 7:] = np.nan
    y[22:28, :3] = np.nan
    first = y[28:, 0].copy()
    y[28:][rng.random(y[28:].shape) < 0.2] = np.nan
    y[28:, 0] = first                       # every dyad rated at the first session
    return y


def _parameters(rng: np.random.Generator, initial: str):
    k = 4
    phi = rng.normal(scale=0.25, size=(k, k))
    phi *= 0.7 / max(0.7, float(np.max(np.abs(np.linalg.eigvals(phi)))))
    a = rng.normal(size=(k, k))
    sw = a @ a.T / k + 0.3 * np.eye(k)
    b = rng.normal(size=(k, k))
    sb = b @ b.T / k + 0.1 * np.eye(k)
    c = rng.normal(size=(k, k))
    p0 = c @ c.T / k + 0.2 * np.eye(k) if initial == "free" else stationary(phi, sw)
    return rng.normal(size=k), phi, sw, sb, p0


@pytest.mark.parametrize("initial", ["free", "stationary"])
@pytest.mark.parametrize("seed", [11, 12])
def test_shared_filter_equals_per_dyad_filter_and_dense_oracle(initial, seed):
    y = _mixed(seed)
    shared, alone = prepare_dynamic(y), prepare_dynamic(y, share=False)
    # the data do share: fewer nodes than dyads at every session; at the first, the
    # rated dyads and the late starters
    assert shared.steps[0].n_nodes == 2
    assert all(s.n_nodes < s.na for s in shared.steps)
    assert all(s.n_nodes == s.na for s in alone.steps)
    assert len(shared.group_first) < len(alone.group_first) == 40
    mu, phi, sw, sb, p0 = _parameters(np.random.default_rng(seed), initial)
    dense = dense_loglik(y, mu, phi, sw, sb, p0)
    for data in (shared, alone):
        assert abs(evaluate(data, phi, sw, sb, p0, mu=mu).loglik - dense) < 1e-8
    prof_shared = evaluate(shared, phi, sw, sb, p0)
    prof_alone = evaluate(alone, phi, sw, sb, p0)
    assert np.allclose(prof_shared.mu, prof_alone.mu, atol=1e-12)
    assert abs(prof_shared.loglik - prof_alone.loglik) < 1e-8
    for given in (mu, None):
        one = loglik_gradient(shared, phi, sw, sb, p0, given)
        other = loglik_gradient(alone, phi, sw, sb, p0, given)
        assert abs(one.loglik - other.loglik) < 1e-8
        for name in ("mu", "phi", "sigma_w", "sigma_b", "p0"):
            a, b = getattr(one, name), getattr(other, name)
            assert np.max(np.abs(a - b)) < 1e-9 * max(1.0, np.max(np.abs(b))), name


def test_gradient_of_shared_filter_equals_central_differences():
    """Central differences of the dense oracle (independent of the filter) in a few
    entries of each matrix."""
    y = _mixed(13)
    data = prepare_dynamic(y)
    mu, phi, sw, sb, p0 = _parameters(np.random.default_rng(13), "free")
    grad = loglik_gradient(data, phi, sw, sb, p0, mu)
    step = 1e-5
    for name, (i, j) in [("phi", (2, 0)), ("phi", (1, 3)), ("sigma_w", (0, 0)),
                         ("sigma_b", (3, 3)), ("p0", (1, 1))]:
        matrices = {"phi": phi, "sigma_w": sw, "sigma_b": sb, "p0": p0}
        values = []
        for sign in (1, -1):
            moved = {key: m.copy() for key, m in matrices.items()}
            moved[name][i, j] += sign * step
            values.append(dense_loglik(y, mu, moved["phi"], moved["sigma_w"],
                                       moved["sigma_b"], moved["p0"]))
        numeric = (values[0] - values[1]) / (2 * step)
        assert getattr(grad, name)[i, j] == pytest.approx(numeric, rel=1e-6, abs=1e-6)


def test_many_parameter_sets_at_once_equal_one_at_a_time():
    y = _mixed(14)
    data = prepare_dynamic(y)
    rng = np.random.default_rng(14)
    sets = [_parameters(rng, "free") for _ in range(3)]
    stack = [np.array([s[j] for s in sets]) for j in range(5)]
    values, mus, _ = evaluate_many(data, *stack[1:], mu=stack[0])
    many = gradient_many(data, *stack[1:], stack[0])
    for j, (mu, phi, sw, sb, p0) in enumerate(sets):
        one = loglik_gradient(data, phi, sw, sb, p0, mu)
        assert values[j] == pytest.approx(one.loglik, abs=1e-9)
        assert np.asarray(many.loglik)[j] == pytest.approx(one.loglik, abs=1e-9)
        assert np.allclose(many.phi[j], one.phi, atol=1e-9, rtol=1e-12)
        assert np.allclose(many.p0[j], one.p0, atol=1e-9, rtol=1e-12)
        assert np.allclose(many.sigma_b[j], one.sigma_b, atol=1e-9, rtol=1e-12)


def test_many_nodes_per_session():
    """More nodes than the one-product path takes (every one of 80 dyads its own node):
    the per-node products agree with the shared filter."""
    rng = np.random.default_rng(15)
    y = simulate_grid(80, 4, seed=15)
    y[rng.random(y.shape) < 0.3] = np.nan
    shared, alone = prepare_dynamic(y), prepare_dynamic(y, share=False)
    assert max(s.n_nodes for s in alone.steps) > 64
    mu, phi, sw, sb, p0 = _parameters(rng, "free")
    one = loglik_gradient(shared, phi, sw, sb, p0, None)
    other = loglik_gradient(alone, phi, sw, sb, p0, None)
    assert abs(one.loglik - other.loglik) < 1e-8
    assert abs(one.loglik - dense_loglik(y, one.means, phi, sw, sb, p0)) < 1e-8
    for name in ("mu", "phi", "sigma_w", "sigma_b", "p0"):
        a, b = getattr(one, name), getattr(other, name)
        assert np.max(np.abs(a - b)) < 1e-9 * max(1.0, np.max(np.abs(b))), name


def test_between_gradient_on_one_filter_equals_the_whole_gradient():
    """The information's columns of the means and Sigma_B reuse the filter of one
    parameter set: their derivatives equal those of the whole filter and adjoint."""
    from apim.engine.dynamic.gradient import between_gradient_many
    from apim.engine.dynamic.kalman import run_filter

    data = prepare_dynamic(_mixed(16))
    rng = np.random.default_rng(16)
    _, phi, sw, _, p0 = _parameters(rng, "stationary")
    sets = [_parameters(rng, "free") for _ in range(3)]
    mus, sbs = np.array([s[0] for s in sets]), np.array([s[3] for s in sets])
    totals, _ = run_filter(data, phi[None], sw[None], p0[None])
    loglik, bar_mu, bar_sb, none = between_gradient_many(data, totals, sbs, mus)
    assert none is None
    whole = gradient_many(data, *(np.repeat(x[None], 3, axis=0) for x in (phi, sw)), sbs,
                          np.repeat(p0[None], 3, axis=0), mus)
    assert np.allclose(loglik, whole.loglik, atol=1e-9, rtol=0)
    assert np.allclose(bar_mu, whole.mu, atol=1e-9, rtol=1e-12)
    assert np.allclose(bar_sb, whole.sigma_b, atol=1e-9, rtol=1e-12)
