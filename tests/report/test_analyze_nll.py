"""Gold-solution NLL vs K (issue 11, part 2) with the fake generator's scripted logprob stream."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import DATA_DIR
from flows.report.nll import CELLS, NLLError, analyze, markdown, model_slug
from flows.build.flow import build_bank
from flows.core.specs import BuildSpec, EvalSpec, Selection
from flows.cli import main
from flows.core.data import load_problems
from flows.evaluate.flow import evaluate
from flows.evaluate.prompts import BankView, many_shot_prompt
from flows.runtime.banks import read_bank
from flows.core.tasks import TASKS
from generators import prompt_hash
from generators.base import Generator, Score
from generators.fake import FakeGenerator
from generators.openai_backend import OpenAIGenerator
from generators.prompts import FEW_SHOT

pytestmark = pytest.mark.usefixtures("prefect_harness")


def turns_logprobs(prompt, tokens):
    """Every target token gets logprob -1 / (1 + assistant turns in the prompt): NLL = 1/(K+1) for K solved shots."""
    turns = sum(m["role"] == "assistant" for m in prompt)
    return [-1.0 / (1 + turns)] * len(tokens)


def test_score_from_a_scripted_stream():
    gen = FakeGenerator(logprob_script=lambda prompt, tokens: [-0.5, -1.0, -1.5, -3.0][:len(tokens)])
    assert isinstance(gen, Generator)
    prompt = [{"role": "user", "content": "What is 2+2?"}]
    four, two = gen.score([prompt, prompt], ["so it is 4", "it's 4"])
    assert four == Score((-0.5, -1.0, -1.5, -3.0))
    assert (four.tokens, four.sum_nll, four.mean_nll) == (4, 6.0, 1.5)
    assert (two.tokens, two.sum_nll, two.mean_nll) == (2, 1.5, 0.75)
    assert math.isnan(Score(()).mean_nll)
    assert gen.scored == [([prompt, prompt], ["so it is 4", "it's 4"])]
    with pytest.raises(ValueError, match="2 prompts and 1 targets"):
        gen.score([prompt, prompt], ["x"])


def test_openai_backend_says_it_cannot_score():
    gen = OpenAIGenerator.__new__(OpenAIGenerator)  # no server needed to learn that it cannot score
    with pytest.raises(NotImplementedError, match="OpenAIGenerator"):
        gen.score([[{"role": "user", "content": "x"}]], ["y"])


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """An eval folder: a ground-truth and an unsupervised bank, K = 0, 2, 4, two seeds, 4 items."""
    root = tmp_path_factory.mktemp("nll")
    gt = build_bank(BuildSpec(mode="ground-truth", selection=Selection(task="gsm8k", limit=6)),
                    data_dir=str(DATA_DIR), out=str(root / "banks"))
    unsup = build_bank(BuildSpec(mode="unsupervised", selection=Selection(task="gsm8k", limit=5)),
                       data_dir=str(DATA_DIR), out=str(root / "banks"))
    spec = EvalSpec(task="gsm8k", banks=(gt, unsup), shots=(0, 2, 4), seeds=2, limit=4, max_tokens=16)
    folder = evaluate(spec, data_dir=str(DATA_DIR), out=str(root / "evals"), generator=FakeGenerator()).folder
    return Path(folder), Path(gt).stem, Path(unsup).stem


def test_nll_table_matches_hand_computed_values(results):
    folder, gt, unsup = results
    gen = FakeGenerator(logprob_script=turns_logprobs, model_id="fake-scorer")
    written = analyze(folder, gen, limit=3, data_dir=str(DATA_DIR))
    table = written.table.set_index(["bank", "k_label"])
    unsup_nll = 1 / (2 + len(FEW_SHOT["gsm8k"]))  # "Understood." plus the fixed worked examples, at every K
    expected = {("none", "0"): 1.0, (gt, "2"): 1 / 3, (gt, "4"): 1 / 5, (unsup, "2"): unsup_nll, (unsup, "4"): unsup_nll}
    assert set(table.index) == set(expected)
    for key, nll in expected.items():
        row = table.loc[key]
        assert row["mean_nll"] == pytest.approx(nll) and row["token_nll"] == pytest.approx(nll)
        assert row["ci_low"] == pytest.approx(nll) and row["ci_high"] == pytest.approx(nll)
        assert (row["items"], row["seeds"]) == (3, 1 if key[0] == "none" else 2)
    # The targets are the reference solutions (calculator annotations stripped, "The answer is N" appended).
    items = list(dict.fromkeys(pd.read_parquet(folder / "results.parquet")["item_id"]))[:3]
    by_id = {p.id: p for p in load_problems("gsm8k", "test", DATA_DIR)}
    golds = [TASKS["gsm8k"].gold_rationale(by_id[i]) for i in items]
    assert all("<<" not in g and "The answer is" in g for g in golds)
    tokens = sum(len(g.split()) for g in golds)
    assert table.loc[(gt, "2"), "tokens"] == 2 * tokens  # two seeds
    # Accuracy comes from the eval's summary.csv (strict).
    summary = pd.read_csv(folder / "summary.csv")
    strict = summary[(summary["metric"] == "strict") & (summary["bank"] == gt) & (summary["k_label"].astype(str) == "4")]
    assert table.loc[(gt, "4"), "accuracy_strict"] == pytest.approx(strict["accuracy"].iloc[0])
    assert [p.name for p in written.paths] == ["analysis-nll.csv", "analysis-nll.png"]
    assert written.paths[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pd.read_csv(written.paths[0])["mean_nll"].tolist() == pytest.approx(written.table["mean_nll"].tolist())
    assert written.scored == 3 * (1 + 2 * 2 * 2) and written.reused == 0  # 9 cells, 3 items each


def test_rerun_reuses_checkpoints_and_scores_only_new_items(results):
    folder, gt, _ = results
    analyze(folder, FakeGenerator(logprob_script=turns_logprobs, model_id="ckpt"), limit=2, data_dir=str(DATA_DIR))
    again = FakeGenerator(logprob_script=turns_logprobs, model_id="ckpt")
    written = analyze(folder, again, limit=2, data_dir=str(DATA_DIR))
    assert again.scored == [] and (written.scored, written.reused) == (0, 18)
    more = FakeGenerator(logprob_script=turns_logprobs, model_id="ckpt")
    written = analyze(folder, more, limit=3, data_dir=str(DATA_DIR))
    assert (written.scored, written.reused) == (9, 18)
    assert all(len(prompts) == 1 for prompts, _ in more.scored)  # one new item per cell
    cell = pd.read_parquet(folder / CELLS / model_slug("ckpt") / f"{gt}-s1-k4.parquet")
    assert len(cell) == 3 and set(cell["model_id"]) == {"ckpt"}
    assert cell["mean_nll"].tolist() == pytest.approx([0.2] * 3)


def test_a_prompt_that_cannot_be_rebuilt_is_refused(results, tmp_path):
    folder, gt, _ = results
    copy = tmp_path / "evals" / folder.name
    shutil.copytree(folder, copy)
    shutil.copytree(folder.parents[3] / "banks", tmp_path / "banks")  # <root>/evals/<eval>/runs/<run>
    rows = pd.read_parquet(copy / "results.parquet")
    rows.loc[rows["bank"] == gt, "prompt_hash"] = "0" * 16  # as if the bank had changed since the eval
    rows.to_parquet(copy / "results.parquet", index=False)
    with pytest.raises(NLLError, match="does not match the row's prompt_hash"):
        analyze(copy, FakeGenerator(), limit=1, data_dir=str(DATA_DIR))


def test_rows_from_before_shot_ids_have_their_prompts_rebuilt(results, tmp_path):
    """An older folder (no shot_ids) still reads: its random order-0 prompts are rebuilt as the eval made them,
    checked against each row's prompt_hash, and score exactly as the recorded ones do."""
    folder, gt, _ = results
    copy = tmp_path / "evals" / folder.name
    shutil.copytree(folder, copy)
    shutil.copytree(folder.parents[3] / "banks", tmp_path / "banks")
    rows = pd.read_parquet(copy / "results.parquet")
    rows["shot_ids"] = None  # rows written before the column: their prompts' shots are not recorded
    rows.to_parquet(copy / "results.parquet", index=False)
    recorded = FakeGenerator(logprob_script=turns_logprobs, model_id="legacy-recorded")  # no checkpoint reused
    rebuilt = FakeGenerator(logprob_script=turns_logprobs, model_id="legacy-rebuilt")
    analyze(folder, recorded, limit=1, data_dir=str(DATA_DIR))
    analyze(copy, rebuilt, limit=1, data_dir=str(DATA_DIR))
    prompts = lambda gen: sorted(prompt_hash(p) for batch, _ in gen.scored for p in batch)  # noqa: E731
    assert prompts(rebuilt) and prompts(rebuilt) == prompts(recorded)


