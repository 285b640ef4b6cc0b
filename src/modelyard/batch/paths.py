"""Paths on the data volume, as jobs name them: relative to it, checked, and never leaving it.

Jobs carry paths, never data: the API, every worker and the scheduler see the same volume, each
mounted wherever its container likes, so a path in a job is relative to the volume's root.
"""

from pathlib import Path, PurePath, PurePosixPath

from modelyard.errors import InvalidPath

UPLOADS = "uploads"


def upload_folder(job_id: str) -> str:
    """Where the API keeps the file uploaded for a job (origin upload), and nothing else."""
    return f"{UPLOADS}/{job_id}"


def data_path(data_dir: Path, relative: str, what: str) -> Path:
    """A path inside the data volume, refused when it is absolute or leaves it (.., a symlink)."""
    if not relative or PurePath(relative).is_absolute() or relative.startswith("~"):
        raise InvalidPath(f"{what} {relative!r}: give a path relative to the data volume")
    if "\x00" in relative or not _encodable(relative):
        raise InvalidPath(f"{what} {relative!r} is not a file name (a NUL byte, or text that is not UTF-8)")
    root = data_dir.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or path == root:
        raise InvalidPath(f"{what} {relative!r} leaves the data volume; paths must stay inside it")
    return path


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # an unpaired surrogate, which JSON can carry and no file name can
        return False
    return True


def relative_path(data_dir: Path, path: Path) -> str:
    """How a job names a file of the data volume."""
    return str(path.relative_to(data_dir.resolve()))


def not_found(relative: str, data_dir: Path) -> str:
    """Why an input is missing, with the likely fix when the path names the data folder itself."""
    folder = data_dir.resolve()
    parts = PurePosixPath(relative).parts
    hint = ""
    if parts[:1] == (folder.name,) and len(parts) > 1:
        meant = str(PurePosixPath(*parts[1:]))
        hint = f"; paths are relative to the data folder: did you mean {meant!r}?"
    return f"input {relative!r}: no such file in the data folder {folder} (MODELYARD_DATA_DIR){hint}"
