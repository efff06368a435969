"""Thread pools sized to what shares the machine (monai_hybrid.threads)."""

from __future__ import annotations

import pytest
import torch

from monai_hybrid import threads


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("jobs, cores, share", [(3, 2, 1), (3, 8, 2), (1, 2, 2), (2, 16, 8), (4, 1, 1)])
def test_thread_share_by_hand(jobs, cores, share):
    assert threads.thread_share(jobs, cores) == share


def test_use_threads_sets_the_pool_and_logs_why(monkeypatch, caplog):
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    with caplog.at_level("INFO", logger="monai_hybrid.threads"):
        assert threads.use_threads("auto", jobs=3, who="the app") == 1
        assert torch.get_num_threads() == 1
        assert threads.use_threads(None, jobs=2) == 2 and torch.get_num_threads() == 2
        assert threads.use_threads("3", jobs=2) == 3 and torch.get_num_threads() == 3
    assert "the app: 1 PyTorch thread (its share of 4 cores among 3 jobs)" in caplog.text
    assert "this process: 3 PyTorch threads (as set)" in caplog.text


@pytest.mark.parametrize("value", [0, -1, "two", True, 1.5])
def test_bad_thread_counts_are_named(value):
    with pytest.raises(ValueError, match=r"'threads' must be a positive integer or auto, got .*--conf threads 1"):
        threads.use_threads(value)


def test_bad_shares_are_named():
    with pytest.raises(ValueError, match="thread_share: 'jobs' must be a positive integer, got 0"):
        threads.thread_share(0)
    with pytest.raises(ValueError, match="thread_share: 'cores' must be a positive integer or None, got 0"):
        threads.thread_share(2, 0)
