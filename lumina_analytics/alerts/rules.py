"""Alert rules read from YAML and validated with pydantic.

A rules file has three top-level keys::

    route:   {group_by: [alertname, service], repeat_interval: 4h}
    sinks:   [{type: webhook, url_env: LUMINA_ALERT_WEBHOOK_URL}, {type: jsonl, path: ...}]
    rules:   [{name, kind, metric, ...}, ...]

``kind`` is one of ``threshold``, ``rate_of_change``, ``burn_rate``, ``anomaly`` and
``forecast_breach``. Every rule carries ``severity``, ``labels``, ``summary`` and a ``runbook``
link. Durations are strings such as ``30s``, ``5m``, ``1h``, ``1d``, ``1w``. A bad file raises
:class:`AlertRuleError` naming the file, the rule and the field.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from lumina_analytics.config import project_root
from lumina_analytics.errors import ConfigError

__all__ = [
    "DEFAULT_RULES_PATH",
    "AlertRuleError",
    "AnomalyRule",
    "BurnRateRule",
    "BurnWindow",
    "ForecastBreachRule",
    "JsonlSinkSpec",
    "RateOfChangeRule",
    "Route",
    "Rule",
    "RuleSet",
    "ThresholdRule",
    "WebhookSinkSpec",
    "load_rules",
    "parse_duration",
    "parse_rules",
]

#: Rules used when neither ``--rules`` nor ``LUMINA_ALERT_RULES`` is given.
DEFAULT_RULES_PATH = Path(__file__).resolve().parent.parent / "defaults" / "alerts.yaml"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d|w)\s*$")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:\-]*$")
SEVERITIES = ("page", "critical", "ticket", "warning", "info")


class AlertRuleError(ConfigError):
    """A rules file is malformed; the message names the file, the rule and the field."""


def parse_duration(value: Any) -> pd.Timedelta:
    """``"5m"``, ``"1h"``, ``"1d"`` ... as a Timedelta (``0`` means no duration)."""
    if isinstance(value, pd.Timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
        return pd.Timedelta(0)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            seconds = float(m.group(1)) * _SECONDS[m.group(2)]
            return pd.Timedelta(seconds=seconds)
    raise ValueError(f"{value!r} is not a duration; write e.g. 30s, 5m, 1h, 1d or 1w")


def format_duration(td: pd.Timedelta) -> str:
    """The shortest ``1h``/``30m``/``45s`` spelling of a Timedelta."""
    secs = int(td.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if secs and secs % size == 0:
            return f"{secs // size}{unit}"
    return f"{secs}s"


Duration = Annotated[pd.Timedelta, BeforeValidator(parse_duration)]
Op = Literal[">", ">=", "<", "<="]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, populate_by_name=True)


class RootCauseSpec(_Model):
    """How to explain a firing alert by dimensions of ``llm_calls``."""

    measure: str | None = None  # errors|requests|slow|slow_ttft|cost_usd|tokens; None: from metric
    baseline: Duration = pd.Timedelta(hours=24)  # baseline window before the alert window
    slow_quantile: float = Field(default=0.95, gt=0, lt=1)  # slow*: above this baseline quantile
    dimensions: list[str] | None = None  # default: every dimension present
    enabled: bool = True


class _RuleBase(_Model):
    name: str
    metric: str
    by: list[str] = Field(default_factory=list)
    filters: dict[str, list[str]] = Field(default_factory=dict)
    freq: Duration = pd.Timedelta(minutes=5)
    for_: Duration = Field(default=pd.Timedelta(0), alias="for")
    keep_firing_for: Duration = pd.Timedelta(0)  # stay firing this long after it stops holding
    severity: str = "ticket"
    labels: dict[str, str] = Field(default_factory=dict)
    summary: str | None = None
    runbook: str
    rootcause: RootCauseSpec = Field(default_factory=RootCauseSpec)
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("must start with a letter or _ and use only letters, digits, _ . : -")
        return v

    @field_validator("severity")
    @classmethod
    def _severity_ok(cls, v: str) -> str:
        if v not in SEVERITIES:
            raise ValueError(f"must be one of {list(SEVERITIES)}")
        return v

    @field_validator("runbook")
    @classmethod
    def _runbook_ok(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("give a runbook link (https://... or a docs path)")
        return v

    @field_validator("filters", mode="before")
    @classmethod
    def _filters_listify(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: [x] if isinstance(x, str) else x for k, x in v.items()}
        return v

    @field_validator("by", mode="before")
    @classmethod
    def _by_listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("freq")
    @classmethod
    def _freq_positive(cls, v: pd.Timedelta) -> pd.Timedelta:
        if v <= pd.Timedelta(0):
            raise ValueError("must be positive")
        return v

    def lookback(self) -> pd.Timedelta:
        """How much data before the evaluation time the rule reads."""
        return self.freq


def _check_multiple(window: pd.Timedelta, freq: pd.Timedelta, what: str) -> None:
    if window <= pd.Timedelta(0) or window % freq != pd.Timedelta(0):
        raise ValueError(f"{what} ({window}) must be a positive multiple of freq ({freq})")


class ThresholdRule(_RuleBase):
    """Fire when the aggregate of ``metric`` over ``window`` crosses ``value`` for ``for``.

    ``error_rate`` over a window is always errors / requests of the window (call-weighted).
    """

    kind: Literal["threshold"]
    window: Duration | None = None  # default: one bucket of freq
    agg: Literal["mean", "sum", "max", "min", "last"] = "mean"
    op: Op = ">"
    value: float
    min_requests: int = 0  # skip series with fewer calls than this in the window

    @model_validator(mode="after")
    def _window_ok(self) -> ThresholdRule:
        if self.window is None:
            self.window = self.freq
        _check_multiple(self.window, self.freq, "window")
        return self

    def lookback(self) -> pd.Timedelta:
        assert self.window is not None
        return self.window


class RateOfChangeRule(_RuleBase):
    """Fire when ``window`` differs from the window ``offset`` earlier by more than ``value``.

    With ``periods`` > 1 the baseline is the median of the same window ``offset``,
    ``2 * offset``, ... ``periods * offset`` earlier (e.g. offset 1d, periods 7: the same hours
    on each of the last seven days), robust to one unusual day.
    """

    kind: Literal["rate_of_change"]
    window: Duration = pd.Timedelta(hours=1)
    offset: Duration | None = None  # default: the window just before (offset = window)
    periods: int = Field(default=1, ge=1, le=60)
    agg: Literal["mean", "sum", "max", "min", "last"] = "sum"
    change: Literal["pct", "abs"] = "pct"  # pct: (cur - base) / |base| * 100
    op: Op = ">"
    value: float
    min_baseline: float = 0.0  # skip series whose baseline magnitude is at most this
    min_requests: int = 0  # skip series with fewer calls than this in the current window

    @model_validator(mode="after")
    def _windows_ok(self) -> RateOfChangeRule:
        if self.offset is None:
            self.offset = self.window
        _check_multiple(self.window, self.freq, "window")
        _check_multiple(self.offset, self.freq, "offset")
        return self

    def lookback(self) -> pd.Timedelta:
        assert self.offset is not None
        return self.window + self.offset * self.periods


class BurnWindow(_Model):
    """One multi-window condition: both windows must burn faster than ``factor``."""

    long: Duration
    short: Duration
    factor: float = Field(gt=0)
    severity: str = "page"

    @model_validator(mode="after")
    def _ok(self) -> BurnWindow:
        if self.short >= self.long:
            raise ValueError(f"short window {self.short} must be shorter than long {self.long}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {list(SEVERITIES)}")
        return self


def _sre_windows() -> list[BurnWindow]:
    """The Google SRE workbook's multi-window, multi-burn-rate set (for a 30-day SLO)."""
    h = pd.Timedelta(hours=1)
    m = pd.Timedelta(minutes=1)
    return [
        BurnWindow(long=h, short=5 * m, factor=14.4, severity="page"),
        BurnWindow(long=6 * h, short=30 * m, factor=6.0, severity="page"),
        BurnWindow(long=24 * h, short=2 * h, factor=3.0, severity="ticket"),
        BurnWindow(long=72 * h, short=6 * h, factor=1.0, severity="ticket"),
    ]


