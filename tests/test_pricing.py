"""Pricing against genai_prices.calc_price directly; overrides; unknown models."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from genai_prices import Usage, calc_price

from lumina_analytics.errors import PricingError
from lumina_analytics.pricing import (
    load_overrides,
    normalize_provider,
    price,
    price_frame,
    unpriced_models,
)

TS = datetime(2025, 8, 1, 12)


def _gp(model: str, provider: str, ts: datetime = TS, **usage: int) -> float:
    return float(
        calc_price(
            Usage(**usage), model, provider_id=provider, genai_request_timestamp=ts
        ).total_price
    )


def test_plain_call_matches_genai_prices() -> None:
    got = price("openai", "gpt-4o", 1000, 200, ts=TS)
    assert got == pytest.approx(_gp("gpt-4o", "openai", input_tokens=1000, output_tokens=200))
    assert got == pytest.approx(1000 * 2.5e-6 + 200 * 10e-6)


def test_cached_call_counts_cache_reads_once() -> None:
    # input 1000 INCLUDES 800 cache reads and 100 cache writes
    got = price("anthropic", "claude-3-5-sonnet-20241022", 1000, 100, 800, 100, ts=TS)
    want = _gp(
        "claude-3-5-sonnet-20241022",
        "anthropic",
        input_tokens=1000,
        output_tokens=100,
        cache_read_tokens=800,
        cache_write_tokens=100,
    )
    assert got == pytest.approx(want)
    assert got == pytest.approx(100 * 3e-6 + 800 * 0.3e-6 + 100 * 3.75e-6 + 100 * 15e-6)
    # cheaper than pricing all 1000 input tokens at the full rate
    assert got < price("anthropic", "claude-3-5-sonnet-20241022", 1000, 100, ts=TS)  # type: ignore[operator]


def test_reasoning_tokens_are_not_added_on_top() -> None:
    # output 500 already includes 400 reasoning tokens: the price only sees 500 output tokens
    frame = pd.DataFrame(
        {
            "provider": ["openai"],
            "model": ["o3"],
            "ts": [TS],
            "input_tokens": [2000],
            "output_tokens": [500],
            "cache_read_tokens": [0],
            "cache_write_tokens": [0],
            "reasoning_tokens": [400],
        }
    )
    got = price_frame(frame)["cost_usd"].iloc[0]
    assert got == pytest.approx(_gp("o3", "openai", input_tokens=2000, output_tokens=500))


def test_dated_price_change_o3() -> None:
    before, after = datetime(2025, 6, 1, 12), datetime(2025, 6, 20, 12)
    p_before = price("openai", "o3", 1_000_000, 1_000_000, ts=before)
    p_after = price("openai", "o3", 1_000_000, 1_000_000, ts=after)
    assert p_before == pytest.approx(
        _gp("o3", "openai", before, input_tokens=1_000_000, output_tokens=1_000_000)
    )
    assert p_after == pytest.approx(
        _gp("o3", "openai", after, input_tokens=1_000_000, output_tokens=1_000_000)
    )
    assert p_before is not None and p_after is not None and p_after < p_before
    frame = pd.DataFrame(
        {
            "provider": ["openai"] * 2,
            "model": ["o3"] * 2,
            "ts": [before, after],
            "input_tokens": [1_000_000] * 2,
            "output_tokens": [1_000_000] * 2,
        }
    )
    costs = price_frame(frame)["cost_usd"].tolist()
    assert costs == pytest.approx([p_before, p_after])


def test_unknown_model_is_none_and_listed() -> None:
    assert price("openai", "definitely-not-a-model", 10, 10) is None
    frame = pd.DataFrame(
        {
            "provider": ["openai", "openai"],
            "model": ["gpt-4o", "nope-1"],
            "ts": [TS, TS],
            "input_tokens": [10, 10],
            "output_tokens": [1, 1],
        }
    )
    priced = price_frame(frame)
    assert priced["cost_usd"].iloc[0] > 0
    assert pd.isna(priced["cost_usd"].iloc[1]) and priced["price_source"].iloc[1] is None
    report = unpriced_models(priced)
    assert report[["provider", "model", "calls"]].values.tolist() == [["openai", "nope-1", 1]]


def test_provider_names_map_to_genai_prices_ids() -> None:
    assert normalize_provider("gcp.gemini") == "google"
    assert normalize_provider("aws.bedrock") == "aws"
    assert normalize_provider("azure.ai.openai") == "azure"
    assert normalize_provider("mistral_ai") == "mistral"
    assert normalize_provider("x_ai") == "x-ai"
    assert price("azure.ai.openai", "gpt-4o", 1000, 100, ts=TS) == pytest.approx(
        _gp("gpt-4o", "azure", input_tokens=1000, output_tokens=100)
    )


def test_tiered_model_priced_per_call() -> None:
    frame = pd.DataFrame(
        {
            "provider": ["gcp.gemini"] * 2,
            "model": ["gemini-1.5-pro"] * 2,
            "ts": [TS, TS],
            "input_tokens": [1000, 300_000],
            "output_tokens": [10, 10],
        }
    )
    costs = price_frame(frame)["cost_usd"].tolist()
    assert costs == pytest.approx(
        [
            _gp("gemini-1.5-pro", "google", input_tokens=1000, output_tokens=10),
            _gp("gemini-1.5-pro", "google", input_tokens=300_000, output_tokens=10),
        ]
    )


def test_overrides_with_valid_from(tmp_path: Path) -> None:
    f = tmp_path / "prices.yaml"
    f.write_text(
        "prices:\n"
        "  - {provider: openai, model: my-model, input: 1.0, output: 2.0, cache_read: 0.5}\n"
        "  - {provider: openai, model: my-model, input: 0.5, output: 1.0, valid_from: 2025-07-01}\n"
        "  - {provider: openai, model: gpt-4o, input: 100, output: 100}\n"
    )
    ov = load_overrides(f)
    assert price(
        "openai", "my-model", 1_000_000, 0, 500_000, ts=datetime(2025, 6, 1), overrides=ov
    ) == pytest.approx(0.5 + 0.25)
    assert price(
        "openai", "my-model", 1_000_000, 1_000_000, ts=datetime(2025, 7, 2), overrides=ov
    ) == pytest.approx(1.5)
    frame = pd.DataFrame(
        {
            "provider": ["openai", "openai"],
            "model": ["my-model", "gpt-4o"],
            "ts": [datetime(2025, 7, 2)] * 2,
            "input_tokens": [1_000_000] * 2,
            "output_tokens": [0, 0],
        }
    )
    out = price_frame(frame, ov)
    assert out["cost_usd"].tolist() == pytest.approx([0.5, 100.0])
    assert out["price_source"].tolist() == ["override", "override"]


def test_bad_override_file(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("prices:\n  - {provider: openai, model: m, input: cheap, output: 1}\n")
    with pytest.raises(PricingError, match="'input' must be a number"):
        load_overrides(f)


def test_example_override_file_loads() -> None:
    root = Path(__file__).resolve().parents[1]
    ov = load_overrides(root / "lumina_analytics/defaults/price_overrides.example.yaml")
    assert len(ov.entries) >= 2
