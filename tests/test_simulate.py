"""The telemetry simulator: determinism, OTLP shape, GenAI semconv, incidents, effects, CLI."""

from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter, defaultdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lumina_analytics.schema import DEPLOYMENTS, EVENTS, INCIDENTS
from lumina_analytics.simulate import INCIDENT_KINDS, SimulationResult, simulate
from lumina_analytics.simulate import incidents as inc
from lumina_analytics.simulate.model import MODELS

START = date(2026, 10, 5)  # a Monday, so the short run's incidents fall on weekdays
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    out = tmp_path_factory.mktemp("sim") / "a"
    # LUMINA_SIM_TEST_SEED re-runs the incident checks on another world.
    seed = int(os.environ.get("LUMINA_SIM_TEST_SEED", "3"))
    return simulate(days=3, scale=0.3, seed=seed, out=out, start=START)


def _value(v: dict[str, Any]) -> Any:
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "boolValue" in v:
        return bool(v["boolValue"])
    raise AssertionError(f"unexpected attribute value {v}")


def _attrs(kvs: list[dict[str, Any]]) -> dict[str, Any]:
    return {kv["key"]: _value(kv["value"]) for kv in kvs}


@pytest.fixture(scope="module")
def spans(sim: SimulationResult) -> pd.DataFrame:
    rows = []
    for path in sim.paths["traces"]:
        for line in path.read_text().splitlines():
            doc = json.loads(line)
            for rs in doc["resourceSpans"]:
                res = _attrs(rs["resource"]["attributes"])
                for ss in rs["scopeSpans"]:
                    for s in ss["spans"]:
                        rows.append(
                            {
                                "trace_id": s["traceId"],
                                "span_id": s["spanId"],
                                "parent": s.get("parentSpanId"),
                                "name": s["name"],
                                "kind": s["kind"],
                                "start": int(s["startTimeUnixNano"]),
                                "end": int(s["endTimeUnixNano"]),
                                "status": s.get("status", {}).get("code", 0),
                                "service": res["service.name"],
                                "version": res["service.version"],
                                "region": res["cloud.region"],
                                "attrs": _attrs(s["attributes"]),
                            }
                        )
    frame = pd.DataFrame(rows)
    frame["ts"] = pd.to_datetime(frame["start"], unit="ns")
    return frame


@pytest.fixture(scope="module")
def llm(spans: pd.DataFrame) -> pd.DataFrame:
    s = spans[spans["name"].str.startswith("chat ")].copy()
    a = s["attrs"]
    s["provider"] = [x.get("gen_ai.provider.name", x.get("gen_ai.system")) for x in a]
    s["model"] = [x["gen_ai.request.model"] for x in a]
    s["error_type"] = [x.get("error.type") for x in a]
    s["input"] = [
        x.get("gen_ai.usage.input_tokens", x.get("gen_ai.usage.prompt_tokens")) for x in a
    ]
    s["output"] = [
        x.get("gen_ai.usage.output_tokens", x.get("gen_ai.usage.completion_tokens")) for x in a
    ]
    s["cache_read"] = [x.get("gen_ai.usage.cache_read.input_tokens", 0) for x in a]
    s["cache_write"] = [x.get("gen_ai.usage.cache_creation.input_tokens", 0) for x in a]
    s["reasoning"] = [x.get("gen_ai.usage.reasoning.output_tokens", 0) for x in a]
    s["tenant"] = [x["lumina.tenant.id"] for x in a]
    s["agent"] = [x["gen_ai.agent.name"] for x in a]
    s["latency_ms"] = (s["end"] - s["start"]) / 1e6
    return s


def _window(sim: SimulationResult, kind: str) -> tuple[pd.Timestamp, pd.Timestamp, Any]:
    row = sim.incidents[sim.incidents["kind"] == kind].iloc[0]
    return row["start_ts"], row["end_ts"], row


# -- determinism -----------------------------------------------------------------------------


def _file_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path: Path) -> None:
    a = simulate(days=2, scale=0.05, seed=3, out=tmp_path / "a", start=START)
    b = simulate(days=2, scale=0.05, seed=3, out=tmp_path / "b", start=START)
    c = simulate(days=2, scale=0.05, seed=4, out=tmp_path / "c", start=START)
    fa, fb, fc = _file_bytes(a.out_dir), _file_bytes(b.out_dir), _file_bytes(c.out_dir)
    assert fa.keys() == fb.keys() == fc.keys()
    assert fa == fb
    assert fa["traces/traces-2026-10-05.otlp.jsonl"] != fc["traces/traces-2026-10-05.otlp.jsonl"]
    assert fa["events.csv"] != fc["events.csv"]