class BurnRateRule(_RuleBase):
    """SLO burn rate on an error ratio or a latency ratio (share of calls slower than X ms).

    burn rate = (bad / total over a window) / (1 - objective). One alert per severity: it is
    active when any of that severity's window pairs has both windows above its factor.
    """

    kind: Literal["burn_rate"]
    metric: str = "error_ratio"
    sli: Literal["error_ratio", "latency_ratio"] = "error_ratio"
    objective: float = Field(gt=0, lt=1)  # e.g. 0.999
    latency_threshold_ms: float | None = Field(default=None, gt=0)
    windows: list[BurnWindow] = Field(default_factory=_sre_windows, min_length=1)
    min_requests: int = 1  # a long window needs at least this many calls to count

    @model_validator(mode="after")
    def _ok(self) -> BurnRateRule:
        if self.sli == "latency_ratio" and self.latency_threshold_ms is None:
            raise ValueError("sli latency_ratio needs latency_threshold_ms")
        if self.sli == "latency_ratio" and self.metric == "error_ratio":
            self.metric = "latency_ratio"
        for w in self.windows:
            _check_multiple(w.short, self.freq, "short window")
            _check_multiple(w.long, self.freq, "long window")
        return self

    def lookback(self) -> pd.Timedelta:
        return max(w.long for w in self.windows)


