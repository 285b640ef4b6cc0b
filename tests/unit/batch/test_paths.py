"""Paths on the data volume: relative to it, refused when they leave it, with messages that say so."""

import os
from pathlib import Path

import pytest

from modelyard.batch.paths import data_path, not_found, relative_path
from modelyard.errors import InvalidPath


@pytest.mark.parametrize(
    ("relative", "message"),
    [
        ("", "input '': give a path relative to the data volume"),
        ("/etc/passwd", "input '/etc/passwd': give a path relative to the data volume"),
        ("~/x.csv", "input '~/x.csv': give a path relative to the data volume"),
        ("a\x00b.csv", "input 'a\\x00b.csv' is not a file name (a NUL byte, or text that is not UTF-8)"),
        ("a\udc80.csv", "input 'a\\udc80.csv' is not a file name (a NUL byte, or text that is not UTF-8)"),
        ("../x.csv", "input '../x.csv' leaves the data volume; paths must stay inside it"),
        ("in/../..", "input 'in/../..' leaves the data volume; paths must stay inside it"),
        (".", "input '.' leaves the data volume; paths must stay inside it"),
        ("out/escape.csv", "input 'out/escape.csv' leaves the data volume; paths must stay inside it"),
    ],
)
def test_paths_that_leave_the_volume_or_name_no_file_are_refused(
    tmp_path: Path, relative: str, message: str
) -> None:
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    data = tmp_path / "data"
    data.mkdir()
    os.symlink(outside / "sub", data / "out")  # a symlink out of the volume
    with pytest.raises(InvalidPath) as refused:
        data_path(data, relative, "input")
    assert refused.value.message == message


def test_paths_inside_resolve_under_the_volume(tmp_path: Path) -> None:
    assert data_path(tmp_path, "in/./a.csv", "output") == tmp_path.resolve() / "in" / "a.csv"
    assert data_path(tmp_path, "~a.csv".removeprefix("~"), "output") == tmp_path.resolve() / "a.csv"
    assert relative_path(tmp_path, tmp_path.resolve() / "in" / "a.csv") == "in/a.csv"


def test_a_missing_input_names_the_folder_and_the_likely_path(tmp_path: Path) -> None:
    data = tmp_path / "data"
    folder = data.resolve()
    assert not_found("incoming/a.csv", data) == (
        f"input 'incoming/a.csv': no such file in the data folder {folder} (MODELYARD_DATA_DIR)"
    )
    assert not_found("data/incoming/a.csv", data) == (
        f"input 'data/incoming/a.csv': no such file in the data folder {folder} (MODELYARD_DATA_DIR); "
        "paths are relative to the data folder: did you mean 'incoming/a.csv'?"
    )
    assert not_found("data/a.csv", data).endswith("did you mean 'a.csv'?")
    assert not_found("data", data).endswith("(MODELYARD_DATA_DIR)")  # the folder alone: no hint
