"""Thread pools sized to what shares the machine.

PyTorch gives each process a thread pool as large as the machine. Processes that run side by side (MONAI Label's
Train, its background scoring and the server answering inferences; two trainings on one workstation) then ask for
several times the cores there are, and OpenMP's spinning threads slow every one of them far more than their share
(measured on 2 cores: a pretraining beside a MONAI Label Train, scoring and inferences ran 13 to 16 times slower).
Each process should take its share of the cores instead: ``use_threads``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch

__all__ = ["available_cores", "thread_share", "use_threads"]

logger = logging.getLogger(__name__)

_DEFAULT = ("", "none", "null", "auto")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system reports one, else every core)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def thread_share(jobs: int, cores: int | None = None) -> int:
    """The threads of one of ``jobs`` processes that share ``cores`` (default: ``available_cores``) alike: at least 1.

    Raises:
        ValueError: ``jobs`` or ``cores`` is not a positive integer.
    """
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"thread_share: 'jobs' must be a positive integer, got {jobs!r}.")
    if cores is not None and (not isinstance(cores, int) or isinstance(cores, bool) or cores < 1):
        raise ValueError(f"thread_share: 'cores' must be a positive integer or None, got {cores!r}.")
    return max(1, (cores or available_cores()) // jobs)


def use_threads(threads: Any = None, jobs: int = 1, who: str = "this process") -> int:
    """Size this process's PyTorch thread pool (``torch.set_num_threads``) and log it.

    Args:
        threads: the threads to use: a positive integer (or its string, as a command line or MONAI Label's
            ``--conf`` gives it), or ``None``/``"auto"``: ``thread_share(jobs)``.
        jobs: how many such processes share the machine (used when ``threads`` is ``None``/``"auto"``).
        who: names the process in the log line.

    Returns:
        The thread count set.

    Raises:
        ValueError: ``threads`` is neither a positive integer nor ``None``/``"auto"``, naming the setting.
    """
    if threads is None or (isinstance(threads, str) and threads.strip().lower() in _DEFAULT):
        count = thread_share(jobs)
        why = f"its share of {available_cores()} cores among {jobs} jobs"
    else:
        try:
            count = int(str(threads).strip())
        except ValueError:
            count = 0
        if isinstance(threads, bool) or count < 1:
            raise ValueError(
                f"'threads' must be a positive integer or auto, got {threads!r}; e.g. --conf threads 1 (MONAI Label) "
                "or --num_threads 1 (a bundle run)."
            )
        why = "as set"
    torch.set_num_threads(count)
    logger.info("%s: %d PyTorch thread%s (%s).", who, count, "" if count == 1 else "s", why)
    return count