def test_a_similar_selection_in_a_second_order_scores_the_prompts_its_rows_recorded(tmp_path):
    """Per-question shots (``similar``) in order 1: each scored prompt is the one made of the row's shot_ids, hashes
    as the row's prompt_hash, and is checkpointed under the cell's name."""
    bank = build_bank(BuildSpec(mode="ground-truth", selection=Selection(task="gsm8k", limit=8)),
                      data_dir=str(DATA_DIR), out=str(tmp_path / "banks"))
    spec = EvalSpec(task="gsm8k", banks=(bank,), shots=(0, 3), limit=3, max_tokens=16, select=("random", "similar"),
                    orders=2, embedder="tfidf")
    with pytest.warns(UserWarning, match="TF-IDF"):
        folder = Path(evaluate(spec, data_dir=str(DATA_DIR), out=str(tmp_path / "evals"),
                               generator=FakeGenerator()).folder)
    gen = FakeGenerator(logprob_script=turns_logprobs, model_id="sel")
    written = analyze(folder, gen, data_dir=str(DATA_DIR))
    label = Path(bank).stem
    table = written.table.set_index(["select", "k_label"])
    assert set(table.index) == {("random", "0"), ("random", "3"), ("similar/tfidf", "3")}
    assert table.loc[("similar/tfidf", "3"), "orders"] == 2 and table.loc[("similar/tfidf", "3"), "units"] == 2 * 3
    assert table.loc[("similar/tfidf", "3"), "mean_nll"] == pytest.approx(1 / 4)
    rows = pd.read_parquet(folder / "results.parquet")
    cell = rows[(rows["select"] == "similar/tfidf") & (rows["order"] == 1) & (rows["k"] == 3)].drop_duplicates("item_id")
    assert cell["prompt_hash"].nunique() == 3  # a prompt per question
    shots = {s.shot_id: s for s in BankView.from_rows(label, read_bank(bank)[0].to_pylist()).shots}
    questions = {p.id: p.question for p in load_problems("gsm8k", "test", DATA_DIR)}
    scored = {prompt_hash(p): p for prompts, _ in gen.scored for p in prompts}
    for row in cell.itertuples():
        recorded = many_shot_prompt("gsm8k", [shots[i] for i in row.shot_ids], questions[row.item_id])
        assert scored[row.prompt_hash] == recorded and prompt_hash(recorded) == row.prompt_hash
    checkpoint = pd.read_parquet(folder / CELLS / "sel" / f"{label}-s0-similar-tfidf-o1-k3.parquet")
    assert dict(zip(checkpoint["item_id"], checkpoint["prompt_hash"])) == dict(zip(cell["item_id"],
                                                                                 cell["prompt_hash"]))
    assert "| gsm8k | " + label + " [similar/tfidf] | 3 | 3 | 0.2500 |" in markdown(written.table)


