import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from modelyard.config import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_lists_every_setting_and_every_compose_variable() -> None:
    listed = set(re.findall(r"^(\w+)=", (ROOT / ".env.example").read_text(), re.M))
    settings = {f"MODELYARD_{name.upper()}" for name in Settings.model_fields}
    compose = set(re.findall(r"\$\{(\w+)", (ROOT / "compose.yaml").read_text()))
    assert listed == settings | compose


def test_env_example_values_are_valid_and_leave_the_api_key_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.startswith("MODELYARD_") and not line.startswith("MODELYARD_REDIS_PASSWORD"):
            key, _, value = line.partition("=")
            monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    assert settings.api_key is None
    assert settings.max_upload_bytes == 100 * 1024 * 1024


def test_bad_values_fail_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_MAX_UPLOAD_MB", "-1")
    with pytest.raises(ValidationError, match="max_upload_mb"):
        Settings(_env_file=None)


def test_a_dotenv_in_the_current_folder_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Compose's .env (with a generated API key) must not reach processes run from the repository."""
    (tmp_path / ".env").write_text("MODELYARD_API_KEY=from-compose\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MODELYARD_ENV_FILE", raising=False)
    get_settings.cache_clear()
    assert get_settings().api_key is None
    monkeypatch.setenv("MODELYARD_ENV_FILE", str(tmp_path / ".env"))
    get_settings.cache_clear()
    assert get_settings().api_key.get_secret_value() == "from-compose"
    get_settings.cache_clear()


def test_the_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    listed = set(re.findall(r"^(\w+)=", (ROOT / ".env.example").read_text(), re.M))
    assert {name for name in listed if f"| `{name}` |" not in readme} == set()