class AnomalyRule(_RuleBase):
    """Fire when the causal detector flags the latest complete bucket of a series."""

    kind: Literal["anomaly"]
    freq: Duration = pd.Timedelta(hours=1)
    detector: str = "ensemble"
    sensitivity: float | None = None
    lookback_: Duration = Field(default=pd.Timedelta(days=7), alias="lookback")
    min_score: float | None = None  # also require score >= this

    def lookback(self) -> pd.Timedelta:
        return self.lookback_


class ForecastBreachRule(_RuleBase):
    """Compare with the latest forecast (``forecasts`` table, latest cutoff not after now).

    ``mode: threshold``: fire if the forecast ``field`` crosses ``value`` within ``horizon``
    (a predicted budget or capacity breach). ``mode: interval``: fire if the latest actual
    bucket falls outside ``[yhat_lower, yhat_upper]`` in ``direction``.
    """

    kind: Literal["forecast_breach"]
    mode: Literal["threshold", "interval"] = "threshold"
    horizon: Duration = pd.Timedelta(days=1)
    field: Literal["yhat", "yhat_lower", "yhat_upper"] = "yhat"
    op: Op = ">"
    value: float | None = None
    model: str | None = None  # forecast model name; default: any (latest cutoff wins)
    direction: Literal["above", "below", "both"] = "above"
    freq: Duration = pd.Timedelta(hours=1)

    @model_validator(mode="after")
    def _ok(self) -> ForecastBreachRule:
        if self.mode == "threshold" and self.value is None:
            raise ValueError("mode threshold needs value")
        return self


Rule = Annotated[
    ThresholdRule | RateOfChangeRule | BurnRateRule | AnomalyRule | ForecastBreachRule,
    Field(discriminator="kind"),
]
_RULE_ADAPTER: TypeAdapter[Any] = TypeAdapter(Rule)
KINDS = ("threshold", "rate_of_change", "burn_rate", "anomaly", "forecast_breach")


class Route(_Model):
    """Alertmanager-style grouping: one notification per group per evaluation."""

    group_by: list[str] = Field(default_factory=lambda: ["alertname"])
    repeat_interval: Duration = pd.Timedelta(hours=4)  # re-notify still-firing groups


class WebhookSinkSpec(_Model):
    """POST a Slack-compatible body to the URL held in environment variable ``url_env``."""

    type: Literal["webhook"]
    name: str = "webhook"
    url_env: str = "LUMINA_ALERT_WEBHOOK_URL"
    timeout_s: float = Field(default=5.0, gt=0)
    max_retries: int = Field(default=3, ge=0)
    backoff_s: float = Field(default=0.5, ge=0)


