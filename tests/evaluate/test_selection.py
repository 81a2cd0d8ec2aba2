"""Shot selection strategies and shot orders (flows.evaluate.shot_selection), and the eval's --select / --orders."""
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import gsm8k_solver
from flows.build.flow import build_bank
from flows.core.specs import BuildSpec, EvalError, EvalSpec, Selection
from flows.evaluate.flow import evaluate
from flows.evaluate.prompts import BankView
from flows.evaluate.metrics import order_spread
from flows.evaluate.shot_selection import SelectionError, ShotSelector, parse_select, permuted, shot_order
from generators.fake import FakeGenerator


def view(n=10, lines=None):
    lines = lines or [1] * n
    rows = [{"shot_id": f"s{i:02d}", "problem_id": f"p{i}", "question": f"Question {i}?", "task": "gsm8k",
             "rationale": "\n".join(f"step {j}" for j in range(lines[i])), "source": "reinforced"} for i in range(n)]
    return BankView.from_rows("bank", rows)


def ids(shots):
    return [s.problem_id for s in shots]


def table_embed(vectors: dict[str, list[float]]):
    """A fake embedder: each text's vector from a table, L2-normalised."""
    def embed(group, texts):
        rows = np.array([vectors[t] for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return embed


def test_parse_select_keeps_order_and_names_bad_strategies():
    assert parse_select("random, similar,random") == ("random", "similar")
    assert parse_select(["complex"]) == ("complex",)
    with pytest.raises(SelectionError, match="random, similar, diverse, complex.*'nearest'"):
        parse_select("nearest")


def test_random_is_the_seeded_shot_order_and_nests():
    v = view()
    selector = ShotSelector(v, "random")
    assert selector.nested and selector.label == "random"
    assert ids(selector.shots("Q?", 4, seed=3)) == ids(shot_order(v, 3)[:4])
    assert ids(selector.shots("Q?", 8, seed=3))[:4] == ids(selector.shots("Other?", 4, seed=3))
    assert ids(selector.order(0)) != ids(selector.order(1))


def test_complex_puts_the_most_steps_first_and_keeps_the_seeds_order_on_ties():
    lines = [1, 5, 2, 5, 3, 1, 1, 4, 2, 1]
    selector = ShotSelector(view(lines=lines), "complex")
    order = selector.order(seed=7)
    assert [lines[int(s.problem_id[1:])] for s in order] == sorted(lines, reverse=True)
    random_order = ids(shot_order(view(lines=lines), 7))
    fives = [p for p in random_order if lines[int(p[1:])] == 5]
    assert ids(order[:2]) == fives  # the tie keeps the random order
    with pytest.raises(SelectionError, match="has none"):
        ShotSelector(BankView.from_rows("bare", [{"shot_id": "a", "problem_id": "a", "question": "Q?", "task": "gsm8k",
                                                  "rationale": None, "source": "unsupervised"}]), "complex")


def test_diverse_takes_one_shot_per_cluster_before_a_second_from_any():
    v = view(9)
    clusters = {f"Question {i}?": [[1, 0, 0], [0, 1, 0], [0, 0, 1]][i % 3] for i in range(9)}
    selector = ShotSelector(v, "diverse", embed=table_embed(clusters), embedder="fake:table")
    assert selector.label == "diverse/fake" and selector.nested
    for seed in range(5):
        order = selector.order(seed)
        assert sorted(ids(order)) == sorted(ids(v.shots))  # a permutation of the bank
        assert {int(p[1:]) % 3 for p in ids(order[:3])} == {0, 1, 2}
        assert order[0] == shot_order(v, seed)[0]  # the seed's random first shot starts it
    assert ids(selector.shots("Q?", 5, seed=1))[:3] == ids(selector.shots("Q?", 3, seed=1))
    with pytest.raises(SelectionError, match="needs an embedder"):
        ShotSelector(v, "diverse")


def test_similar_takes_the_nearest_shots_most_similar_last():
    v = view(6)
    vectors = {f"Question {i}?": [1.0, i / 10] for i in range(6)} | {"Test?": [1.0, 0.42]}
    selector = ShotSelector(v, "similar", embed=table_embed(vectors), embedder="fake:table")
    assert not selector.nested
    chosen = ids(selector.shots("Test?", 3, seed=0))
    sims = {p: np.dot(np.array([1.0, int(p[1:]) / 10]) / np.hypot(1.0, int(p[1:]) / 10),
                      np.array([1.0, 0.42]) / np.hypot(1.0, 0.42)) for p in ids(v.shots)}
    best = sorted(sims, key=sims.get, reverse=True)
    assert chosen == best[:3][::-1]  # the three most similar, the nearest last (next to the question)


def test_orders_are_seeded_permutations_of_the_same_shots():
    shots = view(12).shots[:8]
    assert permuted(list(shots), seed=0, order=0) == list(shots)
    others = [permuted(list(shots), seed=0, order=j) for j in (1, 2, 3)]
    assert all(sorted(ids(o)) == sorted(ids(shots)) for o in others)
    assert len({tuple(ids(o)) for o in others} | {tuple(ids(shots))}) == 4
    assert permuted(list(shots), seed=0, order=2) == others[1]  # seeded: the same again


def test_order_spread_on_known_scores():
    base = {"bank": "b", "source": "reinforced", "transfer": False, "k": 4, "k_label": "4", "seed": 0,
            "sample": 0, "extracted_flexible": None, "correct_flexible": False, "extracted_strict": "1"}
    rows = [base | {"item_id": str(i), "order": o, "correct_strict": i < o + 1} for o in range(3) for i in range(4)]
    spread = order_spread(pd.DataFrame(rows), {"0": "algebra", "1": "algebra", "2": "geometry", "3": "geometry"})
    overall = spread[spread["subject"] == "all"].iloc[0]
    assert (overall["orders"], overall["items"]) == (3, 4)
    assert (overall["min"], overall["max"], overall["mean"]) == (0.25, 0.75, 0.5)
    assert overall["std"] == pytest.approx(np.std([0.25, 0.5, 0.75]))
    geometry = spread[spread["subject"] == "geometry"].iloc[0]
    assert (geometry["min"], geometry["max"]) == (0.0, 0.5)


@pytest.mark.usefixtures("prefect_harness")
def test_eval_runs_selections_and_orders_as_cells_of_their_own(tmp_path, data_dir):
    bank = build_bank(BuildSpec(mode="ground-truth", selection=Selection(task="gsm8k", limit=12)),
                      data_dir=str(data_dir), out=str(tmp_path / "banks"))
    gen = FakeGenerator(gsm8k_solver())
    spec = EvalSpec(task="gsm8k", banks=(bank,), shots=(0, 2, 4), limit=5, max_tokens=32,
                    select=("random", "complex", "similar"), orders=2, embedder="tfidf")
    with pytest.warns(UserWarning, match="TF-IDF"):
        folder = evaluate(spec, data_dir=str(data_dir), out=str(tmp_path / "evals"), generator=gen).folder
    results = pq.read_table(f"{folder}/results.parquet").to_pandas()
    cells = results[results.k > 0].groupby(["select", "order", "k"]).size()
    assert set(cells.index) == {(s, o, k) for s in ("random", "complex", "similar/tfidf") for o in (0, 1) for k in (2, 4)}
    assert (cells == 5).all() and len(gen.calls) == 1 + 12
    names = sorted(p.name for p in (tmp_path / "evals").glob("*/cells/*.parquet"))
    assert f"{bank.rsplit('/', 1)[-1].removesuffix('.parquet')}-s0-k2.parquet" in names  # random order 0: old name
    assert any(n.endswith("-s0-similar-tfidf-o1-k4.parquet") for n in names)
    similar = results[(results["select"] == "similar/tfidf") & (results["k"] == 4) & (results["order"] == 0)]
    assert similar["prompt_hash"].nunique() == 5  # a prefix per question
    summary = open(f"{folder}/summary.md").read()
    assert "[complex]" in summary and "[similar/tfidf]" in summary and "accuracy spread over shot orders" in summary
    assert (tmp_path / "evals").joinpath(folder, "orders.png").stat().st_size > 1000
    spread = pd.read_csv(f"{folder}/orders.csv")
    assert set(spread["select"]) == {"random", "complex", "similar/tfidf"} and (spread["orders"] == 2).all()
    calls = len(gen.calls)
    evaluate(spec, data_dir=str(data_dir), out=str(tmp_path / "evals"), generator=gen)
    assert len(gen.calls) == calls  # every cell reused


@pytest.mark.usefixtures("prefect_harness")
def test_eval_refuses_max_with_similar_and_unknown_strategies(tmp_path, data_dir):
    bank = build_bank(BuildSpec(mode="ground-truth", selection=Selection(task="gsm8k", limit=6)),
                      data_dir=str(data_dir), out=str(tmp_path / "banks"))
    gen = FakeGenerator(gsm8k_solver())
    with pytest.raises(EvalError, match="--shots max needs prompts that nest"):
        evaluate(EvalSpec(task="gsm8k", banks=(bank,), shots=(2, "max"), limit=2, select=("similar",),
                          embedder="tfidf"), data_dir=str(data_dir), out=str(tmp_path / "evals"), generator=gen)
    with pytest.raises(EvalError, match="--select takes"):
        evaluate(EvalSpec(task="gsm8k", banks=(bank,), shots=(2,), limit=2, select=("best",)),
                 data_dir=str(data_dir), out=str(tmp_path / "evals"), generator=gen)
    with pytest.raises(EvalError, match="--orders must be at least 1"):
        evaluate(EvalSpec(task="gsm8k", banks=(bank,), shots=(2,), limit=2, orders=0),
                 data_dir=str(data_dir), out=str(tmp_path / "evals"), generator=gen)


def test_default_selection_keeps_the_random_order_zero_rows_and_names_the_rest():
    from flows.report.inputs import default_selection

    base = {"bank": "b", "k": 4, "item_id": "1"}
    old = pd.DataFrame([base, base | {"item_id": "2"}])  # cells written before select/order existed
    kept, note = default_selection(old)
    assert kept is old and note == ""
    rows = pd.DataFrame([base | {"select": "random", "order": 0}, base | {"select": "random", "order": 2},
                         base | {"select": "similar/minilm", "order": 0}, base | {"select": None, "order": None}])
    kept, note = default_selection(rows)
    assert kept.index.tolist() == [0, 3]
    assert note.startswith("2 result rows of other shot selections or orders (random order 2, similar/minilm)")


def test_default_lines_keep_the_random_selection_of_a_summary():
    from flows.evaluate.metrics import default_lines

    summary = pd.DataFrame({"bank": ["b"] * 3, "select": ["random", "complex", None], "accuracy": [0.3, 0.2, 0.1]})
    assert default_lines(summary)["accuracy"].tolist() == [0.3, 0.1]
    older = summary.drop(columns="select")
    assert default_lines(older) is older