def test_gzip_output_is_deterministic_and_readable(tmp_path: Path) -> None:
    import gzip

    a = simulate(days=1, scale=0.05, seed=3, out=tmp_path / "a", start=START, gzip=True)
    b = simulate(days=1, scale=0.05, seed=3, out=tmp_path / "b", start=START, gzip=True)
    assert _file_bytes(a.out_dir) == _file_bytes(b.out_dir)
    path = a.paths["traces"][0]
    assert path.name.endswith(".otlp.jsonl.gz")
    first = gzip.decompress(path.read_bytes()).splitlines()[0]
    assert "resourceSpans" in json.loads(first)


def test_default_start_is_fixed(tmp_path: Path) -> None:
    r = simulate(days=1, scale=0.02, seed=1, out=tmp_path / "d")
    assert r.start == date(2026, 10, 1)
    assert (tmp_path / "d" / "traces" / "traces-2026-10-01.otlp.jsonl").exists()


# -- layout and OTLP shape -------------------------------------------------------------------


def test_layout_and_manifest(sim: SimulationResult) -> None:
    out = sim.out_dir
    for name in ("events.csv", "deployments.csv", "incidents.csv", "effects.json", "manifest.json"):
        assert (out / name).is_file(), name
    assert len(sim.paths["traces"]) == 3
    assert len(list((out / "metrics").glob("*.otlp.jsonl"))) == 3
    assert len(list((out / "metrics").glob("*.prom"))) == 3
    assert len(list((out / "logs").glob("*.otlp.jsonl"))) == 3
    manifest = json.loads((out / "manifest.json").read_text())
    listed = {f["path"] for f in manifest["files"]}
    assert "traces/traces-2026-10-05.otlp.jsonl" in listed
    assert manifest["counts"]["llm_calls"] == sim.counts["llm_calls"]


def test_trace_lines_are_otlp(sim: SimulationResult, spans: pd.DataFrame) -> None:
    sizes = []
    for path in sim.paths["traces"]:
        for line in path.read_text().splitlines():
            doc = json.loads(line)
            n = sum(len(ss["spans"]) for rs in doc["resourceSpans"] for ss in rs["scopeSpans"])
            sizes.append(n)
    assert max(sizes) <= 1500
    assert all(HEX32.match(t) for t in spans["trace_id"])
    assert all(HEX16.match(s) for s in spans["span_id"])
    assert spans.duplicated(["trace_id", "span_id"]).sum() == 0
    assert (spans["end"] >= spans["start"]).all()
    assert set(spans["kind"]) <= {1, 2, 3}
    # every parent exists in its trace; one root per trace
    ids = set(zip(spans["trace_id"], spans["span_id"], strict=True))
    with_parent = spans[spans["parent"].notna()]
    assert all(
        (t, p) in ids for t, p in zip(with_parent["trace_id"], with_parent["parent"], strict=True)
    )
    roots = spans[spans["parent"].isna()]
    assert roots["trace_id"].is_unique and set(roots["trace_id"]) == set(spans["trace_id"])
    assert set(roots["service"]) == {"gateway"}
    # children lie inside their parent
    m = with_parent.merge(
        spans[["trace_id", "span_id", "start", "end"]],
        left_on=["trace_id", "parent"],
        right_on=["trace_id", "span_id"],
        suffixes=("", "_p"),
    )
    assert (m["start"] >= m["start_p"]).all() and (m["end"] <= m["end_p"]).all()
    assert {
        "gateway",
        "agent-runtime",
        "planner",
        "retriever",
        "tool-executor",
        "llm-proxy",
    } <= set(spans["service"])


