"""The project's own error message, last on the screen, when a bundle run stops.

An error raised by this package inside a bundle run (a datalist that names a missing file, a checkpoint that does not
fit the network) reaches the user wrapped by MONAI's config parser: Python prints the project's message in the middle
of a long traceback that ends with MONAI's "Failed to instantiate component ...". A bundle run calls ``install()``
first in its ``initialize`` step: an exception hook that prints the usual traceback and then repeats the message of
the first exception in the chain that this package raised, so the last lines a user sees say what is wrong, in which
file or key, and what to do. Errors that did not come from this package are printed as usual. Importing this module
changes nothing.
"""

from __future__ import annotations

import sys
import traceback
from types import TracebackType

__all__ = ["install", "project_error"]

_PACKAGE = __name__.rsplit(".", 1)[0]


def _raised_here(err: BaseException) -> bool:
    """Whether the innermost frame of ``err``'s traceback is code of this package."""
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "")
    return module == _PACKAGE or module.startswith(f"{_PACKAGE}.")


def project_error(err: BaseException) -> BaseException | None:
    """The first exception in the chain of ``err`` (``err``, its cause or context, ...) raised by this package."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if _raised_here(err):
            return err
        err = err.__cause__ or err.__context__
    return None


def _hook(kind: type[BaseException], err: BaseException, tb: TracebackType | None) -> None:
    traceback.print_exception(kind, err, tb)
    ours = project_error(err)
    if ours is not None and ours is not err:
        sys.stderr.write(f"\nmonai-hybrid stopped the run: {type(ours).__name__}: {ours}\n")
        sys.stderr.flush()


def install() -> None:
    """Install the hook (once; it leaves any other hook than Python's default in place). A bundle run calls it in
    its ``initialize`` step."""
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _hook
