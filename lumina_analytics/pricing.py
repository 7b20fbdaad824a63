"""Cost of LLM calls from token counts, via the bundled ``genai-prices`` data, with overrides.

Token conventions (OpenTelemetry GenAI semconv, and what ``genai_prices.Usage`` expects):
``input_tokens`` already INCLUDES cache reads and cache writes, ``output_tokens`` already
INCLUDES reasoning tokens. So a call is priced as

    (input - cache_read - cache_write) * input_price + cache_read * cache_read_price
    + cache_write * cache_write_price + output * output_price

and nothing is counted twice (reasoning tokens are never added on top of output tokens).

Unknown models price to ``None`` (never 0) and are listed by :func:`unpriced_models`.

Overrides (YAML, see ``lumina_analytics/defaults/price_overrides.example.yaml``) give USD per
million tokens for a provider/model, optionally from a ``valid_from`` date on; they win over
genai-prices for calls at or after that date.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from lumina_analytics.errors import PricingError

#: OTel ``gen_ai.provider.name`` / ``gen_ai.system`` / OpenInference ``llm.provider`` values
#: mapped to genai-prices provider ids. Values not listed pass through lower-cased.
PROVIDER_ALIASES: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "google": "google",
    "gemini": "google",
    "vertex_ai": "google",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "mistral": "mistral",
    "aws.bedrock": "aws",
    "bedrock": "aws",
    "aws": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "az.ai.openai": "azure",
    "az.ai.inference": "azure",
    "azure": "azure",
    "cohere": "cohere",
    "groq": "groq",
    "deepseek": "deepseek",
    "x_ai": "x-ai",
    "xai": "x-ai",
    "x-ai": "x-ai",
    "perplexity": "perplexity",
    "together": "together",
    "together_ai": "together",
    "fireworks": "fireworks",
    "fireworks_ai": "fireworks",
    "openrouter": "openrouter",
    "cerebras": "cerebras",
    "moonshotai": "moonshotai",
}

PRICE_COLUMNS = (
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "ts",
)


def normalize_provider(provider: str | None) -> str | None:
    """Map an OTel/OpenInference provider name to a genai-prices provider id."""
    if provider is None:
        return None
    if isinstance(provider, float) and math.isnan(provider):
        return None
    key = str(provider).strip().lower()
    if not key:
        return None
    return PROVIDER_ALIASES.get(key, key)


# -- overrides ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PriceOverride:
    """One override: USD per million tokens from ``valid_from`` (None = always)."""

    provider: str
    model: str
    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None
    valid_from: date | None = None


@dataclasses.dataclass(frozen=True)
class PriceOverrides:
    """A set of overrides, looked up by (provider, model, timestamp)."""

    entries: tuple[PriceOverride, ...] = ()

    def lookup(
        self, provider: str | None, model: str | None, ts: datetime | None
    ) -> PriceOverride | None:
        """The override in force for this call, or None."""
        if not self.entries or model is None:
            return None
        prov = normalize_provider(provider)
        mod = str(model).lower()
        best: PriceOverride | None = None
        for e in self.entries:
            if e.model.lower() != mod or (e.provider != "*" and e.provider != prov):
                continue
            if e.valid_from is not None and ts is not None and ts.date() < e.valid_from:
                continue
            if e.valid_from is not None and ts is None:
                continue
            if best is None or (e.valid_from or date.min) >= (best.valid_from or date.min):
                best = e
        return best

    def change_dates(self, provider: str | None, model: str | None) -> list[date]:
        """Dates on which an override for this model starts."""
        prov = normalize_provider(provider)
        mod = str(model).lower()
        return sorted(
            {
                e.valid_from
                for e in self.entries
                if e.valid_from is not None and e.model.lower() == mod and e.provider in ("*", prov)
            }
        )


def _num(entry: Mapping[str, Any], key: str, where: str, required: bool) -> float | None:
    val = entry.get(key)
    if val is None:
        if required:
            raise PricingError(f"{where}: missing '{key}' (USD per million tokens)")
        return None
    try:
        out = float(val)
    except (TypeError, ValueError):
        raise PricingError(f"{where}: '{key}' must be a number, got {val!r}") from None
    if out < 0 or math.isnan(out):
        raise PricingError(f"{where}: '{key}' must be >= 0, got {val!r}")
    return out


def load_overrides(path: str | Path | None) -> PriceOverrides:
    """Read a YAML price-override file (``None`` -> no overrides).

    Format: a top-level ``prices:`` list (or a bare list) of mappings with ``provider``,
    ``model``, ``input``, ``output`` and optional ``cache_read``, ``cache_write`` (USD per
    million tokens) and ``valid_from`` (ISO date).
    """
    if path is None:
        return PriceOverrides()
    p = Path(path).expanduser()
    if not p.exists():
        raise PricingError(f"price override file {p} does not exist")
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PricingError(f"price override file {p} is not valid YAML: {exc}") from exc
    if doc is None:
        return PriceOverrides()
    items = doc.get("prices") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise PricingError(f"{p}: expected a top-level 'prices:' list of provider/model entries")
    entries: list[PriceOverride] = []
    for i, item in enumerate(items, start=1):
        where = f"{p}: entry {i}"
        if not isinstance(item, dict):
            raise PricingError(f"{where}: expected a mapping, got {item!r}")
        model = item.get("model")
        provider = item.get("provider", "*")
        if not model:
            raise PricingError(f"{where}: missing 'model'")
        vf = item.get("valid_from")
        if vf is not None and not isinstance(vf, date):
            try:
                vf = date.fromisoformat(str(vf))
            except ValueError:
                raise PricingError(f"{where}: valid_from {vf!r} is not an ISO date") from None
        if isinstance(vf, datetime):
            vf = vf.date()
        inp = _num(item, "input", where, True)
        out = _num(item, "output", where, True)
        assert inp is not None and out is not None
        entries.append(
            PriceOverride(
                provider="*" if provider == "*" else (normalize_provider(str(provider)) or "*"),
                model=str(model),
                input=inp,
                output=out,
                cache_read=_num(item, "cache_read", where, False),
                cache_write=_num(item, "cache_write", where, False),
                valid_from=vf,
            )
        )
    return PriceOverrides(tuple(entries))


# -- genai-prices lookups ------------------------------------------------------------------

_M = 1_000_000


@dataclasses.dataclass(frozen=True)
class _Rates:
    """Linear USD-per-token rates in force for one (provider, model, period)."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    source: str
    tiered: bool = False