def test_metric_and_log_lines_are_otlp(sim: SimulationResult) -> None:
    names = Counter()
    for path in sim.paths["metrics"]:
        for line in path.read_text().splitlines():
            for rm in json.loads(line)["resourceMetrics"]:
                res = _attrs(rm["resource"]["attributes"])
                assert {"service.name", "cloud.region", "service.instance.id"} <= res.keys()
                for sm in rm["scopeMetrics"]:
                    for m in sm["metrics"]:
                        body = m.get("gauge") or m["sum"]
                        pts = body["dataPoints"]
                        assert pts and all(p["timeUnixNano"].isdigit() for p in pts)
                        names[m["name"]] += len(pts)
    assert {
        "process.cpu.utilization",
        "process.memory.usage",
        "lumina.service.requests",
        "lumina.queue.depth",
    } <= names.keys()
    severities = Counter()
    linked = 0
    for path in sim.paths["logs"]:
        for line in path.read_text().splitlines():
            for rl in json.loads(line)["resourceLogs"]:
                for sl in rl["scopeLogs"]:
                    for rec in sl["logRecords"]:
                        severities[rec["severityText"]] += 1
                        assert isinstance(rec["body"]["stringValue"], str)
                        if "traceId" in rec:
                            assert HEX32.match(rec["traceId"]) and HEX16.match(rec["spanId"])
                            linked += 1
    assert {"INFO", "WARN", "ERROR"} <= severities.keys()
    assert linked > 100


def test_prometheus_text_has_timestamps(sim: SimulationResult) -> None:
    sample = re.compile(r"^([a-z_]+)\{([^}]*)\} ([0-9.eE+-]+) (\d{13})$")
    n = 0
    for path in sim.paths["prometheus"]:
        for line in path.read_text().splitlines():
            if line.startswith("#"):
                assert line.startswith(("# HELP ", "# TYPE "))
                continue
            assert sample.match(line), line
            n += 1
    assert n > 1000


def test_csv_files_have_warehouse_columns(sim: SimulationResult) -> None:
    for name, table in (
        ("events.csv", EVENTS),
        ("deployments.csv", DEPLOYMENTS),
        ("incidents.csv", INCIDENTS),
    ):
        with open(sim.out_dir / name, newline="") as fh:
            header = next(csv.reader(fh))
        assert header == table.column_names, name
    ev = pd.read_csv(sim.out_dir / "events.csv")
    assert set(ev["event_type"]) == {
        "session_start",
        "message",
        "feedback",
        "conversion",
        "abandonment",
    }
    assert not ev.duplicated(["ts", "user_id", "session_id", "event_type"]).any()
    ts = pd.to_datetime(ev["ts"])
    assert ts.min() >= pd.Timestamp(START) and ts.max() < pd.Timestamp(START) + pd.Timedelta(days=4)
    scores = [json.loads(p)["score"] for p in ev.loc[ev["event_type"] == "feedback", "properties"]]
    assert set(scores) <= {1, 2, 3, 4, 5}
    incs = pd.read_csv(sim.out_dir / "incidents.csv")
    assert set(incs["kind"]) == set(INCIDENT_KINDS)


# -- GenAI semantic conventions --------------------------------------------------------------


def test_llm_spans_follow_genai_semconv(llm: pd.DataFrame) -> None:
    assert (llm["kind"] == 3).all()
    assert (llm["name"] == "chat " + llm["model"]).all()
    assert all(a["gen_ai.operation.name"] == "chat" for a in llm["attrs"])
    assert set(llm["provider"]) == {
        "openai",
        "anthropic",
        "gcp.gemini",
        "mistral_ai",
        "aws.bedrock",
    }
    assert (llm["input"] >= llm["cache_read"] + llm["cache_write"]).all()
    assert (llm["output"] >= llm["reasoning"]).all()
    reasoning_models = {m.name for m in MODELS if m.reasoning}
    assert set(llm.loc[llm["reasoning"] > 0, "model"]) <= reasoning_models
    ok = llm[llm["error_type"].isna()]
    err = llm[llm["error_type"].notna()]
    assert (ok["status"] == 0).all() and (err["status"] == 2).all()
    assert set(err["error_type"]) <= {"rate_limit", "server_error", "timeout"}
    ttft = np.array([a["lumina.time_to_first_token_ms"] for a in ok["attrs"]])
    assert (ttft > 0).all() and (ttft <= ok["latency_ms"].to_numpy() + 0.01).all()
    # latency grows with output tokens
    assert np.corrcoef(ok["output"], ok["latency_ms"])[0, 1] > 0.3
    for a in llm["attrs"]:
        assert HEX16.match(a["lumina.prompt.hash"])
        assert a["gen_ai.conversation.id"] and a["enduser.id"]
    deprecated = llm["attrs"].map(lambda a: "gen_ai.system" in a)
    assert 0.005 < deprecated.mean() < 0.05
    assert all("gen_ai.usage.prompt_tokens" in a for a in llm.loc[deprecated, "attrs"])


