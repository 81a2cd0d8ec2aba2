"""The bank-building flow with the scripted fake generator (real data, real verifiers, real Parquet)."""
import functools

import pyarrow.parquet as pq
import pytest

import flows.build.flow as build
import verifiers
from conftest import bank_content, gsm8k_solver, small_spec
from flows.runtime.banks import read_bank
from flows.build.flow import build_bank
from flows.core.specs import BuildError, Rounds
from generators.fake import FakeGenerator

pytestmark = pytest.mark.usefixtures("prefect_harness")


spec = functools.partial(small_spec, samples=3)  # 8 problems in chunks of 4, 3 samples, 1 round


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(build, "run_chunk", build.run_chunk.with_options(retry_delay_seconds=0))


def test_reinforced_keeps_only_verified_shots(tmp_path, data_dir):
    gen = FakeGenerator(gsm8k_solver(correct_every=2))
    path = build_bank(spec(), data_dir=str(data_dir), out=str(tmp_path), generator=gen)
    table, meta = read_bank(path)
    rows = table.to_pylist()
    assert len(rows) == 8 and len({r["problem_id"] for r in rows}) == 8
    for r in rows:
        assert verifiers.verify(r["gold_answer"], r["rationale"], fmt="number").correct
        assert r["source"] == "reinforced" and r["model"] == "fake" and r["template_id"].startswith("gsm8k-cot")
        assert r["verifier_version"] == verifiers.VERSION and r["seed"] is not None and r["sampling"]
    assert meta["report"]["problems tried"] == 8 and meta["report"]["solved per round"] == [8]
    assert len(gen.calls) == 2 and all(len(p) == 4 for p, _ in gen.calls)  # one batched call per chunk
    assert gen.calls[0][1].n == 3


def test_all_distinct_keeps_up_to_cap_and_drops_duplicates(tmp_path, data_dir):
    solver = gsm8k_solver()
    dup = lambda prompt, sample, rng: solver(prompt, sample % 2, rng)  # samples 0,2 identical; 1,3 identical
    rounds = Rounds(samples=4, temperature=0.7, retry_temperature=1.0, max_tokens=64, rounds=1, keep="all-distinct", cap=3)
    path = build_bank(spec(rounds=rounds), data_dir=str(data_dir), out=str(tmp_path), generator=FakeGenerator(dup))
    df = pq.read_table(path).to_pandas()
    assert df.groupby("problem_id").size().eq(2).all()
    assert not df.duplicated(["problem_id", "rationale"]).any()


def test_rounds_retry_unsolved_problems_at_retry_temperature(tmp_path, data_dir):
    solver = gsm8k_solver()
    gen = FakeGenerator()
    gen.script = lambda prompt, sample, rng: solver(prompt, sample, rng) if len(gen.calls) > 1 else "no idea"
    rounds = Rounds(samples=2, temperature=0.5, retry_temperature=1.1, max_tokens=64, rounds=3)
    path = build_bank(spec(limit=4, rounds=rounds), data_dir=str(data_dir), out=str(tmp_path), generator=gen)
    _, meta = read_bank(path)
    assert meta["report"]["solved per round"] == [0, 4]
    assert [s.temperature for _, s in gen.calls] == [0.5, 1.1]
    assert len({s.seed for _, s in gen.calls}) == 2
    assert set(pq.read_table(path).column("round").to_pylist()) == {1}


def test_resume_after_crash_gives_the_same_bank(tmp_path, data_dir):
    solver = gsm8k_solver(correct_every=2)
    reference = build_bank(spec(limit=12), data_dir=str(data_dir), out=str(tmp_path / "a"), generator=FakeGenerator(solver))

    def crash_on_second_call(prompt, sample, rng):
        if len(crashing.calls) == 2:
            raise RuntimeError("injected crash")
        return solver(prompt, sample, rng)
    crashing = FakeGenerator(crash_on_second_call)
    with pytest.raises(RuntimeError, match="injected crash"):
        build_bank(spec(limit=12), data_dir=str(data_dir), out=str(tmp_path / "b"), generator=crashing)
    assert len(crashing.calls) == 2 and not list((tmp_path / "b").glob("*.parquet"))
    resumed_gen = FakeGenerator(solver)
    resumed = build_bank(spec(limit=12), data_dir=str(data_dir), out=str(tmp_path / "b"), generator=resumed_gen)
    assert len(resumed_gen.calls) == 2  # chunks 2 and 3 only
    assert bank_content(resumed).equals(bank_content(reference))


def test_model_errors_are_retried(tmp_path, data_dir):
    gen = FakeGenerator(gsm8k_solver(), fail_on_call=[1])
    path = build_bank(spec(limit=4), data_dir=str(data_dir), out=str(tmp_path), generator=gen)
    assert len(gen.calls) == 2 and pq.read_metadata(path).num_rows == 4