def _gp_calc(provider: str | None, model: str, ts: datetime | None, **usage: int) -> Any:
    from genai_prices import Usage, calc_price

    return calc_price(Usage(**usage), model, provider_id=provider, genai_request_timestamp=ts)


def _is_tiered(model_price: Any) -> bool:
    from genai_prices.types import TieredPrices

    return any(isinstance(v, TieredPrices) for v in vars(model_price).values())


def _has_time_of_day(calc: Any) -> bool:
    prices = getattr(calc.model, "prices", None)
    if not isinstance(prices, list):
        return False
    return any(
        type(getattr(c, "constraint", None)).__name__ == "TimeOfDateConstraint" for c in prices
    )


@functools.lru_cache(maxsize=65536)
def _gp_rates(
    provider: str | None, model: str, ts: datetime | None, probe: int = _M
) -> _Rates | None:
    """Per-token rates, measured with genai-prices itself on ``probe`` input tokens.

    For tiered models the tier depends on the call's input tokens, so ``probe`` must lie in
    the same tier as the calls priced with these rates (see :func:`_tier_starts`).
    """
    try:
        base = _gp_calc(provider, model, ts, input_tokens=probe)
    except LookupError:
        return None
    p_in = float(base.total_price) / probe
    p_out = (
        float(_gp_calc(provider, model, ts, input_tokens=probe, output_tokens=_M).total_price)
        - float(base.total_price)
    ) / _M
    p_cr = (
        float(
            _gp_calc(provider, model, ts, input_tokens=probe, cache_read_tokens=probe).total_price
        )
        / probe
    )
    p_cw = (
        float(
            _gp_calc(provider, model, ts, input_tokens=probe, cache_write_tokens=probe).total_price
        )
        / probe
    )
    return _Rates(p_in, p_out, p_cr, p_cw, "genai-prices", tiered=_is_tiered(base.model_price))


@functools.lru_cache(maxsize=4096)
def _tier_starts(provider: str | None, model: str, ts: datetime | None) -> tuple[int, ...]:
    """Input-token thresholds where a tiered model's prices change (empty if not tiered)."""
    from genai_prices.types import TieredPrices

    try:
        calc = _gp_calc(provider, model, ts, input_tokens=1)
    except LookupError:
        return ()
    starts: set[int] = set()
    for v in vars(calc.model_price).values():
        if isinstance(v, TieredPrices):
            starts.update(int(t.start) for t in v.tiers)
    return tuple(sorted(starts))


