"""End to end: cost.ipynb and providers.ipynb under papermill, and the CLI commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lumina_analytics import costs, datasets
from lumina_analytics.cli import main
from lumina_analytics.warehouse import Warehouse, append_frame

ROOT = Path(__file__).resolve().parents[1]


def _warehouse(tmp_path: Path) -> Path:
    """A small warehouse of synthetic priced calls (the demo simulator is exercised elsewhere)."""
    path = tmp_path / "w.duckdb"
    calls = costs.with_costs(datasets.synthetic_calls(4000, days=20, seed=11))
    with Warehouse(path).writer() as con:
        append_frame(con, "llm_calls", calls)
    return path


def _errors(nb_path: Path) -> list[str]:
    nb = json.loads(nb_path.read_text())
    return [
        f"{o['ename']}: {o['evalue']}"
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]


def _run(tmp_path: Path, name: str, **parameters: object) -> tuple[list[str], str]:
    """Execute notebooks/NAME.ipynb with papermill; its error outputs and its text."""
    papermill = pytest.importorskip("papermill")
    out = tmp_path / f"{name}.out.ipynb"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / f"{name}.ipynb"),
        str(out),
        parameters=parameters,
        kernel_name="python3",
        progress_bar=False,
    )
    return _errors(out), out.read_text()


@pytest.mark.slow
def test_cost_notebook_runs_on_a_warehouse(tmp_path: Path) -> None:
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text("budgets:\n  acme: 20\n  globex: 5\n")
    errors, text = _run(
        tmp_path,
        "cost",
        warehouse=str(_warehouse(tmp_path)),
        budget_file=str(budgets),
        grain="W",
        projection="simple",
        whatif_models=["openai:gpt-4o-mini"],
        batch_discount=0.5,
    )
    assert errors == []
    assert "simple (bootstrap of recent daily spend)" in text
    assert "cache_read_exceeds_input" in text
    assert "Top tools by spend" in text  # no spans in this warehouse: every call is (none)


@pytest.mark.slow
def test_providers_notebook_runs_on_a_warehouse(tmp_path: Path) -> None:
    errors, text = _run(
        tmp_path,
        "providers",
        warehouse=str(_warehouse(tmp_path)),
        n_boot=200,
        baseline="openai / gpt-4o",
        candidate="openai / gpt-4o-mini",
    )
    assert errors == []
    assert "lumina-verdict" in text


@pytest.mark.slow
@pytest.mark.shared_data
def test_providers_notebook_runs_on_llmperf(tmp_path: Path, shared_data: Path) -> None:
    csv = shared_data / "providers" / "llmperf_leaderboard_requests.csv"
    if not csv.exists():
        pytest.skip(f"{csv} not present")
    errors, text = _run(tmp_path, "providers", calls_csv=str(csv), n_boot=200, by=["provider"])
    assert errors == []
    assert "Switch" in text


def test_cli_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wh = _warehouse(tmp_path)
    budgets = tmp_path / "b.yaml"
    budgets.write_text("budgets:\n  acme: 20\n")
    assert main(["--warehouse", str(wh), "costs", "summary", "--by", "model"]) == 0
    assert "spend $" in capsys.readouterr().out
    assert (
        main(
            [
                "--warehouse",
                str(wh),
                "costs",
                "budgets",
                "--budgets",
                str(budgets),
                "--method",
                "simple",
            ]
        )
        == 0
    )
    assert "acme" in capsys.readouterr().out
    assert main(["--warehouse", str(wh), "costs", "audit"]) == 0
    assert "cache_read_exceeds_input" in capsys.readouterr().out
    assert main(["--warehouse", str(wh), "costs", "attribution"]) == 0
    assert main(["--warehouse", str(wh), "costs", "whatif", "--to", "openai:gpt-4o-mini"]) == 0
    assert "gpt-4o-mini" in capsys.readouterr().out
    out_json = tmp_path / "cmp.json"
    assert (
        main(
            [
                "--warehouse",
                str(wh),
                "providers",
                "compare",
                "--n-boot",
                "50",
                "--json",
                str(out_json),
            ]
        )
        == 0
    )
    assert json.loads(out_json.read_text())["settings"]["n_boot"] == 50
    assert main(["--warehouse", str(wh), "providers", "compare", "--sql"]) == 0
    capsys.readouterr()
    rc = main(
        [
            "--warehouse",
            str(wh),
            "providers",
            "judge",
            "--baseline",
            "openai / gpt-4o",
            "--candidate",
            "openai / gpt-4o-mini",
        ]
    )
    assert rc in (0, 1) and "->" in capsys.readouterr().out
    assert main(["--warehouse", str(tmp_path / "missing.duckdb"), "costs", "summary"]) == 2


@pytest.mark.parametrize("name", ["cost.ipynb", "providers.ipynb"])
def test_notebooks_are_clean_and_parameterised(name: str) -> None:
    nb = json.loads((ROOT / "notebooks" / name).read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1
    lines = [ln for ln in "".join(params[0]["source"]).splitlines() if ln.strip()]
    assert all(":" in ln.split("=")[0] and "  # " in ln for ln in lines), lines
    assert "enable_offline()" in "".join("".join(c["source"]) for c in code)