def test_prompt_hashes_repeat_within_an_hour(llm: pd.DataFrame) -> None:
    hour = llm["ts"].dt.floor("h")
    busiest = hour.value_counts().index[0]
    h = llm.loc[hour == busiest, "attrs"].map(lambda a: a["lumina.prompt.hash"])
    repeated_share = 1 - h.nunique() / len(h)
    assert 0.10 < repeated_share < 0.40


def test_outage_provider_id_matches_the_warehouse_normalisation() -> None:
    pricing = pytest.importorskip("lumina_analytics.pricing")
    assert pricing.normalize_provider(inc.OUTAGE_PROVIDER) == inc.OUTAGE_PROVIDER_ID


def test_models_are_priced_by_genai_prices_except_the_private_one(llm: pd.DataFrame) -> None:
    from genai_prices import Usage, calc_price

    when = datetime(2026, 10, 5)
    for m in MODELS:
        usage = Usage(input_tokens=1000, output_tokens=200, cache_read_tokens=100)
        if m.priced:
            assert (
                calc_price(
                    usage, m.name, provider_id=m.provider, genai_request_timestamp=when
                ).total_price
                > 0
            )
            assert (
                calc_price(
                    usage, m.response_name, provider_id=m.provider, genai_request_timestamp=when
                ).total_price
                > 0
            )
        else:
            with pytest.raises(LookupError):
                calc_price(usage, m.name, provider_id=m.provider, genai_request_timestamp=when)
    unpriced = {m.name for m in MODELS if not m.priced}
    assert llm["model"].isin(unpriced).sum() >= 3


def test_no_prompt_or_completion_text_anywhere(sim: SimulationResult) -> None:
    forbidden = (
        "gen_ai.prompt",
        'gen_ai.completion"',
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "llm.input_messages",
        '"content"',
    )
    for path in sorted(sim.out_dir.rglob("*")):
        if path.is_file():
            text = path.read_text()
            for word in forbidden:
                assert word not in text, f"{word} in {path}"


def test_n_plus_one_pattern_present(spans: pd.DataFrame) -> None:
    db = spans[spans["attrs"].map(lambda a: "db.query.text" in a)].copy()
    db["shape"] = db["attrs"].map(lambda a: re.sub(r"\d+", "?", a["db.query.text"]))
    per_parent = db.groupby(["trace_id", "parent", "shape"]).size()
    assert per_parent.max() >= 3
    assert "SELECT sku, qty, unit_price FROM order_items WHERE order_id = ?" in set(db["shape"])
    http = spans[spans["attrs"].map(lambda a: "http.request.method" in a and "url.full" in a)]
    assert len(http) > 0
    assert all({"http.route", "http.response.status_code"} <= a.keys() for a in http["attrs"])


# -- incidents are visible in the raw data ---------------------------------------------------


def _inside(frame: pd.DataFrame, t0: pd.Timestamp, t1: pd.Timestamp) -> pd.Series:
    return (frame["ts"] >= t0) & (frame["ts"] < t1)


def test_incident_kinds_and_quiet_period(sim: SimulationResult, tmp_path: Path) -> None:
    assert list(sim.incidents.columns) == INCIDENTS.column_names
    assert set(sim.incidents["kind"]) == set(INCIDENT_KINDS)
    plan = inc.plan_period(datetime(2026, 10, 1), 30, np.random.default_rng(0))
    first = min(i.start for i in plan.incidents)
    assert first >= datetime(2026, 10, 8)  # the first week is incident-free


def test_provider_outage_visible(sim: SimulationResult, llm: pd.DataFrame) -> None:
    t0, t1, row = _window(sim, "provider_outage")
    assert row["value"] == inc.OUTAGE_PROVIDER_ID
    p = llm[llm["provider"] == inc.OUTAGE_PROVIDER]
    inside = _inside(p, t0, t1)
    rate_in = p.loc[inside, "error_type"].notna().mean()
    rate_out = p.loc[~inside, "error_type"].notna().mean()
    assert inside.sum() >= 20
    assert rate_in > 0.25 and rate_out < 0.03