@functools.lru_cache(maxsize=4096)
def _time_of_day_model(provider: str | None, model: str) -> bool:
    try:
        return _has_time_of_day(_gp_calc(provider, model, None, input_tokens=1))
    except LookupError:
        return False


def _override_rates(o: PriceOverride) -> _Rates:
    cr = o.cache_read if o.cache_read is not None else o.input
    cw = o.cache_write if o.cache_write is not None else o.input
    return _Rates(o.input / _M, o.output / _M, cr / _M, cw / _M, "override")


def _rates(
    provider: str | None, model: str, ts: datetime | None, overrides: PriceOverrides | None
) -> _Rates | None:
    if overrides is not None:
        o = overrides.lookup(provider, model, ts)
        if o is not None:
            return _override_rates(o)
    return _gp_rates(provider, model, ts)


def _linear_cost(r: _Rates, inp: int, out: int, cr: int, cw: int) -> float:
    uncached = max(inp - cr - cw, 0)
    return uncached * r.input + cr * r.cache_read + cw * r.cache_write + out * r.output


def price(
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    ts: datetime | None = None,
    overrides: PriceOverrides | None = None,
) -> float | None:
    """USD cost of one call, or ``None`` when the model is unknown (never a silent 0).

    ``input_tokens`` includes cache reads and writes; ``output_tokens`` includes reasoning.
    ``ts`` (naive UTC or aware) selects the price in force at that time.
    """
    if not model:
        return None
    prov = normalize_provider(provider)
    when = _naive_utc(ts)
    inp, out = int(input_tokens or 0), int(output_tokens or 0)
    cr, cw = int(cache_read_tokens or 0), int(cache_write_tokens or 0)
    if overrides is not None:
        o = overrides.lookup(prov, model, when)
        if o is not None:
            return _linear_cost(_override_rates(o), inp, out, cr, cw)
    try:
        usage: dict[str, int] = {"input_tokens": inp, "output_tokens": out}
        if cr:
            usage["cache_read_tokens"] = cr
        if cw:
            usage["cache_write_tokens"] = cw
        return float(_gp_calc(prov, model, when, **usage).total_price)
    except LookupError:
        return None
    except ValueError:
        # genai-prices rejects inconsistent usage (e.g. cache reads above input tokens)
        r = _gp_rates(prov, model, when)
        return None if r is None else _linear_cost(r, inp, out, cr, cw)


def _naive_utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    if isinstance(ts, pd.Timestamp):
        if pd.isna(ts):
            return None
        ts = ts.to_pydatetime()
    if ts.tzinfo is not None:
        from datetime import UTC

        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts


def _vector_cost(
    r: _Rates, inp: np.ndarray, out: np.ndarray, cr: np.ndarray, cw: np.ndarray
) -> np.ndarray:
    uncached = np.maximum(inp - cr - cw, 0)
    return uncached * r.input + cr * r.cache_read + cw * r.cache_write + out * r.output


