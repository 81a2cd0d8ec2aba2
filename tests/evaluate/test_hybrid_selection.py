"""The hybrid shot selection (flows.evaluate.shot_selection): a shared random block, then each question's M nearest."""
import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import gsm8k_solver
from flows.build.flow import build_bank
from flows.config import eval_spec
from flows.core.cellkey import CellKey
from flows.core.data import load_problems, select
from flows.core.problem import Problem
from flows.core.specs import BuildSpec, EvalError, EvalSpec, Selection
from flows.evaluate.flow import bank_views, evaluate
from flows.evaluate.prompts import BankView, contaminated
from flows.evaluate.shot_selection import SelectionError, ShotSelector, make_selectors, parse_select, permuted, shot_order
from generators.fake import FakeGenerator

N = 16
# Shot i's question sits at angle i * 5 degrees; a test question at angle a: the nearest shots are the i closest to a.
ANGLES = {f"Question {i}?": i * 5.0 for i in range(N)} | {"Near 9?": 9.3 * 5, "Near 2?": 2.4 * 5, "Near 14?": 13.8 * 5}


def bank(n=N):
    rows = [{"shot_id": f"s{i:02d}", "problem_id": f"p{i}", "question": f"Question {i}?", "task": "gsm8k",
             "rationale": "step", "source": "reinforced"} for i in range(n)]
    return BankView.from_rows("bank", rows)


def embed(group, texts):
    return np.array([[math.cos(math.radians(ANGLES[t])), math.sin(math.radians(ANGLES[t]))] for t in texts],
                    dtype=np.float32)


def selector(name="hybrid", exclude=frozenset()):
    return ShotSelector(bank(), name, exclude=set(exclude), embed=embed, embedder="fake:angles")


def ids(shots):
    return [s.problem_id for s in shots]


def nearest(question, m, taken=()):
    """The obvious answer: the m shots closest in angle, not taken, the nearest last."""
    left = [i for i in range(N) if f"p{i}" not in taken]
    return [f"p{i}" for i in sorted(left, key=lambda i: abs(i * 5.0 - ANGLES[question]))[:m]][::-1]


QUESTIONS = ("Near 9?", "Near 2?", "Near 14?")


def test_names_labels_and_cell_keys_always_carry_m():
    assert parse_select("random, hybrid, hybrid4,hybrid8") == ("random", "hybrid4", "hybrid8")
    for bad in ("hybrid0", "hybridx", "hybrid-2"):
        with pytest.raises(SelectionError, match="hybridM"):
            parse_select(bad)
    assert eval_spec({"task": "gsm8k", "select": ["hybrid"]}).select == ("hybrid4",)
    assert selector().label == "hybrid4/fake" and selector("hybrid8").label == "hybrid8/fake"
    assert not selector().nested and selector().nearest == 4
    key = CellKey("bank", 0, 16, "hybrid8/minilm", 2)
    assert key.name == "bank-s0-hybrid8-minilm-o2-k16" and CellKey.parse(key.name) == key
    with pytest.raises(SelectionError, match="needs an embedder"):
        ShotSelector(bank(), "hybrid")


def test_the_shared_block_is_the_random_order_for_every_question_and_nests_across_k():
    s = selector("hybrid4")
    for seed in (0, 3):
        order = ids(shot_order(bank(), seed))
        for k in (5, 8, 12):
            blocks = {tuple(ids(s.shots(q, k, seed))[:k - 4]) for q in QUESTIONS}
            assert blocks == {tuple(order[:k - 4])}  # one block, shared by every question: the seed's random order
        assert ids(s.shots("Near 2?", 8, seed))[:4] == ids(s.shots("Near 9?", 12, seed))[:4]  # K=8's in K=12's


def test_the_last_m_are_each_questions_nearest_outside_the_block_most_similar_last():
    for name, m in (("hybrid", 4), ("hybrid2", 2), ("hybrid5", 5)):
        s = selector(name)
        for seed in (0, 1, 2):
            for k in (m + 1, 9, N):
                for q in QUESTIONS:
                    chosen = ids(s.shots(q, k, seed))
                    block = chosen[:k - m]
                    assert len(chosen) == k and len(set(chosen)) == k  # no shot twice
                    assert chosen[k - m:] == nearest(q, m, taken=block)
    # a nearest shot that the block already holds is not repeated: the next nearest takes its place
    s, seed = selector("hybrid2"), 0
    block = ids(shot_order(bank(), seed))[:6]
    tail = ids(s.shots("Near 9?", 8, seed))[6:]
    assert tail == nearest("Near 9?", 2, taken=block) and not set(tail) & set(block)


