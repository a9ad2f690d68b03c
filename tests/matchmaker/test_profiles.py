"""OrgFeatures validation and the DP release of category histograms."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from market.categories import DEFAULT_CATEGORIES
from market.documents import PeftSummary, ProfileDoc
from market.privacy import (
    PrivacyAccountant,
    PrivacyBudgetExceededError,
    _gaussian_delta,
    classical_gaussian_sigma,
    gaussian_sigma,
    laplace_scale,
    noisy_counts,
    release_histogram,
    sensitivities,
    size_bucket_of,
)
from matchmaker.features import OrgFeatures
from matchmaker.policies import PolicyParams
from matchmaker.runner import features_from_profile

K = len(DEFAULT_CATEGORIES)


def _features(**kw: object) -> OrgFeatures:
    base: dict[str, object] = {
        "family": "qwen",
        "size_bucket": 2,
        "lora_rank": 16,
        "pass1": 0.4,
        "pass1_delta": 0.01,
        "categories": DEFAULT_CATEGORIES,
        "category_hist": tuple([1.0 / K] * K),
        "reputation": 0.7,
        "credits": 12.0,
    }
    base.update(kw)
    return OrgFeatures(**base)  # type: ignore[arg-type]


def test_features_round_trip_through_json() -> None:
    f = _features()
    again = OrgFeatures.from_dict(json.loads(json.dumps(f.to_dict())))
    assert again == f
    assert f.with_chain(0.1, 3.0).reputation == 0.1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pass1", 1.5),
        ("pass1", math.nan),
        ("pass1_delta", -2.0),
        ("size_bucket", True),
        ("lora_rank", 0),
        ("family", ""),
        ("reputation", -0.1),
        ("credits", math.inf),
        ("category_hist", tuple([0.5] * K)),
        ("category_hist", (1.0,)),
    ],
)
def test_features_reject_bad_fields(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field.split("_")[0]):
        _features(**{field: value})


def test_features_from_dict_is_strict() -> None:
    d = _features().to_dict()
    d["extra"] = 1
    with pytest.raises(ValueError, match="unknown"):
        OrgFeatures.from_dict(d)


def test_size_bucket() -> None:
    assert size_bucket_of(100_000_000) == 0
    assert size_bucket_of(500_000_000) == 2
    assert size_bucket_of(1_500_000_000) == 4
    with pytest.raises(ValueError, match="n_params"):
        size_bucket_of(0)


def test_sensitivities() -> None:
    assert sensitivities() == (1.0, 1.0)
    assert sensitivities(3) == (3.0, math.sqrt(3))
    assert sensitivities(1, "replace") == (2.0, math.sqrt(2))


def test_laplace_noise_has_the_calibrated_scale() -> None:
    b = laplace_scale(0.5, 1.0)
    assert b == 2.0
    rng = np.random.default_rng(1234)
    noise = noisy_counts(np.zeros((50_000, K)), "laplace", b, rng).ravel()
    assert abs(noise.mean()) < 0.02
    assert np.std(noise) == pytest.approx(math.sqrt(2) * b, rel=0.01)
    assert np.mean(np.abs(noise)) == pytest.approx(b, rel=0.01)


def test_gaussian_sigma_is_tight_and_noise_matches() -> None:
    for eps, delta in [(0.5, 1e-5), (1.0, 1e-5), (4.0, 1e-6)]:
        sigma = gaussian_sigma(eps, delta, 1.0)
        assert _gaussian_delta(sigma, eps, 1.0) <= delta
        assert _gaussian_delta(sigma * (1 - 1e-6), eps, 1.0) > delta
        if eps <= 1.0:
            assert sigma < classical_gaussian_sigma(eps, delta, 1.0)
    sigma = gaussian_sigma(1.0, 1e-5, math.sqrt(2))
    rng = np.random.default_rng(99)
    noise = noisy_counts(np.zeros((50_000, K)), "gaussian", sigma, rng).ravel()
    assert np.std(noise) == pytest.approx(sigma, rel=0.01)


def test_release_postprocesses_and_accounts() -> None:
    acc = PrivacyAccountant(epsilon_budget=2.0)
    rng = np.random.default_rng(0)
    counts = {"strings": 120, "arithmetic": 30, "lists": 0}
    rel = release_histogram(counts, rng=rng, accountant=acc, epsilon=0.5)
    assert len(rel.histogram) == K
    assert min(rel.histogram) >= 0.0
    assert math.fsum(rel.histogram) == pytest.approx(1.0, abs=1e-12)
    assert rel.histogram[0] > rel.histogram[1] > 0.0
    assert (rel.epsilon_spent_total, rel.releases_total) == (0.5, 1)
    rel2 = release_histogram(counts, rng=rng, accountant=acc, epsilon=1.5)
    assert rel2.epsilon_spent_total == 2.0
    state = rng.bit_generator.state
    with pytest.raises(PrivacyBudgetExceededError):
        release_histogram(counts, rng=rng, accountant=acc, epsilon=0.1)
    assert rng.bit_generator.state == state
    assert acc.releases == 2


def test_release_is_seeded_and_gaussian_records_delta() -> None:
    counts = [5, 50, 500, 0, 0, 10, 20, 1]
    a = release_histogram(counts, rng=np.random.default_rng(7), accountant=PrivacyAccountant())
    b = release_histogram(counts, rng=np.random.default_rng(7), accountant=PrivacyAccountant())
    assert a.histogram == b.histogram
    g = release_histogram(
        counts, rng=np.random.default_rng(7), accountant=PrivacyAccountant(), mechanism="gaussian", delta=1e-6
    )
    assert g.delta_spent_total == 1e-6
    assert g.noise_scale == gaussian_sigma(1.0, 1e-6, 1.0)


def test_release_all_clipped_is_uniform() -> None:
    rel = release_histogram(
        [0] * K, rng=np.random.default_rng(3), accountant=PrivacyAccountant(), epsilon=1e-9
    )
    assert math.fsum(rel.histogram) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"counts": [1, 2]},
        {"counts": [-1] + [0] * (K - 1)},
        {"counts": {"nope": 3}},
        {"counts": [1] * K, "delta": 1e-5},
        {"counts": [1] * K, "mechanism": "gaussian"},
        {"counts": [1] * K, "epsilon": 0.0},
    ],
)
def test_release_rejects_bad_input(kwargs: dict[str, object]) -> None:
    acc = PrivacyAccountant()
    with pytest.raises(ValueError, match=r"counts|delta|epsilon|categories"):
        release_histogram(rng=np.random.default_rng(0), accountant=acc, **kwargs)  # type: ignore[arg-type]
    assert acc.releases == 0


def test_profile_doc_round_trip() -> None:
    """The one profile schema (`ProfileDoc`) carries a DP release and joins the chain's reputation."""
    rel = release_histogram([3] * K, rng=np.random.default_rng(0), accountant=PrivacyAccountant())
    doc = ProfileDoc(
        model_family="phi",
        size_bucket="3",
        peft=PeftSummary(rank=8, target_modules=("q_proj",)),
        pass_at_1=0.3,
        pass_at_1_delta=0.0,
        categories=rel.categories,
        histogram=rel.histogram,
        epsilon=rel.epsilon,
        budget_spent=rel.epsilon_spent_total,
    )
    assert "reputation" not in json.loads(doc.to_bytes())
    assert rel.dp_record()["epsilon_spent_total"] == 1.0
    parsed = ProfileDoc.from_bytes(doc.to_bytes())
    f = features_from_profile(parsed, PolicyParams(categories=rel.categories), 9 * 10**17, 10**18)
    assert f.category_hist == pytest.approx(rel.histogram, abs=1e-12)
    assert f.reputation == 0.9
    with pytest.raises(ValueError, match="categories"):
        features_from_profile(parsed, PolicyParams(categories=("a", "b")), 9 * 10**17, 10**18)
