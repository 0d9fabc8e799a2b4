"""`follow(query)`: awaitTermination with the stream's progress as a bar, on a stand-in query that
reports micro-batches while it runs (no Spark): every batch counted once, a failure raised as
awaitTermination raises it, and the bar closed either way."""

from __future__ import annotations

import pytest

from lakehouse_helpers.runtime import progress
from lakehouse_helpers.runtime.settings import HEADLESS_ENV


class Progress:
    def __init__(self, batch: int, rows: int):
        self.batchId, self.numInputRows = batch, rows


class Query:
    """Reports one more batch at each wait; stops (or fails) after `batches`."""

    name = "stand-in"

    def __init__(self, batches: list[int], failure: Exception | None = None):
        self.batches, self.failure, self.reported = batches, failure, []
        self.waits = 0

    @property
    def recentProgress(self):  # noqa: N802 - Spark's name
        return list(self.reported)

    def awaitTermination(self, timeout=None):  # noqa: N802 - Spark's name
        self.waits += 1
        if len(self.reported) < len(self.batches):
            self.reported.append(Progress(len(self.reported), self.batches[len(self.reported)]))
            if self.failure is not None and len(self.reported) == len(self.batches):
                raise self.failure
            return False if timeout is not None else None
        if self.failure is not None:
            raise self.failure
        return True


def test_every_batch_is_counted_once_and_the_bar_shows_them(monkeypatch, capsys):
    monkeypatch.setenv(HEADLESS_ENV, "1")  # plain text, as the runner executes a notebook
    assert progress.follow(Query([700, 0, 1280]), "Kafka -> raw") == 1980
    assert "Kafka->raw:1980rows" in capsys.readouterr().err.replace(" ", "")


def test_a_failing_query_raises_as_await_termination_does(monkeypatch, capsys):
    monkeypatch.setenv(HEADLESS_ENV, "1")
    with pytest.raises(RuntimeError, match="UNKNOWN_FIELD_EXCEPTION"):
        progress.follow(Query([10, 20], RuntimeError("[UNKNOWN_FIELD_EXCEPTION] promo_code")))
    assert "stand-in:10rows" in capsys.readouterr().err.replace(" ", "")  # closed at the failure


def test_without_tqdm_it_waits_the_same(monkeypatch):
    monkeypatch.setattr(progress, "progress_bar", lambda: None)
    assert progress.follow(Query([5, 6])) == 11
