"""Settings per environment: precedence, validation errors naming file and key, config show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lumina_analytics.cli import main
from lumina_analytics.config import ENVIRONMENTS, SETTINGS_DIR, get_settings, resolve_settings
from lumina_analytics.errors import ConfigError


def test_every_environment_file_is_valid() -> None:
    for env in ENVIRONMENTS:
        assert (SETTINGS_DIR / f"{env}.yaml").is_file()
        r = resolve_settings(env=env)
        assert r.settings.env == env and r.settings.retention_days >= 1
        text = (SETTINGS_DIR / f"{env}.yaml").read_text()
        assert "alert_webhook_url:" not in text and "user_id_salt:" not in text


def test_precedence_defaults_env_file_settings_file_env_var_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LUMINA_WAREHOUSE", raising=False)
    monkeypatch.setenv("LUMINA_ENV", "staging")
    r = resolve_settings()
    assert r.settings.retention_days == 30 and "staging.yaml" in r.sources["retention_days"]
    assert r.sources["lock_timeout_s"].endswith("staging.yaml")
    user = tmp_path / "mine.yaml"
    user.write_text("retention_days: 45\nbackup_keep: 9\ndata_dir: elsewhere\n")
    monkeypatch.setenv("LUMINA_SETTINGS", str(user))
    r = resolve_settings()
    assert (r.settings.retention_days, r.settings.backup_keep) == (45, 9)
    assert r.sources["retention_days"] == f"file {user}"
    assert r.settings.warehouse == r.settings.root / "elsewhere" / "lumina.duckdb"
    monkeypatch.setenv("LUMINA_RETENTION_DAYS", "60")
    r = resolve_settings()
    assert (
        r.settings.retention_days == 60
        and r.sources["retention_days"] == "env LUMINA_RETENTION_DAYS"
    )
    assert r.settings.backup_keep == 9
    r = resolve_settings(overrides={"retention_days": 7, "backup_keep": None})
    assert r.settings.retention_days == 7 and r.sources["retention_days"] == "cli"
    assert get_settings().retention_days == 60


def test_existing_env_vars_still_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUMINA_WAREHOUSE", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("LUMINA_LOCK_TIMEOUT_S", "5")
    monkeypatch.setenv("LUMINA_HASH_USER_IDS", "yes")
    s = get_settings()
    assert s.warehouse == tmp_path / "w.duckdb" and s.lock_timeout_s == 5.0 and s.hash_user_ids
    monkeypatch.setenv("LUMINA_LOCK_TIMEOUT_S", "soon")
    with pytest.raises(ConfigError, match="LUMINA_LOCK_TIMEOUT_S"):
        get_settings()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("retension_days: 30\n", r"unknown key 'retension_days'"),
        ("retention_days: lots\n", r"key 'retention_days'.*lots"),
        ("store_content: maybe\n", r"key 'store_content'"),
        ("- a\n- b\n", r"must be a mapping"),
        ("retention_days: [1\n", r"not valid YAML"),
        ("alert_webhook_url: https://x.invalid/\n", r"'alert_webhook_url' is a secret"),
    ],
)
def test_bad_settings_file_names_file_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, message: str
) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(content)
    monkeypatch.setenv("LUMINA_SETTINGS", str(f))
    with pytest.raises(ConfigError, match=message) as info:
        get_settings()
    assert str(f) in str(info.value)


def test_bad_environment_and_missing_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUMINA_ENV", "production")
    with pytest.raises(ConfigError, match="use one of dev, staging, prod"):
        get_settings()
    monkeypatch.setenv("LUMINA_ENV", "dev")
    monkeypatch.setenv("LUMINA_SETTINGS", "/nonexistent/lumina.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        get_settings()


def test_config_show_masks_secrets_and_names_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hook = "https://hooks.example.invalid/T0/B0/verysecret"
    monkeypatch.setenv("LUMINA_ALERT_WEBHOOK_URL", hook)
    monkeypatch.setenv("LUMINA_USER_ID_SALT", "pepper-123")
    assert main(["--warehouse", str(tmp_path / "x.duckdb"), "config", "show", "--env", "prod"]) == 0
    out = capsys.readouterr().out
    assert "verysecret" not in out and "pepper-123" not in out
    assert "alert_webhook_url" in out and "***" in out
    assert "[cli --warehouse]" in out and "prod.yaml" in out
    assert main(["config", "show", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["user_id_salt"] == {"value": "***", "source": "env LUMINA_USER_ID_SALT"}
    assert doc["backup_dir"]["value"] == "(unset)"
