"""Reading the YAML or TOML files operators mount (schedules, connections): one rule for both."""

import tomllib
from pathlib import Path
from typing import Any

import yaml


class ConfigFileError(ValueError):
    """The file cannot be read, or is neither YAML nor TOML; the message names the file."""


def read_config(path: Path) -> Any:
    """The file's content: TOML for .toml, YAML for .yaml and .yml, by its content for any other name."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigFileError(f"{path} cannot be read: {exc.strerror or exc}") from exc
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix in (".yaml", ".yml"):
            return yaml.safe_load(text)
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigFileError(f"{path} is not valid {suffix[1:] or 'YAML'}: {exc}") from exc
