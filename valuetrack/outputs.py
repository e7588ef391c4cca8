"""Files valuetrack writes (``--out``): never over an input, always whole.

``check_output`` refuses a path that is the app database (or its -wal/-shm/-journal files), a
warehouse file of a connection, the settings file, ``.streamlit/secrets.toml`` or a file the same
command is reading (e.g. a manifest): writing a report there would destroy the store or the data it
came from. It compares files, not spellings: ``./x/../valuetrack.db``, a symlink or a hard link to a
protected file are refused too. ``write_atomic`` writes to a temporary file in the same folder and
renames it into place, so a failure leaves any existing file untouched.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy.engine import make_url

from valuetrack.errors import ValuetrackError


class ProtectedOutput(ValuetrackError):
    """An output path points at a file valuetrack reads (the app database, a warehouse, settings)."""

    code = "protected_output"


class OutputWriteError(ValuetrackError):
    """The output file could not be written (the previous file, if any, is left untouched)."""

    code = "write"


def protected_files(settings: Any, reading: Iterable[str | Path] = ()) -> dict[Path, str]:
    """Every file an output must not replace, with what it is."""
    found: dict[Path, str] = {}
    db = _file_of(settings.store_url)
    if db is not None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            found[Path(str(db) + suffix)] = "the app database"
    for name, conn in settings.connections.items():
        path = _file_of(conn.url)
        if path is not None:
            found[path] = f"the warehouse file of connection {name!r}"
    if settings.path is not None:
        found[Path(settings.path)] = "the settings file"
    fx = getattr(settings, "fx", None)
    if fx is not None and fx.csv is not None:
        found[Path(fx.csv)] = "the exchange rates file of [fx]"
    found[Path(settings.base_dir) / ".streamlit" / "secrets.toml"] = "the secrets file"
    for path in reading:
        found[Path(path)] = "a file this command reads"
    return found


def check_output(path: str | Path, settings: Any, *, reading: Iterable[str | Path] = (), option: str = "--out",
                 suffixes: Iterable[str] = ()) -> Path:
    """``path`` as a Path if valuetrack may write it; ProtectedOutput or OutputWriteError otherwise.
    ``suffixes``: the file kinds the command writes (``.csv`` ...): an existing file of another kind
    (a manifest, a data file the settings do not name) is not replaced."""
    out = Path(path)
    if not out.parent.exists():
        raise OutputWriteError(f"{option}: folder {str(out.parent)!r} does not exist")
    if out.is_dir():
        raise OutputWriteError(f"{option}: {str(out)!r} is a folder; give a file path")
    target = _identity(out)
    for protected, what in protected_files(settings, reading).items():
        if target == _identity(protected):
            raise ProtectedOutput(f"{option}: {str(out)!r} is {what}; writing there would destroy it. "
                                  "Choose another file name")
    kinds = [s.lower() for s in suffixes]
    if kinds and out.exists() and out.suffix.lower() not in kinds:
        raise ProtectedOutput(f"{option}: {str(out)!r} exists and is not a {' or '.join(kinds)} file; writing there "
                              f"would replace it. Choose a file name ending in {kinds[0]}")
    if kinds and out.suffix.lower() in _KINDS and out.suffix.lower() not in kinds:  # an HTML report named x.pdf
        raise OutputWriteError(f"{option}: {str(out)!r} is named as a {out.suffix.lower()} file, but this writes a "
                               f"{kinds[0]} file. Choose a file name ending in {kinds[0]}")
    return out


_KINDS = {".pdf", ".csv", ".xlsx", ".xls", ".html", ".htm", ".toml", ".json", ".parquet", ".txt", ".md"}
"""File kinds a name says it holds: writing another kind under such a name is refused."""


def write_atomic(path: Path, data: bytes | str, *, option: str = "--out") -> None:
    """Write ``data`` to ``path`` via a temporary file and os.replace (same folder, same filesystem)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise OutputWriteError(f"{option}: cannot write {str(path)!r}: {exc.strerror or exc}") from None


def _file_of(url: str) -> Path | None:
    """The local file behind a sqlite:/// or duckdb:/// URL, or None."""
    try:
        parsed = make_url(url)
    except Exception:  # a URL with unresolved ${VAR}: not a local file we can name
        return None
    if parsed.get_backend_name() not in ("sqlite", "duckdb"):
        return None
    database = parsed.database or ""
    if not database or database.startswith(":memory:"):
        return None
    return Path(database)


def _identity(path: Path) -> Any:
    """Same file ⇔ same identity: (device, inode) when it exists (catches hard links and symlinks),
    else the resolved absolute path."""
    try:
        st = path.stat()
        return ("inode", st.st_dev, st.st_ino)
    except OSError:
        return ("path", str(path.resolve()))
