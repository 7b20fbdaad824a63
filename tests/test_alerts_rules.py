"""Alert rules: parsing, defaults and validation errors that name file, rule and field."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lumina_analytics.alerts.rules import (
    DEFAULT_RULES_PATH,
    AlertRuleError,
    BurnRateRule,
    ThresholdRule,
    load_rules,
    parse_duration,
    parse_rules,
)

GOOD = """
route: {group_by: [alertname, provider], repeat_interval: 2h}
sinks:
  - {type: jsonl, path: out.jsonl}
  - {type: webhook, url_env: MY_HOOK}
rules:
  - name: err_high
    kind: threshold
    metric: error_rate
    by: provider
    filters: {region: eu-west-1}
    window: 15m
    for: 10m
    value: 0.05
    severity: page
    labels: {team: gw}
    runbook: https://runbooks.example/err
  - name: slo
    kind: burn_rate
    objective: 0.999
    runbook: https://runbooks.example/slo
"""


def test_parse_good_file(tmp_path: Path) -> None:
    p = tmp_path / "rules.yaml"
    p.write_text(GOOD)
    rs = load_rules(p)
    assert rs.source == str(p)
    thr = rs.get("err_high")
    assert isinstance(thr, ThresholdRule)
    assert thr.by == ["provider"] and thr.filters == {"region": ["eu-west-1"]}
    assert thr.for_ == pd.Timedelta(minutes=10) and thr.window == pd.Timedelta(minutes=15)
    slo = rs.get("slo")
    assert isinstance(slo, BurnRateRule)
    # the SRE workbook's windows are the default
    got = [(w.long, w.short, w.factor, w.severity) for w in slo.windows]
    assert got[0] == (pd.Timedelta("1h"), pd.Timedelta("5min"), 14.4, "page")
    assert got[1] == (pd.Timedelta("6h"), pd.Timedelta("30min"), 6.0, "page")
    assert got[2] == (pd.Timedelta("24h"), pd.Timedelta("2h"), 3.0, "ticket")
    assert rs.route.group_by == ["alertname", "provider"]
    assert rs.route.repeat_interval == pd.Timedelta(hours=2)
    assert [s.type for s in rs.sinks] == ["jsonl", "webhook"]


def test_default_rules_file_is_valid() -> None:
    rs = load_rules(DEFAULT_RULES_PATH)
    kinds = {r.kind for r in rs.rules}
    assert kinds == {"threshold", "rate_of_change", "burn_rate", "anomaly", "forecast_breach"}
    assert all(r.runbook.startswith("https://") for r in rs.rules)


def test_env_var_selects_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "r.yaml"
    p.write_text(GOOD)
    monkeypatch.setenv("LUMINA_ALERT_RULES", str(p))
    assert load_rules().source == str(p)


@pytest.mark.parametrize(
    ("rule", "needles"),
    [
        (
            {"name": "a", "kind": "threshold", "metric": "x", "runbook": "r"},
            ["rule 'a'", "'value'", "Field required"],
        ),
        (
            {
                "name": "b",
                "kind": "threshold",
                "metric": "x",
                "value": 1,
                "runbook": "r",
                "for": "5 parsecs",
            },
            ["rule 'b'", "'for'", "not a duration"],
        ),
        ({"name": "c", "kind": "threshold", "metric": "x", "value": 1}, ["rule 'c'", "'runbook'"]),
        (
            {
                "name": "d",
                "kind": "threshold",
                "metric": "x",
                "value": 1,
                "runbook": "r",
                "severity": "huge",
            },
            ["rule 'd'", "'severity'", "page"],
        ),
        (
            {"name": "e", "kind": "burn_rate", "objective": 1.5, "runbook": "r"},
            ["rule 'e'", "'objective'"],
        ),
        (
            {
                "name": "f",
                "kind": "burn_rate",
                "objective": 0.99,
                "sli": "latency_ratio",
                "runbook": "r",
            },
            ["rule 'f'", "latency_threshold_ms"],
        ),
        (
            {
                "name": "g",
                "kind": "burn_rate",
                "objective": 0.99,
                "runbook": "r",
                "windows": [{"long": "5m", "short": "1h", "factor": 2}],
            },
            ["rule 'g'", "'windows.0'", "shorter"],
        ),
        (
            {
                "name": "h",
                "kind": "threshold",
                "metric": "x",
                "value": 1,
                "runbook": "r",
                "freq": "5m",
                "window": "7m",
            },
            ["rule 'h'", "multiple of freq"],
        ),
        ({"name": "i", "kind": "sometimes", "runbook": "r"}, ["rule 'i'", "'kind'", "threshold"]),
        (
            {
                "name": "j",
                "kind": "threshold",
                "metric": "x",
                "value": 1,
                "runbook": "r",
                "treshold": 3,
            },
            ["rule 'j'", "'treshold'", "Extra inputs"],
        ),
        ({"kind": "threshold", "metric": "x", "value": 1, "runbook": "r"}, ["rules[0]", "'name'"]),
        (
            {"name": "k", "kind": "forecast_breach", "metric": "cost_usd", "runbook": "r"},
            ["rule 'k'", "needs value"],
        ),
    ],
)
def test_validation_errors_name_file_rule_and_field(
    tmp_path: Path, rule: dict[str, object], needles: list[str]
) -> None:
    import yaml

    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump({"rules": [rule]}))
    with pytest.raises(AlertRuleError) as info:
        load_rules(p)
    msg = str(info.value)
    assert str(p) in msg
    for needle in needles:
        assert needle in msg, msg


def test_duplicate_names_and_top_level_errors(tmp_path: Path) -> None:
    r = {"name": "a", "kind": "threshold", "metric": "x", "value": 1, "runbook": "r"}
    with pytest.raises(AlertRuleError, match="duplicate rule name"):
        parse_rules({"rules": [r, r]}, "f.yaml")
    with pytest.raises(AlertRuleError, match="unknown top-level key"):
        parse_rules({"rules": [r], "rulez": []}, "f.yaml")
    with pytest.raises(AlertRuleError, match="non-empty list"):
        parse_rules({"rules": []}, "f.yaml")
    with pytest.raises(AlertRuleError, match=r"'route\.group_by'"):
        parse_rules({"rules": [r], "route": {"group_by": "alertname"}}, "f.yaml")
    bad_yaml = tmp_path / "broken.yaml"
    bad_yaml.write_text("rules: [\n")
    with pytest.raises(AlertRuleError, match="not valid YAML"):
        load_rules(bad_yaml)
    with pytest.raises(AlertRuleError, match="cannot read"):
        load_rules(tmp_path / "missing.yaml")


def test_parse_duration() -> None:
    assert parse_duration("90s") == pd.Timedelta(seconds=90)
    assert parse_duration("5m") == pd.Timedelta(minutes=5)
    assert parse_duration("5min") == pd.Timedelta(minutes=5)
    assert parse_duration("1.5h") == pd.Timedelta(minutes=90)
    assert parse_duration("1w") == pd.Timedelta(days=7)
    assert parse_duration(0) == pd.Timedelta(0)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("5 months")