def test_rate_limit_storm_visible(sim: SimulationResult, llm: pd.DataFrame) -> None:
    t0, t1, row = _window(sim, "rate_limit_storm")
    m = llm[llm["model"] == row["value"]]
    inside = _inside(m, t0, t1)
    rl = m["error_type"] == "rate_limit"
    assert inside.sum() >= 20
    assert rl[inside].mean() > 0.3 and rl[~inside].mean() < 0.02


def test_latency_regression_visible(sim: SimulationResult, llm: pd.DataFrame) -> None:
    _, _, row = _window(sim, "latency_regression")
    service, version = row["value"].split("/")
    assert row["dimension"] == "service_version"
    dep = pd.read_csv(sim.out_dir / "deployments.csv")
    assert ((dep["service"] == service) & (dep["version"] == version)).any()
    ok = llm[llm["error_type"].isna()]
    ttft = ok["attrs"].map(lambda a: a["lumina.time_to_first_token_ms"])
    bad = ok["version"] == version
    assert bad.sum() >= 20
    assert ttft[bad].median() > ttft[~bad].median() + 500


def test_runaway_agent_visible(sim: SimulationResult, llm: pd.DataFrame) -> None:
    t0, t1, row = _window(sim, "runaway_agent")
    m = llm[(llm["agent"] == row["value"]) & (llm["tenant"] == inc.RUNAWAY_TENANT)]
    first = m.groupby("trace_id")["ts"].min()
    per_trace = m.groupby("trace_id").size()
    inside = (first >= t0) & (first < t1)
    assert inside.sum() >= 3
    assert per_trace[inside].mean() > 15 and per_trace[~inside].mean() < 8


def test_traffic_surge_visible(sim: SimulationResult) -> None:
    t0, t1, row = _window(sim, "traffic_surge")
    ev = pd.read_csv(sim.out_dir / "events.csv", parse_dates=["ts"])
    starts = ev[(ev["event_type"] == "session_start") & (ev["tenant"] == row["value"])]
    inside = _inside(starts, t0, t1)
    # same hours of the other days
    same_hours = starts["ts"].dt.hour.between(t0.hour, t1.hour - 1) & ~inside
    n_other_days = 2
    assert inside.sum() > 2.5 * same_hours.sum() / n_other_days


def test_cache_hit_drop_visible(sim: SimulationResult, llm: pd.DataFrame) -> None:
    t0, t1, row = _window(sim, "cache_hit_drop")
    m = llm[(llm["model"] == row["value"]) & llm["error_type"].isna()]
    inside = _inside(m, t0, t1)
    hit = m["cache_read"] > 0
    assert inside.sum() >= 20
    assert hit[inside].mean() < 0.15 and hit[~inside].mean() > 0.4


def test_error_logs_surge_during_outage(sim: SimulationResult) -> None:
    t0, t1, _ = _window(sim, "provider_outage")
    per_hour: dict[pd.Timestamp, int] = defaultdict(int)
    for path in sim.paths["logs"]:
        for line in path.read_text().splitlines():
            for rl in json.loads(line)["resourceLogs"]:
                for sl in rl["scopeLogs"]:
                    for rec in sl["logRecords"]:
                        if rec["severityText"] == "ERROR":
                            per_hour[
                                pd.Timestamp(int(rec["timeUnixNano"]), unit="ns").floor("h")
                            ] += 1
    series = pd.Series(per_hour)
    inside = (series.index >= t0.floor("h")) & (series.index < t1)
    assert series[inside].mean() > 3 * series[~inside].median()


# -- effects -----------------------------------------------------------------------------------


def test_effects_recorded_and_pointing_the_right_way(sim: SimulationResult) -> None:
    effects = json.loads((sim.out_dir / "effects.json").read_text())
    assert effects == json.loads(json.dumps(sim.effects, sort_keys=True))
    assert effects["conversion"]["per_latency_s_logit"] < 0
    assert effects["conversion"]["error_logit"] < 0
    assert effects["abandonment"]["error_logit"] > 0
    assert set(effects["incidents"]) == set(INCIDENT_KINDS)
    ev = pd.read_csv(sim.out_dir / "events.csv")
    sessions = ev.groupby("session_id")["event_type"].agg(set)
    assert len(sessions) > 300


