"""Reading a JSON file the user gave or a run wrote, with errors that name the file and the fix."""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["read_json_object"]


def read_json_object(path: str | os.PathLike, what: str, fix: str) -> dict:
    """The JSON object in ``path``.

    Args:
        path: the file.
        what: what the file is, starting the messages (``"Datalist"``).
        fix: what to do, ending the messages.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: it is not valid JSON (with the position) or not an object.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} '{path}' does not exist; {fix}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{what} '{path}' is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}; {fix}"
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f"{what} '{path}' must hold a JSON object, found {type(data).__name__}; {fix}")
    return data
