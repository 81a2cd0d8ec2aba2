"""Progress of builds and evals: the bookkeeping on a fake clock, plain lines when stderr is not a terminal."""
import re

import pytest

from conftest import gsm8k_solver
from flows.build.flow import build_bank
from flows.core.specs import BuildSpec, EvalSpec, Rounds, Selection
from flows.evaluate.flow import evaluate
from flows.runtime.progress import Metered, Progress, make_renderer, tracking
from flows.runtime.tracker import LineRenderer, Tracker, clock_text
from generators.fake import FakeGenerator


class FakeClock:
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


def test_eta_counts_only_units_made_in_this_run():
    clock = FakeClock()
    bar = Tracker("eval gsm8k", total=10, unit="cells", clock=clock)
    assert bar.eta is None and bar.tokens_per_second is None  # nothing made yet: no pace
    bar.advance(2, reused=True)  # checkpoints: done at once, no pace either
    bar.advance(solved=0, skipped=True)
    assert (bar.done, bar.eta) == (3, None)
    clock.tick(30)
    bar.advance(solved=4)
    bar.advance(solved=3)  # 2 cells made in 30 s: 15 s each, 5 cells left
    assert bar.eta == pytest.approx(75.0) and bar.elapsed == pytest.approx(30.0) and bar.solved == 7
    bar.advance(5)
    assert bar.eta == 0.0


def test_tokens_per_second_is_over_generation_time_only():
    clock = FakeClock()
    bar = Tracker("bank", total=2, unit="chunks", clock=clock)
    clock.tick(60)  # model loading: not generation
    bar.generated(300, 2.0)
    bar.generated(100, 2.0)
    assert bar.tokens_per_second == pytest.approx(100.0)
    line = bar.line()
    assert line == "progress bank: chunks 0/2 | solved 0 | 100.0 tok/s | elapsed 0:01:00 | ETA ?"


def test_fields_name_reused_skipped_rounds_and_the_note():
    clock = FakeClock()
    bar = Tracker("bank gsm8k reinforced", total=4, unit="chunks", clock=clock)
    bar.advance(reused=True, solved=5)
    bar.rounds, bar.note = 2, "chunk 2 round 2/2: solved 3 of 4"
    clock.tick(3725)
    assert bar.fields() == ["chunks 1/4 (1 reused)", "rounds 2", "solved 5", "- tok/s", "elapsed 1:02:05", "ETA ?",
                            "chunk 2 round 2/2: solved 3 of 4"]
    assert clock_text(59.6) == "0:01:00" and clock_text(None) == "?"


def test_line_renderer_writes_each_finished_unit_and_otherwise_at_most_once_per_interval(capsys):
    clock = FakeClock()
    progress = Progress(LineRenderer(interval=10, clock=clock), clock=clock)
    progress.start(3, "cells", "eval gsm8k", solved_word="correct")
    progress.generated(50, 1.0)  # within the interval: no line
    clock.tick(11)
    progress.generated(50, 1.0)  # past it: a line
    progress.note("cell 2/3: generating")  # just written: no line
    progress.advance(solved=2)  # a finished cell: always a line
    progress.close()  # the last state
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["progress eval gsm8k: cells 0/3 | correct 0 | 50.0 tok/s | elapsed 0:00:11 | ETA ?",
                     "progress eval gsm8k: cells 1/3 | correct 2 | 50.0 tok/s | elapsed 0:00:11 | ETA 0:00:22",
                     "progress eval gsm8k: cells 1/3 | correct 2 | 50.0 tok/s | elapsed 0:00:11 | ETA 0:00:22"]


def test_metered_generator_reports_tokens_and_time_to_the_open_bar(monkeypatch):
    monkeypatch.setenv("MANYSHOT_PROGRESS", "0")
    clock = FakeClock()

    def slow(prompts, sampling):  # each call takes 4 s on the fake clock
        clock.tick(4)
        return inner_generate(prompts, sampling)

    fake = FakeGenerator(lambda prompt, sample, rng: "one two three")
    inner_generate, fake.generate = fake.generate, slow
    gen = Metered(fake, clock=clock)
    from generators import Sampling

    with tracking(1, "cells", "eval") as progress:
        gen.generate([[{"role": "user", "content": "q"}]] * 2, Sampling(n=2))
        bar = progress.bars[-1]
        assert (bar.tokens, bar.generation_seconds) == (12, 4.0)
    assert gen.model_id == "fake" and gen.count_tokens([{"role": "user", "content": "a b"}]) == 6
    gen.generate([[{"role": "user", "content": "q"}]], Sampling())  # no bar open: nothing to tell, no error


def test_progress_modes(monkeypatch):
    monkeypatch.setenv("MANYSHOT_PROGRESS", "0")
    assert type(make_renderer()).__name__ == "Renderer"
    monkeypatch.setenv("MANYSHOT_PROGRESS", "lines")
    assert isinstance(make_renderer(), LineRenderer)
    monkeypatch.setenv("MANYSHOT_PROGRESS", "sometimes")
    with pytest.raises(ValueError, match="MANYSHOT_PROGRESS='sometimes'"):
        make_renderer()