def test_outcomes_depend_on_errors_and_latency(tmp_path: Path) -> None:
    from lumina_analytics.simulate.incidents import plan_period
    from lumina_analytics.simulate.outcomes import session_outcomes
    from lumina_analytics.simulate.traces import generate

    rng = np.random.default_rng(5)
    plan = plan_period(datetime(2026, 10, 1), 30, rng)
    world = generate(plan, 0.3, rng)
    out = session_outcomes(world, rng)
    conv_err = out.loc[out["error"], "converted"].mean()
    conv_ok = out.loc[~out["error"], "converted"].mean()
    assert conv_err < conv_ok - 0.05
    slow = out["latency_s"] > out["latency_s"].quantile(0.8)
    fast = out["latency_s"] < out["latency_s"].quantile(0.2)
    assert out.loc[slow, "converted"].mean() < out.loc[fast, "converted"].mean()
    assert out.loc[out["error"], "abandoned"].mean() > out.loc[~out["error"], "abandoned"].mean()


# -- CLI and end to end ------------------------------------------------------------------------


def test_cli_simulate_writes_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lumina_analytics.cli import main

    rc = main(
        [
            "simulate",
            "--days",
            "1",
            "--scale",
            "0.02",
            "--seed",
            "2",
            "--out",
            str(tmp_path / "o"),
            "--start",
            "2026-10-05",
            "--no-progress",
        ]
    )
    assert rc == 0
    assert (tmp_path / "o" / "traces" / "traces-2026-10-05.otlp.jsonl").exists()
    assert "LLM calls" in capsys.readouterr().out


def test_cli_rejects_bad_days(tmp_path: Path) -> None:
    from lumina_analytics.cli import main

    assert main(["simulate", "--days", "0", "--out", str(tmp_path / "o"), "--no-progress"]) == 2


def test_end_to_end_simulate_ingest_warehouse(tmp_path: Path) -> None:
    ingest = pytest.importorskip("lumina_analytics.ingest")
    if not hasattr(ingest, "ingest_paths"):
        pytest.skip("lumina_analytics.ingest.ingest_paths is not available yet")
    from lumina_analytics.warehouse import Warehouse

    r = simulate(days=2, scale=0.2, seed=9, out=tmp_path / "tele", start=START)
    wh = Warehouse(tmp_path / "wh.duckdb")
    report = ingest.ingest_paths(r.telemetry_paths(), wh)
    assert report.ok, str(report)
    counts = wh.table_counts()
    assert counts["spans"] == r.counts["spans"]
    assert counts["llm_calls"] == r.counts["llm_calls"]
    assert counts["events"] == r.counts["events"]
    assert counts["incidents"] == len(INCIDENT_KINDS)
    assert counts["deployments"] == r.counts["deployments"]
    assert counts["logs"] == r.counts["logs"]
    assert counts["metrics"] == r.counts["metric_points"] + r.counts["prometheus_samples"]
    assert counts["quarantine"] == 0
    unpriced = wh.query("SELECT count(*) AS n FROM llm_calls WHERE cost_usd IS NULL")
    assert int(unpriced["n"].iloc[0]) >= 3
    # the ground truth joins to the warehouse's own dimension values
    outage = wh.query(
        "SELECT avg(CASE WHEN c.status = 'error' THEN 1.0 ELSE 0.0 END) AS rate, count(*) AS n "
        "FROM llm_calls c JOIN incidents i ON i.kind = 'provider_outage' "
        "AND c.provider = i.value AND c.ts >= i.start_ts AND c.ts < i.end_ts"
    )
    assert int(outage["n"].iloc[0]) >= 10 and float(outage["rate"].iloc[0]) > 0.25
    storm = wh.query(
        "SELECT avg(CASE WHEN c.error_type = 'rate_limit' THEN 1.0 ELSE 0.0 END) AS rate "
        "FROM llm_calls c JOIN incidents i ON i.kind = 'rate_limit_storm' "
        "AND c.model = i.value AND c.ts >= i.start_ts AND c.ts < i.end_ts"
    )
    assert float(storm["rate"].iloc[0]) > 0.3
    # loading the same files again adds nothing
    ingest.ingest_paths(r.telemetry_paths(), wh)
    assert wh.table_counts()["spans"] == counts["spans"]