def test_finished_build_is_a_noop_and_a_larger_limit_reuses_chunks(tmp_path, data_dir):
    solver = gsm8k_solver()
    first = build_bank(spec(limit=8), data_dir=str(data_dir), out=str(tmp_path), generator=FakeGenerator(solver))
    again = FakeGenerator(solver)
    assert build_bank(spec(limit=8), data_dir=str(data_dir), out=str(tmp_path), generator=again) == first
    assert again.calls == []
    grow = FakeGenerator(solver)
    bigger = build_bank(spec(limit=16), data_dir=str(data_dir), out=str(tmp_path), generator=grow)
    assert bigger != first and len(grow.calls) == 2
    assert set(bank_content(first)["shot_id"]) < set(bank_content(bigger)["shot_id"])


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "bogus"}, "unknown mode 'bogus'"),
    ({"levels": (9,)}, "the selection is empty"),
])
def test_bad_input_writes_no_bank(tmp_path, data_dir, kwargs, message):
    with pytest.raises(BuildError, match=message):
        build_bank(spec(**kwargs), data_dir=str(data_dir), out=str(tmp_path), generator=FakeGenerator())
    assert not list(tmp_path.glob("*.parquet"))


def test_model_returning_nothing_writes_no_bank(tmp_path, data_dir):
    with pytest.raises(BuildError, match="returned no text for any of 24 samples"):
        build_bank(spec(), data_dir=str(data_dir), out=str(tmp_path), generator=FakeGenerator(lambda *a: ""))
    assert not list(tmp_path.glob("*.parquet"))


def test_ground_truth_and_unsupervised_banks(tmp_path, data_dir):
    gt = read_bank(build_bank(spec("ground-truth", limit=10), data_dir=str(data_dir), out=str(tmp_path)))[0].to_pylist()
    assert len(gt) == 10 and all(r["rationale"].endswith(f"The answer is {r['answer']}") for r in gt)
    assert all("<<" not in r["rationale"] and r["model"] is None for r in gt)
    un = read_bank(build_bank(spec("unsupervised", limit=10), data_dir=str(data_dir), out=str(tmp_path)))[0].to_pylist()
    assert len(un) == 10 and all(r["rationale"] is None and r["source"] == "unsupervised" for r in un)


def test_generated_queries_are_new_and_distinct(tmp_path, data_dir):
    def writer(prompt, sample, rng):
        n = rng.randrange(6)
        if n == 0:
            return "Solution: 42"  # malformed
        if n == 1:
            return "Problem 4: A farmer has 12 cows and buys 3 more. How many cows does he have now?"
        return f"A baker makes {rng.randrange(10**6)} rolls and sells {rng.randrange(1000)} of them. How many are left?"
    path = build_bank(spec("generated", limit=12), data_dir=str(data_dir), out=str(tmp_path), generator=FakeGenerator(writer))
    table, meta = read_bank(path)
    rows = table.to_pylist()
    assert rows and len({r["question"] for r in rows}) == len(rows)
    assert all(r["source"] == "generated" and len(r["seed_problem_ids"]) == 3 for r in rows)
    assert meta["report"]["requested"] == 12 and meta["report"]["kept"] == len(rows)
    cows = [r for r in rows if "cows" in r["question"]]
    assert len(cows) <= 1


def test_iterate_from_solves_every_problem_but_the_prompts_own_with_the_bank_as_prompt(tmp_path, data_dir):
    solver = gsm8k_solver()
    first_gen = FakeGenerator(lambda prompt, sample, rng: solver(prompt, sample, rng)
                              if len(prompt[-1]["content"]) % 2 else "no")
    first = build_bank(spec(limit=8), data_dir=str(data_dir), out=str(tmp_path), generator=first_gen)
    solved = set(pq.read_table(first).column("problem_id").to_pylist())
    assert 0 < len(solved) < 8
    second_gen = FakeGenerator(solver)
    second = build_bank(spec(limit=8, iterate_from=first, prompt_shots=3), data_dir=str(data_dir),
                        out=str(tmp_path), generator=second_gen)
    prompts = second_gen.calls[0][0]
    shots = pq.read_table(first).to_pylist()[:3]
    in_prompt = {s["problem_id"] for s in shots}
    assert sum(len(p) for p, _ in second_gen.calls) == 8 - len(in_prompt)  # solved ones too, but not the prompt's
    assert all(p[5]["content"] == shots[0]["question"] and p[6]["content"] == shots[0]["rationale"] for p in prompts)
    assert all(len(p) == 1 + 2 * (2 + 3) + 1 for p in prompts)  # system, 2 template examples, 3 bank shots, question
    again = set(pq.read_table(second).column("problem_id").to_pylist())
    assert again.isdisjoint(in_prompt) and again & (solved - in_prompt)
    with pytest.raises(BuildError, match="has no gsm8k shots with rationales"):
        build_bank(spec(limit=8, iterate_from=build_bank(spec("unsupervised", limit=4), data_dir=str(data_dir),
                                                         out=str(tmp_path))),
                   data_dir=str(data_dir), out=str(tmp_path), generator=second_gen)
