"""Report catalog, parameter validation, papermill runs, HTML export, index and schedules."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import nbformat
import pytest

from lumina_analytics.cli import main
from lumina_analytics.reports import catalog, run_all, run_report, validate_params
from lumina_analytics.reports.catalog import ReportError
from lumina_analytics.reports.schedule import (
    build_scheduler,
    crontab_lines,
    load_schedule,
    resolve_value,
    run_entry,
)

PARAMS = """days: int = 3  # how many points
label: str = "demo"  # chart title
ratio: float | None = None  # optional scale
tenants: list[str] = []  # filter
fail: bool = False  # raise on purpose
"""

BODY = """import altair as alt
import pandas as pd
from lumina_analytics import charts
charts.enable_offline()
if fail:
    raise ValueError("boom on purpose")
df = pd.DataFrame({"ds": pd.date_range("2026-01-01", periods=days, freq="D"), "y": range(days)})
display(df)
charts.line(df, color=None, title=label)
"""


def _notebook(folder: Path, name: str, params: str = PARAMS, body: str = BODY) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    p = nbformat.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# {name.title()} report\nA test report."),
        p,
        nbformat.v4.new_code_cell(body),
    ]
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def nbdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(folder, "alpha")
    _notebook(folder, "beta")
    monkeypatch.setenv("LUMINA_NOTEBOOKS_DIR", str(folder))
    return folder


def test_catalog_reads_typed_parameters(nbdir: Path) -> None:
    specs = catalog()
    assert sorted(specs) == ["alpha", "beta"]
    spec = specs["alpha"]
    assert spec.title == "Alpha report"
    assert spec.params["days"].default == 3 and spec.params["days"].base_type == "int"
    assert spec.params["days"].help == "how many points"
    assert spec.params["ratio"].optional
    assert spec.params["tenants"].base_type == "list"


def test_parameters_validated_before_running(nbdir: Path) -> None:
    spec = catalog()["alpha"]
    assert validate_params(
        spec, {"days": "5", "fail": "false", "ratio": "none", "tenants": "a,b"}
    ) == {"days": 5, "fail": False, "ratio": None, "tenants": ["a", "b"]}
    with pytest.raises(ReportError, match="no parameter 'dayz'"):
        validate_params(spec, {"dayz": 1})
    with pytest.raises(ReportError, match="expects int"):
        validate_params(spec, {"days": "three"})
    with pytest.raises(ReportError, match="expects bool"):
        validate_params(spec, {"fail": "perhaps"})
    with pytest.raises(ReportError, match="no report named"):
        run_report("gamma")


def test_run_writes_notebook_html_and_index(nbdir: Path, tmp_path: Path) -> None:
    run = run_report("alpha", {"days": "4", "label": "Four days"}, "2026-11-02")
    assert run.status == "ok", run.error
    out = Path(run.notebook).parent
    assert out.name == "2026-11-02"
    html = Path(run.html or "").read_text()
    assert "<svg" in html and "Four days" in html  # chart inline as SVG
    assert "charts.enable_offline" not in html  # no code cells
    assert not re.search(r"<(script|link)[^>]+(src|href)=[\"']https?://", html)  # no CDN
    assert "<table" in html  # the DataFrame
    index = (out.parent / "index.html").read_text()
    assert "alpha.html" in index and "days=4" in index


def test_failing_report_does_not_stop_others(
    nbdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = run_all("2026-11-03", params={"alpha": {"fail": True}}, progress=False, jobs=2)
    assert [r.name for r in runs] == ["alpha", "beta"]  # in name order, however they finished
    status = {r.name: r for r in runs}
    assert status["alpha"].status == "failed" and status["beta"].status == "ok"
    assert "boom on purpose" in (status["alpha"].error or "")
    assert status["alpha"].cell is not None
    assert main(["report", "run", "--all", "--date", "2026-11-04", "-p", "alpha.fail", "true"]) == 1
    assert "1 ok, 1 failed" in capsys.readouterr().out


def test_run_all_rejects_zero_jobs(nbdir: Path) -> None:
    with pytest.raises(ReportError, match="jobs must be at least 1"):
        run_all("2026-11-03", progress=False, jobs=0)


def test_cli_list_and_bad_parameter(nbdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "list"]) == 0
    assert "days: int = 3" in capsys.readouterr().out
    assert main(["report", "run", "alpha", "-p", "days", "x"]) == 2
    assert "expects int" in capsys.readouterr().err


def test_relative_dates() -> None:
    d = date(2026, 11, 27)  # a Friday
    assert resolve_value("{run_date}", d) == "2026-11-27"
    assert resolve_value("{run_date - 7d}", d) == "2026-11-20"
    assert resolve_value("{week_start}", d) == "2026-11-23"
    assert resolve_value("{week_start - 1w}", d) == "2026-11-16"
    assert resolve_value("{month_start}", d) == "2026-11-01"
    assert resolve_value("plain", d) == "plain" and resolve_value(3, d) == 3


def test_schedule_file_validation_crontab_and_jobs(nbdir: Path, tmp_path: Path) -> None:
    good = tmp_path / "reports.yaml"
    good.write_text(
        "reports:\n"
        "  - name: daily-alpha\n    notebook: alpha\n    cron: '0 6 * * *'\n    params: {label: '{run_date - 1d}'}\n"
        "  - name: weekly-beta\n    notebook: beta\n    cron: '0 7 * * 1'\n"
    )
    entries = load_schedule(good)
    assert [e.name for e in entries] == ["daily-alpha", "weekly-beta"]
    lines = crontab_lines(entries, "lumina-analytics")
    assert "CRON_TZ=UTC" in lines
    assert lines[2].startswith("0 6 * * * lumina-analytics schedule run-once daily-alpha >> /")
    sched = build_scheduler(entries, runner=lambda e: None)
    jobs = sched.get_jobs()
    assert len(jobs) == 2 and all(j.coalesce and j.max_instances == 1 for j in jobs)
    bad = tmp_path / "bad.yaml"
    bad.write_text("reports:\n  - name: x\n    notebook: alpha\n    cron: '61 * * * *'\n")
    with pytest.raises(ReportError, match="bad cron"):
        load_schedule(bad)
    bad.write_text("reports:\n  - name: x\n    notebook: nope\n    cron: '0 * * * *'\n")
    with pytest.raises(ReportError, match="unknown notebook"):
        load_schedule(bad)
    bad.write_text(
        "reports:\n  - name: x\n    notebook: alpha\n    cron: '0 * * * *'\n    params: {dayz: 1}\n"
    )
    with pytest.raises(ReportError, match="no parameter 'dayz'"):
        load_schedule(bad)


def test_failed_scheduled_run_returns_false_not_raises(nbdir: Path, tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(
        "reports:\n  - name: broken\n    notebook: alpha\n    cron: '0 6 * * *'\n    params: {fail: true}\n"
    )
    (entry,) = load_schedule(f)
    assert run_entry(entry, date(2026, 11, 5)) is False


def test_parameters_wrapped_by_formatter_keep_their_help() -> None:
    from lumina_analytics.reports.catalog import parse_parameters

    src = "warehouse: str | None = (\n    None  # DuckDB path\n)\nn: int = 3\n"
    got = parse_parameters(src)
    assert got["warehouse"].help == "DuckDB path" and got["warehouse"].optional
    assert got["n"].help == "" and got["n"].default == 3