def test_cli_writes_the_analysis(results, monkeypatch, capsys):
    folder, gt, _ = results
    import generators

    monkeypatch.setitem(generators._CACHE, ("cli-fake", (), 0, None, True),
                        FakeGenerator(logprob_script=turns_logprobs, model_id="cli-fake"))
    assert main(["analyze", "nll", str(folder), "--model", "cli-fake", "--limit", "2",
                 "--data-dir", str(DATA_DIR)]) == 0
    out = capsys.readouterr().out
    assert f"| gsm8k | {gt} | 4 | 2 | 0.2000 |" in out
    assert str(folder / "analysis-nll.png") in out


def test_a_checkpoint_scored_with_another_prompt_is_scored_again(results):
    """A checkpoint row whose prompt hash differs from the eval row's (a changed test item or bank) is not trusted:
    that item is scored again and the checkpoint updated; the other items are reused."""
    folder, gt, _ = results
    analyze(folder, FakeGenerator(logprob_script=turns_logprobs, model_id="stale"), limit=2, data_dir=str(DATA_DIR))
    path = folder / CELLS / model_slug("stale") / f"{gt}-s1-k4.parquet"
    cell = pd.read_parquet(path)
    cell.loc[0, ["prompt_hash", "mean_nll"]] = ["0" * 16, 9.0]
    cell.to_parquet(path, index=False)
    again = FakeGenerator(logprob_script=turns_logprobs, model_id="stale")
    written = analyze(folder, again, limit=2, data_dir=str(DATA_DIR))
    assert written.scored == 1 and written.reused == 17
    fixed = pd.read_parquet(path)
    assert len(fixed) == 2 and fixed["mean_nll"].tolist() == pytest.approx([0.2] * 2)
    assert "0" * 16 not in set(fixed["prompt_hash"])
