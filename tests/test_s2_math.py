"""S²'s combination and mask sampling as pure functions (guiders/s2.py)."""

import pytest
import torch
from raag_s2_guidance.guiders.s2 import draw_mask, dropped_count, s2_term, subnetwork_deviation

ELIGIBLE = [("double_block", i) for i in range(1, 19)] + [("single_block", i) for i in range(1, 38)]


def _rand(seed):
    return torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(seed))


def s2_guidance(uncond, cond, sub, scale, omega):
    """Eq. 4 as the engine computes it: core's CFG combination, plus ``s2_term`` as the first post-cfg step."""
    return uncond + (cond - uncond) * scale + s2_term(cond, sub, omega)


def test_eq4_weights_sum_to_one_so_the_space_does_not_matter():
    u, c, s = _rand(1), _rand(2), _rand(3)
    lam, omega = 7.5, 0.25
    d = s2_guidance(u, c, s, lam, omega)
    assert torch.allclose(d, (1 - lam) * u + (lam + omega) * c - omega * s, atol=1e-5)
    # an affine change of space (e.g. x0 -> eps) commutes with the combination
    x, sigma = _rand(4), 0.7
    eps = lambda d_: (x - d_) / sigma  # noqa: E731
    assert torch.allclose(eps(d), s2_guidance(eps(u), eps(c), eps(s), lam, omega), atol=1e-4)


def test_s2_term_is_minus_omega_times_sub_minus_cond():
    c, s = _rand(2), _rand(3)
    assert torch.allclose(s2_term(c, s, 0.25), -0.25 * (s - c))
    assert torch.equal(s2_term(c, c, 0.25), torch.zeros_like(c))


def test_subnetwork_deviation_per_sample():
    u, c, s = _rand(1), _rand(2), _rand(3)
    dev = subnetwork_deviation(c, u, s)
    assert dev.shape == (2,)
    expected = torch.linalg.vector_norm((s - c)[1]) / torch.linalg.vector_norm((c - u)[1])
    assert dev[1].item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("eligible,ratio,expected", [
    (23, 0.1, 2), (37, 0.1, 4), (2, 0.1, 1), (55, 0.1, 6), (10, 0.01, 1), (5, 0.99, 5), (0, 0.1, 0),
])
def test_dropped_count_is_rounded_ratio_at_least_one(eligible, ratio, expected):
    assert dropped_count(eligible, ratio) == expected


def test_masks_are_seeded_by_seed_and_step_sigma():
    a = draw_mask(ELIGIBLE, 0.1, seed=42, step_sigma=0.75)
    assert a == draw_mask(ELIGIBLE, 0.1, seed=42, step_sigma=0.75)
    assert len(a) == 6 and len(set(a)) == 6 and set(a) <= set(ELIGIBLE)
    assert list(a) == sorted(a)
    others = {draw_mask(ELIGIBLE, 0.1, seed=43, step_sigma=0.75), draw_mask(ELIGIBLE, 0.1, seed=42, step_sigma=0.5)}
    assert a not in others


def test_masks_are_uniform_over_eligible_blocks():
    counts = {b: 0 for b in ELIGIBLE}
    for step in range(2000):
        for b in draw_mask(ELIGIBLE, 0.1, seed=7, step_sigma=1 - step / 2000):
            counts[b] += 1
    expected = 2000 * 6 / len(ELIGIBLE)
    assert min(counts.values()) > 0.7 * expected and max(counts.values()) < 1.3 * expected


def test_masks_do_not_touch_the_global_rng():
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    draw_mask(ELIGIBLE, 0.1, seed=1, step_sigma=1.0)
    assert torch.equal(torch.rand(1), before)


def test_a_mask_drops_at_least_one_block_and_none_of_none():
    assert len(draw_mask(ELIGIBLE, 0.001, seed=0, step_sigma=1.0)) == 1
    assert draw_mask([], 0.1, seed=0, step_sigma=1.0) == ()
