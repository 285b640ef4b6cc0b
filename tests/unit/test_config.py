import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from modelyard.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_lists_every_setting() -> None:
    listed = set(re.findall(r"^(MODELYARD_\w+)=", (ROOT / ".env.example").read_text(), re.M))
    assert listed == {f"MODELYARD_{name.upper()}" for name in Settings.model_fields}


def test_env_example_values_are_valid_and_leave_the_api_key_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.startswith("MODELYARD_"):
            key, _, value = line.partition("=")
            monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    assert settings.api_key is None
    assert settings.max_upload_bytes == 100 * 1024 * 1024


def test_bad_values_fail_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_MAX_UPLOAD_MB", "-1")
    with pytest.raises(ValidationError, match="max_upload_mb"):
        Settings(_env_file=None)
