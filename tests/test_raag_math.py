"""RAAG's ratio and schedule as pure functions (guiders/raag.py), against the paper's formulas."""

import math

import pytest
import torch
from raag_s2_guidance.guiders.raag import guidance_ratio, per_sample_view, raag_scale


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("shape", [(3, 4, 8, 8), (2, 16, 3, 4, 4), (2, 1, 50)])
def test_ratio_per_sample_is_each_samples_own_norm_ratio(shape):
    x, c, u = _rand(*shape, seed=1), _rand(*shape, seed=2), _rand(*shape, seed=3)
    rho = guidance_ratio(c, u, x)
    assert rho.shape == (shape[0],) and rho.dtype == torch.float32
    for i in range(shape[0]):
        expected = torch.linalg.vector_norm(c[i] - u[i]) / torch.linalg.vector_norm(x[i] - u[i])
        assert rho[i].item() == pytest.approx(expected.item(), rel=1e-6)


def test_ratio_batch_mode_takes_one_norm_over_the_whole_batch():
    x, c, u = _rand(4, 4, 8, 8, seed=1), _rand(4, 4, 8, 8, seed=2), _rand(4, 4, 8, 8, seed=3)
    rho = guidance_ratio(c, u, x, mode="batch")
    expected = torch.linalg.vector_norm(c - u) / torch.linalg.vector_norm(x - u)
    assert torch.allclose(rho, expected.expand(4))
    # batch of one: both modes agree
    assert torch.equal(guidance_ratio(c[:1], u[:1], x[:1], "batch"), guidance_ratio(c[:1], u[:1], x[:1]))


def test_ratio_is_sigma_free_in_velocity_space():
    """D = x - sigma * v (flow): the ratio of denoised differences equals ||v_c - v_u|| / ||v_u||."""
    x, v_c, v_u = _rand(2, 4, 8, 8, seed=1), _rand(2, 4, 8, 8, seed=2), _rand(2, 4, 8, 8, seed=3)
    for sigma in (0.9, 0.3, 1e-3):
        rho = guidance_ratio(x - sigma * v_c, x - sigma * v_u, x)
        expected = torch.linalg.vector_norm((v_c - v_u).flatten(1), dim=1) / torch.linalg.vector_norm(
            v_u.flatten(1), dim=1)
        assert torch.allclose(rho, expected, rtol=1e-3)


def test_ratio_norms_are_fp32_for_half_inputs():
    x, c, u = (t.to(torch.bfloat16) for t in (_rand(1, 4, 8, 8, seed=1), _rand(1, 4, 8, 8, seed=2),
                                              _rand(1, 4, 8, 8, seed=3)))
    assert guidance_ratio(c, u, x).dtype == torch.float32


def test_schedule_matches_the_formula_and_its_bounds():
    rho = torch.tensor([0.0, 0.02, 0.1, 0.3, 1.0, 50.0])
    w = raag_scale(rho, 18.0, 12.0)
    expected = [1 + 17 * math.exp(-12 * r) for r in rho.tolist()]
    assert w.tolist() == pytest.approx(expected, rel=1e-6)
    assert w[0].item() == 18.0 and w[-1].item() == pytest.approx(1.0)
    assert torch.all(w >= 1.0) and torch.all(w <= 18.0)


def test_schedule_with_alpha_zero_is_constant_w_max():
    assert raag_scale(torch.tensor([0.0, 0.5, 100.0, float("inf")]), 7.0, 0.0).tolist() == [7.0] * 4


def test_non_finite_ratio_gives_no_amplification_not_nan():
    w = raag_scale(torch.tensor([float("nan"), float("inf"), 0.1]), 18.0, 12.0)
    assert torch.isfinite(w).all()
    assert w[:2].tolist() == [1.0, 1.0]


def test_zero_unconditional_prediction_and_sigma_zero_stay_finite():
    x = _rand(2, 4, 8, 8)
    assert torch.isfinite(guidance_ratio(_rand(2, 4, 8, 8, seed=5), x, x)).all()  # ||v_u|| = 0
    # sigma = 0: D_c = D_u = x, 0/eps -> rho 0, w = w_max, and the difference it multiplies is 0
    assert guidance_ratio(x, x, x).tolist() == [0.0, 0.0]


def test_per_sample_view_broadcasts_over_any_rank():
    w = torch.tensor([1.0, 2.0])
    assert per_sample_view(w, torch.zeros(2, 3, 4, 4)).shape == (2, 1, 1, 1)
    assert per_sample_view(w, torch.zeros(2, 3, 5, 4, 4)).shape == (2, 1, 1, 1, 1)
    assert per_sample_view(w, torch.zeros(2, 3, 4, 4, dtype=torch.float16)).dtype == torch.float16
