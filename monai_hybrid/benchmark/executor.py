"""Running the steps of a plan: in this process, or in worker processes, each step once the steps it needs are done.

Small networks use two cores better as two one-thread runs than as one two-thread run, so the CPU preset runs two
workers. Results are recorded by the calling process as they arrive; a worker whose benchmark process is gone stops.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from monai_hybrid.benchmark.plan import Step
from monai_hybrid.benchmark.runs import RunContext, run_step

__all__ = ["execute", "quiet_logs"]

logger = logging.getLogger(__name__)


def execute(
    steps: Sequence[Step],
    ctx: RunContext,
    record: Callable[[dict], None],
    workers: int = 1,
    on_done: Callable[[Step], None] | None = None,
) -> None:
    """Run ``steps`` (in their order among those ready) and ``record`` each result.

    Args:
        steps: what to run; a step whose ``needs`` are among ``steps`` waits for them, the others are done already.
        ctx: what the runs share.
        record: called with each run's record, in this process, as it arrives.
        workers: processes running steps at once, each with ``cpu_count // workers`` threads (1: in this process).
        on_done: called with each step once recorded (a progress bar).

    Raises:
        RuntimeError: a step waits on a step that never runs.
        Exception: the first failed run's error (the runs recorded before it are kept).
    """
    if workers < 1:
        raise ValueError(f"execute: 'workers' must be a positive integer, got {workers!r}.")
    if workers == 1:
        for step in steps:
            record(run_step(ctx, step))
            if on_done:
                on_done(step)
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch's thread pools
    waiting = list(steps)
    unfinished = {s.key for s in steps}
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(threads, os.getpid())
    ) as pool:
        pending: dict = {}
        while waiting or pending:
            ready = [s for s in waiting if not unfinished.intersection(s.needs)]
            waiting = [s for s in waiting if unfinished.intersection(s.needs)]
            for step in ready:  # the pool runs what it is given in that order
                pending[pool.submit(run_step, ctx, step)] = step
            if not pending:
                raise RuntimeError(f"Benchmark steps wait on steps that never run: {[s.key for s in waiting]}")
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                step = pending.pop(future)
                try:
                    result = future.result()
                except BaseException:  # a failed run stops the benchmark: the steps not started yet never start
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
                record(result)
                unfinished.discard(step.key)
                if on_done:
                    on_done(step)


def _init_worker(threads: int, parent_pid: int) -> None:
    import threading

    import torch

    torch.set_num_threads(threads)
    quiet_logs()
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True, name="parent-watch").start()


def _exit_when_orphaned(parent_pid: int, interval: float = 2.0, exit: Callable[[int], Any] = os._exit) -> None:
    """Stop this worker once the benchmark process that started it is gone (killed, say): a worker would otherwise
    go on with the runs already handed to it, on cores the resumed benchmark needs."""
    while os.getppid() == parent_pid:
        time.sleep(interval)
    logger.warning("The benchmark process %d is gone; this worker stops.", parent_pid)
    exit(1)


def _warnings_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


def quiet_logs() -> Callable[[], None]:
    """Silence per-iteration logs during the benchmark; returns the undo.

    A filter, not a level: MONAI's ``StatsHandler`` resets its logger to INFO each time one is made.
    """
    names = [
        "ignite",
        "monai_hybrid",
        "monai.bundle",
        "py.warnings",
        "monai",
        "monai.handlers.StatsHandler",
        "monai.inferers.inferer",
        "root",
    ]
    loggers = [logging.getLogger(n) for n in names] + [logging.getLogger()]
    for lg in loggers:
        lg.addFilter(_warnings_only)
    return lambda: [lg.removeFilter(_warnings_only) for lg in loggers]