class JsonlSinkSpec(_Model):
    """Append one JSON object per notification to ``path`` (relative to the reports dir)."""

    type: Literal["jsonl"]
    name: str = "jsonl"
    path: str = "alerts/notifications.jsonl"


SinkSpec = Annotated[WebhookSinkSpec | JsonlSinkSpec, Field(discriminator="type")]


class RuleSet(_Model):
    """A validated rules file."""

    rules: list[Rule]
    route: Route = Field(default_factory=Route)
    sinks: list[SinkSpec] = Field(default_factory=list)
    source: str = "<memory>"

    def get(self, name: str) -> Any:
        """The rule called ``name``."""
        for r in self.rules:
            if r.name == name:
                return r
        raise KeyError(name)

    def enabled(self) -> list[Any]:
        """Rules with ``enabled: true``."""
        return [r for r in self.rules if r.enabled]


def _loc(loc: tuple[int | str, ...], skip_kind: str | None) -> str:
    parts = [str(p) for p in loc if p != skip_kind]
    return ".".join(parts).replace("for_", "for").replace("lookback_", "lookback") or "(rule)"


def _format(exc: ValidationError, prefix: str, skip_kind: str | None = None) -> str:
    msgs = []
    for err in exc.errors():
        field = _loc(tuple(err["loc"]), skip_kind)
        msg = str(err["msg"]).removeprefix("Value error, ")
        msgs.append(f"{prefix} field {field!r}: {msg}")
    return "; ".join(msgs)


def parse_rules(data: Any, source: str = "<memory>") -> RuleSet:
    """Validate an already-parsed rules document (a dict with ``rules``)."""
    if not isinstance(data, dict):
        raise AlertRuleError(f"{source}: expected a mapping with a 'rules' list at the top")
    unknown = set(data) - {"rules", "route", "sinks"}
    if unknown:
        raise AlertRuleError(
            f"{source}: unknown top-level key(s) {sorted(unknown)}; use rules, route, sinks"
        )
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise AlertRuleError(f"{source}: 'rules' must be a non-empty list of rules")
    rules: list[Any] = []
    problems: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_rules):
        name = raw.get("name") if isinstance(raw, dict) else None
        label = f"rule {name!r} (rules[{i}])" if name else f"rules[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{source}: {label}: expected a mapping")
            continue
        kind = raw.get("kind")
        if kind not in KINDS:
            problems.append(f"{source}: {label} field 'kind': {kind!r} is not one of {list(KINDS)}")
            continue
        try:
            rule = _RULE_ADAPTER.validate_python(raw)
        except ValidationError as exc:
            problems.append(_format(exc, f"{source}: {label}", skip_kind=str(kind)))
            continue
        if rule.name in seen:
            problems.append(f"{source}: {label} field 'name': duplicate rule name")
        seen.add(rule.name)
        rules.append(rule)
    extra: dict[str, Any] = {}
    for key in ("route", "sinks"):
        if key in data and data[key] is not None:
            extra[key] = data[key]
    try:
        head = RuleSet.model_validate({"rules": [], **extra})
    except ValidationError as exc:
        problems.append(_format(exc, f"{source}:"))
        head = RuleSet(rules=[])
    if problems:
        raise AlertRuleError("invalid alert rules: " + "; ".join(problems))
    return RuleSet(rules=rules, route=head.route, sinks=head.sinks, source=source)


def resolve_rules_path(path: str | os.PathLike[str] | None = None) -> Path:
    """``path``, else ``$LUMINA_ALERT_RULES``, else the packaged default rules."""
    raw = str(path) if path else os.environ.get("LUMINA_ALERT_RULES")
    if not raw:
        return DEFAULT_RULES_PATH
    p = Path(raw).expanduser()
    return p if p.is_absolute() else (Path.cwd() / p if path else project_root() / p)


def load_rules(path: str | os.PathLike[str] | None = None) -> RuleSet:
    """Read and validate a rules YAML file (see :func:`resolve_rules_path` for the default)."""
    p = resolve_rules_path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise AlertRuleError(f"cannot read alert rules {p}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AlertRuleError(f"{p}: not valid YAML: {exc}") from exc
    return parse_rules(data, source=str(p))