def price_frame(calls: pd.DataFrame, overrides: PriceOverrides | None = None) -> pd.DataFrame:
    """Return a copy of ``calls`` (llm_calls column names) with ``cost_usd`` and ``price_source``.

    Vectorised: prices are resolved once per (provider, model, price period) where the period
    is the UTC day (or the half hour for models with time-of-day prices, and override change
    dates fall on day boundaries); tiered models are priced per tier of input tokens.
    """
    out = calls.copy()
    n = len(out)
    cost = np.full(n, np.nan)
    source = np.full(n, None, dtype=object)
    if n == 0:
        out["cost_usd"] = pd.Series(cost, index=out.index, dtype="float64")
        out["price_source"] = pd.Series(source, index=out.index, dtype="object")
        return out

    def col(name: str) -> np.ndarray:
        if name not in out.columns:
            return np.zeros(n, dtype="float64")
        return pd.to_numeric(out[name], errors="coerce").fillna(0).to_numpy(dtype="float64")

    inp, outp = col("input_tokens"), col("output_tokens")
    cr, cw = col("cache_read_tokens"), col("cache_write_tokens")
    provider = (
        out["provider"].map(normalize_provider)
        if "provider" in out.columns
        else pd.Series([None] * n, index=out.index)
    )
    model = out["model"] if "model" in out.columns else pd.Series([None] * n, index=out.index)
    ts = (
        pd.to_datetime(out["ts"], errors="coerce")
        if "ts" in out.columns
        else pd.Series(pd.NaT, index=out.index)
    )
    day = ts.dt.floor("D")
    key = pd.DataFrame(
        {
            "p": provider.astype("object").to_numpy(),
            "m": model.astype("object").to_numpy(),
            "d": day.to_numpy(),
        }
    )
    positions = np.arange(n)
    groups: dict[Any, Any] = key.groupby(["p", "m", "d"], dropna=False, sort=False).indices
    for keys, idx in groups.items():
        p, m, d = keys
        if m is None or (isinstance(m, float) and math.isnan(m)) or m == "":
            continue
        prov = None if p is None or (isinstance(p, float) and math.isnan(p)) else str(p)
        mod = str(m)
        rows = positions[idx]
        sub_ts = ts.iloc[rows]
        # split a day by half-hour only for models with time-of-day prices
        if _time_of_day_model(prov, mod) and not pd.isna(d):
            periods = sub_ts.dt.floor("30min")
        else:
            periods = pd.Series([d] * len(rows), index=sub_ts.index)
        sub_groups: dict[Any, Any] = (
            pd.Series(np.arange(len(rows))).groupby(periods.to_numpy(), dropna=False).indices
        )
        for per, sub_idx in sub_groups.items():
            r_rows = rows[sub_idx]
            when = None if pd.isna(per) else pd.Timestamp(per).to_pydatetime()
            if when is not None and not _time_of_day_model(prov, mod):
                when = when + timedelta(hours=12)
            rates = _rates(prov, mod, when, overrides)
            if rates is None:
                continue
            if rates.tiered and rates.source == "genai-prices":
                starts = np.asarray(_tier_starts(prov, mod, when), dtype="float64")
                # genai-prices picks a tier when total input tokens > tier start
                bucket = np.searchsorted(starts, inp[r_rows], side="left")
                for k in np.unique(bucket):
                    probe = 1 if k == 0 else int(starts[k - 1]) + 1
                    kr = _gp_rates(prov, mod, when, probe)
                    if kr is None:
                        continue
                    sel = r_rows[bucket == k]
                    cost[sel] = _vector_cost(kr, inp[sel], outp[sel], cr[sel], cw[sel])
            else:
                cost[r_rows] = _vector_cost(
                    rates, inp[r_rows], outp[r_rows], cr[r_rows], cw[r_rows]
                )
            source[r_rows] = rates.source
    out["cost_usd"] = pd.Series(cost, index=out.index, dtype="float64")
    out["price_source"] = pd.Series(source, index=out.index, dtype="object")
    out.loc[out["cost_usd"].isna(), "price_source"] = None
    return out


def unpriced_models(calls: pd.DataFrame) -> pd.DataFrame:
    """Provider/model pairs whose calls have no cost: ``provider, model, calls, first_ts, last_ts``.

    Takes llm_calls rows (with ``cost_usd``); rows without a ``cost_usd`` column are priced first.
    """
    frame = calls if "cost_usd" in calls.columns else price_frame(calls)
    cols = ["provider", "model", "calls", "input_tokens", "output_tokens", "first_ts", "last_ts"]
    if frame.empty:
        return pd.DataFrame(columns=cols)
    miss = frame[frame["cost_usd"].isna()].copy()
    if miss.empty:
        return pd.DataFrame(columns=cols)
    for c in ("provider", "model"):
        miss[c] = (
            miss[c].astype("object").where(miss[c].notna(), "(none)") if c in miss else "(none)"
        )
    if "ts" not in miss:
        miss["ts"] = pd.NaT
    for c in ("input_tokens", "output_tokens"):
        if c not in miss:
            miss[c] = 0
    res = (
        miss.groupby(["provider", "model"], dropna=False)
        .agg(
            calls=("model", "size"),
            input_tokens=("input_tokens", "sum"),
            output_tokens=("output_tokens", "sum"),
            first_ts=("ts", "min"),
            last_ts=("ts", "max"),
        )
        .reset_index()
        .sort_values("calls", ascending=False, kind="stable")
        .reset_index(drop=True)
    )
    return res[cols]