LINE = re.compile(r"^progress (?P<label>[^:]+): (?P<unit>chunks|cells) (?P<done>\d+)/(?P<total>\d+).*?"
                  r"\| (?:solved|correct) (?P<solved>\d+) \| (?P<rate>[\d.]+|-) tok/s \| elapsed \d+:\d\d:\d\d "
                  r"\| ETA (?P<eta>\d+:\d\d:\d\d|\?)")


def progress_lines(err: str) -> list[dict]:
    return [m.groupdict() for m in map(LINE.match, err.splitlines()) if m]


@pytest.mark.usefixtures("prefect_harness")
def test_build_and_eval_print_plain_progress_lines_when_stderr_is_not_a_terminal(tmp_path, data_dir, capsys,
                                                                                monkeypatch):
    monkeypatch.delenv("MANYSHOT_PROGRESS", raising=False)
    gen = FakeGenerator(gsm8k_solver(correct_every=2))
    spec = BuildSpec(mode="reinforced", selection=Selection(task="gsm8k", limit=6), chunk_size=3,
                     rounds=Rounds(samples=2, temperature=0.7, retry_temperature=1.0, max_tokens=64, rounds=2))
    bank = build_bank(spec, data_dir=str(data_dir), out=str(tmp_path / "banks"), generator=gen)
    captured = capsys.readouterr()
    assert "progress" not in captured.out  # stdout's last line stays the CLI's bank path
    build = progress_lines(captured.err)
    assert [(b["label"], b["done"], b["total"]) for b in build] == [("bank gsm8k reinforced", "1", "2"),
                                                                    ("bank gsm8k reinforced", "2", "2"),
                                                                    ("bank gsm8k reinforced", "2", "2")]
    assert build[-1]["solved"] == "6" and build[-1]["rate"] != "-" and build[-1]["eta"] == "0:00:00"
    assert "chunks 1/2 | rounds 1 | solved 3 |" in captured.err  # every problem solved in its chunk's first round
    assert "chunks 2/2 | rounds 2 | solved 6 |" in captured.err

    ev = EvalSpec(task="gsm8k", banks=(bank,), shots=(0, 2), seeds=2, limit=3, max_tokens=64)
    evaluate(ev, data_dir=str(data_dir), out=str(tmp_path / "evals"), generator=FakeGenerator(gsm8k_solver()))
    lines = progress_lines(capsys.readouterr().err)
    assert [(x["unit"], x["done"], x["total"]) for x in lines] == [("cells", str(n), "3") for n in (1, 2, 3, 3)]
    assert lines[-1]["solved"] == "9" and lines[-1]["eta"] == "0:00:00" and float(lines[-1]["rate"]) > 0

    evaluate(ev, data_dir=str(data_dir), out=str(tmp_path / "evals"), generator=FakeGenerator(gsm8k_solver()))
    err = capsys.readouterr().err
    assert "cells 3/3 (3 reused) | correct 9 | - tok/s" in err  # a rerun reuses every cell

    monkeypatch.setenv("MANYSHOT_PROGRESS", "0")
    evaluate(ev, data_dir=str(data_dir), out=str(tmp_path / "evals"), generator=FakeGenerator(gsm8k_solver()))
    assert "progress eval" not in capsys.readouterr().err


ABLATION = """
shots = [0, 2]
seeds = 1
limit = 3
max_tokens = 64

[[banks]]
name = "gt"
mode = "ground-truth"
task = "gsm8k"
limit = 4

[[banks]]
name = "reinforced"
mode = "reinforced"
task = "gsm8k"
limit = 4
samples = 2

[[evals]]
task = "gsm8k"
"""


@pytest.mark.usefixtures("prefect_harness")
def test_ablation_lines_show_its_steps_and_the_builds_and_evals_inside(tmp_path, data_dir, capsys, monkeypatch):
    from flows.build import flow as build
    from flows.evaluate import flow as evaluation
    from flows.ablate import run_ablation

    monkeypatch.delenv("MANYSHOT_PROGRESS", raising=False)
    gen = FakeGenerator(gsm8k_solver())
    monkeypatch.setattr(build, "load_generator", lambda *a, **k: gen)
    monkeypatch.setattr(evaluation, "load_generator", lambda *a, **k: gen)
    config = tmp_path / "grid.toml"
    config.write_text(ABLATION)
    run_ablation(str(config), data_dir=str(data_dir), out=str(tmp_path / "runs"))
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("progress ")]
    outer = [line for line in err if line.startswith("progress ablation grid: ")]
    assert [line.split(" | ")[0] for line in outer] == [f"progress ablation grid: banks and evals {n}/3"
                                                        for n in (1, 2, 3, 3)]
    assert " solved " not in outer[-1] and "- tok/s" not in outer[-1]  # the reinforced build's tokens count here too
    assert outer[-1].endswith("ETA 0:00:00")
    assert "progress bank gsm8k reinforced: chunks 1/1 | rounds 1 | solved 4 |" in "\n".join(err)
    assert "progress eval gsm8k: cells 3/3 | correct 9 |" in "\n".join(err)
