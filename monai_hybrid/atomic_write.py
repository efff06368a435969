"""Writing a file whole or not at all: to a temporary file in the same folder, then ``os.replace`` over the target.

A reader (MONAI Label serving ``models/model.pt``, a resumed benchmark reading its results, a DDP rank reading
``model_settings.json``) sees either the old file or the new one, never a half-written one, and a kill in the middle
leaves the old file in place. ``tempfile`` creates its files readable by their owner only; the file written here gets
``FILE_MODE`` instead, as a plain ``open`` under the usual umask gives, so that a served model or a result stays
readable by the group that shares the machine.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["FILE_MODE", "atomic_path", "write_text_atomic"]

#: the mode of every file written here: read and write for its owner, read for the others
FILE_MODE = 0o644


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, mode: int = FILE_MODE) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; when the block ends without an error it gets ``mode`` and
    replaces ``path`` (its folder is created), otherwise it is removed and ``path`` is left as it was.

    Each call gets its own temporary name, so processes writing the same file (DDP ranks) do not collide.

    Example:
        >>> with atomic_path("models/model.pt") as tmp:
        ...     torch.save(state, tmp)
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str, mode: int = FILE_MODE) -> Path:
    """Write ``text`` to ``path`` atomically (``atomic_path``); returns ``path``."""
    with atomic_path(path, mode) as tmp:
        tmp.write_text(text)
    return Path(path)