def test_k_up_to_m_is_similar_in_every_order():
    h = selector("hybrid4")
    similar = ShotSelector(bank(), "similar", embed=embed, embedder="fake:angles")
    for k in (1, 3, 4):
        for order in (0, 1, 2):
            assert ids(h.shots("Near 2?", k, 5, order)) == ids(similar.shots("Near 2?", k, 5, order))
    assert ids(h.shots("Near 2?", 4, 5)) == nearest("Near 2?", 4)


def test_orders_permute_the_shared_block_and_keep_the_nearest_last():
    s, k, seed = selector("hybrid4"), 12, 1
    base = ids(s.shots("Near 9?", k, seed))
    others = [ids(s.shots("Near 9?", k, seed, order)) for order in (1, 2, 3)]
    for order, chosen in zip((1, 2, 3), others):
        assert chosen[:8] == ids(permuted(list(s.shots("Near 9?", k, seed)[:8]), seed, order))
        assert chosen[8:] == base[8:]  # the nearest stay last, in their order
        assert {tuple(ids(s.shots(q, k, seed, order))[:8]) for q in QUESTIONS} == {tuple(chosen[:8])}
    assert len({tuple(o[:8]) for o in others} | {tuple(base[:8])}) == 4


def test_the_questions_own_problem_never_appears():
    view = bank()
    leaks = contaminated(view, [Problem("t9", "gsm8k", "test", "Question 9?", None, "1")])
    assert leaks == {"p9"}
    s = ShotSelector(view, "hybrid2", exclude=leaks, embed=embed, embedder="fake:angles")
    assert s.usable == N - 1
    for seed in range(4):
        for k in (1, 2, 6, N - 1):
            chosen = ids(s.shots("Question 9?", k, seed))  # its own problem is its nearest shot, and excluded
            assert "p9" not in chosen and len(set(chosen)) == k
    assert set(ids(s.shots("Question 9?", 2, 0))) == {"p8", "p10"}  # the nearest after its own


@pytest.mark.usefixtures("prefect_harness")
def test_eval_with_hybrid_writes_a_shared_block_and_each_questions_nearest(tmp_path, data_dir):
    path = build_bank(BuildSpec(mode="ground-truth", selection=Selection(task="gsm8k", limit=12)),
                      data_dir=str(data_dir), out=str(tmp_path / "banks"))
    gen = FakeGenerator(gsm8k_solver())
    spec = EvalSpec(task="gsm8k", banks=(path,), shots=(3, 6), limit=5, max_tokens=32, select=("random", "hybrid2"),
                    embedder="tfidf")
    with pytest.warns(UserWarning, match="TF-IDF"):
        folder = evaluate(spec, data_dir=str(data_dir), out=str(tmp_path / "evals"), generator=gen).folder
    results = pq.read_table(f"{folder}/results.parquet").to_pandas()
    assert set(results["select"]) == {"random", "hybrid2/tfidf"}
    assert len(gen.calls) == 4 and all(len(prompts) == 5 for prompts, _ in gen.calls)  # one batch of 5 per cell
    names = sorted(p.name for p in (tmp_path / "evals").glob("*/cells/*.parquet"))
    assert any(n.endswith("-s0-hybrid2-tfidf-k6.parquet") for n in names)
    assert "[hybrid2/tfidf]" in open(f"{folder}/summary.md").read()

    items = select(load_problems("gsm8k", "test", str(data_dir)), limit=5, seed=0)
    views = bank_views((path,))
    with pytest.warns(UserWarning, match="TF-IDF"):
        rebuilt = make_selectors(views, ("hybrid2",), {}, embedder="tfidf", questions=[p.question for p in items])
    by_id = {p.id: p.question for p in items}
    random_ids = {k: list(results[(results["select"] == "random") & (results["k"] == k)]["shot_ids"].iloc[0])
                  for k in (3, 6)}
    for k in (3, 6):
        cell = results[(results["select"] == "hybrid2/tfidf") & (results["k"] == k)]
        assert len(cell) == 5 and cell["prompt_hash"].nunique() == 5
        for item_id, shot_ids in zip(cell["item_id"], cell["shot_ids"]):
            shot_ids = list(shot_ids)
            assert shot_ids[:k - 2] == random_ids[k][:k - 2]  # the shared block: the random cell's prefix
            assert len(set(shot_ids)) == k
            expected = rebuilt[views[0].label, "hybrid2"].shots(by_id[item_id], k, 0)
            assert shot_ids == [s.shot_id for s in expected]
    with pytest.raises(EvalError, match="--shots max needs prompts that nest; --select hybrid2"):
        evaluate(EvalSpec(task="gsm8k", banks=(path,), shots=(2, "max"), limit=2, select=("hybrid2",),
                          embedder="tfidf"), data_dir=str(data_dir), out=str(tmp_path / "evals"), generator=gen)
