from __future__ import annotations

from ignite.engine import Engine

from monai_hybrid.engines import TrainingProgressBar, every


def test_every_filters_iterations():
    f = every(3)
    assert [i for i in range(1, 10) if f(None, i)] == [3, 6, 9]
    assert not any(every(0)(None, i) for i in range(1, 10))


def test_progress_bar_shows_the_loss_terms(capsys):
    engine = Engine(lambda e, b: {"loss": 1.5, "loss_image": 0.5, "pred": None})
    TrainingProgressBar(persist=True).attach(engine)
    engine.run(range(3), max_epochs=1)
    err = capsys.readouterr().err
    assert "3/3" in err and "loss_image=0.5" in err


def test_disabled_progress_bar_shows_nothing(capsys):
    engine = Engine(lambda e, b: {"loss": 1.0})
    TrainingProgressBar(disable=True).attach(engine)
    engine.run(range(3), max_epochs=1)
    assert capsys.readouterr().err == ""
