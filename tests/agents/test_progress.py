"""Long steps inside a run report their progress with an estimate of the time left."""

from __future__ import annotations

from agents.services.progress import status_progress


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_lines_are_throttled_and_the_estimate_is_the_mean_step_time_times_the_steps_left():
    lines: list[str] = []
    clock = _Clock()
    progress = status_progress(lines.append, "ml_signal SP500", every=2.0, clock=clock)
    progress("walk-forward folds", 0, 10)  # first line, no estimate yet
    for done in range(1, 11):
        clock.t = done * 1.5  # 1.5 s per fold
        progress("walk-forward folds", done, 10)
    assert lines[0] == "ml_signal SP500: walk-forward folds 0/10"
    assert lines[1] == "ml_signal SP500: walk-forward folds 2/10, about 12 s left"  # 3 s for 2 folds, 8 left
    assert lines[-1] == "ml_signal SP500: walk-forward folds 10/10, done in 15 s"
    assert len(lines) == 6  # at most every 2 s of fake time (0, 3, 6, 9, 12 s and the end), not every fold
    progress("training the model", 0, 0)
    assert lines[-1] == "ml_signal SP500: training the model"


def test_no_status_means_no_progress():
    assert status_progress(None, "x") is None


def test_a_first_run_says_which_model_it_trains_and_how_far_it_is(tmp_path):
    import warnings

    from agents.config import Secrets, load_settings
    from agents.runtime.runner import Runner
    from agents.services.context import RunRequest
    from analytics import DataQualityWarning

    path = tmp_path / "fast.toml"
    path.write_text(f'home = "{tmp_path / "home"}"\n[ml]\nrefit_every = 252\n')
    lines: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        with Runner(load_settings(path), Secrets.from_env({})) as runner:
            runner.ctx.status = lines.append
            runner.start(RunRequest(("SP500",), as_of="2006-12-29"))
            first = list(lines)
            lines.clear()
            runner.start(RunRequest(("SP500",), as_of="2006-12-29"))
    assert "ml_signal SP500: training the SP500 XGBoost model (none stored yet; stored and reused by later runs)" in first
    folds = [line for line in first if line.startswith("ml_signal SP500: walk-forward folds")]
    assert folds and folds[-1].endswith("s") and ", done in " in folds[-1]
    assert not any("training" in line for line in lines)  # the second run reuses the stored model
