"""The typed seams of a build: shot sources per mode, tasks, chunk stats, seeds and the one config reader."""
import random
from collections import Counter

import pytest

import verifiers
from flows.ablate import bank_spec
from flows.core.specs import BuildError, BuildSpec, EvalSpec, Rounds, Selection, config_key
from flows.cli import build_parser
from flows.config import ConfigError, build_spec, eval_spec
from flows.core.problem import Problem
from flows.core.schema import SOURCES as SHOT_SOURCES
from flows.build.refresh import version_seed
from flows.schedule import bank_job_spec
from flows.core.seeds import derive_seed, seeded_rng
from flows.build.rounds import ChunkStats, round_seed
from flows.build.sources import MODES, REFRESH_MODES, SOURCES, chunks, key_config, source_for
from flows.core.tasks import TASKS, cot_template

# Bank keys computed by the code before the redesign (commit 6f726b0) with verifiers.VERSION = "test-version":
# a refactor that changes one of them changes which banks users' builds reuse.
GOLDEN_KEYS = {
    "gsm8k-ground-truth": (dict(mode="ground-truth", selection=Selection(task="gsm8k", limit=64)),
                           "15f831ae40df", "cc27b0d92073"),
    "math-unsupervised": (dict(mode="unsupervised", selection=Selection(task="math", limit=64, levels=(1, 2))),
                          "af96645e7ad0", "c28984d391a7"),
    "gsm8k-reinforced": (dict(mode="reinforced", selection=Selection(task="gsm8k", limit=64)),
                         "c9688ed134b8", "e4283e12c2c4"),
    "gsm8k-reinforced-zero-shot-valid": (dict(mode="reinforced", selection=Selection(task="gsm8k"), few_shot=False,
                                              require_valid_steps=True), "b3d1fcaefafb", "edc5976a83ca"),
    "math-reinforced-iterate": (dict(mode="reinforced", selection=Selection(task="math", limit=512, levels=(1, 2, 3)),
                                     iterate_from="/x/math-reinforced-abc.parquet", prompt_shots=32),
                                "7efe6a29aa45", "e6ba544cdeee"),
    "math-generated": (dict(mode="generated", selection=Selection(task="math", limit=64)),
                       "40e43dca5033", "2707beb73a07"),
}


@pytest.mark.parametrize("name", list(GOLDEN_KEYS))
def test_bank_keys_are_those_of_before_the_redesign(monkeypatch, name):
    monkeypatch.setattr(verifiers, "VERSION", "test-version")
    kwargs, key, chunk_store_key = GOLDEN_KEYS[name]
    spec = BuildSpec(**kwargs)
    assert config_key(key_config(spec)) == key
    assert config_key(key_config(spec, with_limit=False)) == chunk_store_key


def test_template_ids_and_hashes_are_unchanged():
    """Provenance records these; the hashes are part of reinforced bank keys."""
    assert (cot_template("gsm8k", True).id, cot_template("gsm8k", True).hash) == ("gsm8k-cot-fewshot-v1",
                                                                                  "413e64d03a9126ff")
    assert (cot_template("math", True).id, cot_template("math", True).hash) == ("math-cot-minerva4-v1",
                                                                                "b60f6b687acd6dac")
    assert (cot_template("gsm8k", False).id, cot_template("gsm8k", False).hash) == ("gsm8k-cot-zeroshot-v1",
                                                                                    "3cf31052f75b7118")


def test_one_source_per_mode_and_what_each_needs():
    assert set(MODES) == set(SHOT_SOURCES)
    assert {m for m, s in SOURCES.items() if s.needs_model} == {"reinforced", "generated"}
    assert [m for m, s in SOURCES.items() if s.sequential] == ["generated"]
    assert set(REFRESH_MODES) == {"ground-truth", "reinforced", "unsupervised"}
    reinforced = BuildSpec(mode="reinforced", selection=Selection(task="math"))
    assert len(source_for(reinforced.mode).excluded_questions(reinforced)) == 4  # the Minerva prompt's problems
    truth = BuildSpec(mode="ground-truth", selection=Selection(task="math"))
    assert source_for(truth.mode).excluded_questions(truth) == set() and source_for(truth.mode).template(truth) is None


@pytest.mark.parametrize("mode", ["ground-truth", "unsupervised", "generated"])
def test_iterate_from_is_refused_outside_reinforced(mode):
    """It used to be accepted and ignored (generated mode overwrote the prompt shots with its pool)."""
    spec = BuildSpec(mode=mode, selection=Selection(task="gsm8k"), iterate_from="/x/bank.parquet")
    with pytest.raises(BuildError, match=f"iterate_from applies to reinforced builds, not '{mode}'"):
        source_for(spec.mode).prepare(spec, [], None)


def test_unknown_mode_names_the_known_ones():
    with pytest.raises(BuildError, match="unknown mode 'silver'.*ground-truth"):
        source_for("silver")


def test_chunks_keep_order_and_keys_depend_on_index_and_ids():
    problems = [Problem(f"p{i}", "gsm8k", "train", f"q{i}", None, "1") for i in range(7)]
    parts = chunks(problems, 3)
    assert [c.index for c in parts] == [0, 1, 2] and [len(c.problems) for c in parts] == [3, 3, 1]
    assert [p for c in parts for p in c.problems] == problems
    assert len({c.key for c in parts}) == 3 and chunks(problems, 3)[1].key == parts[1].key


def test_chunk_stats_round_trip_total_and_old_checkpoints():
    a = ChunkStats(tried=4, samples=8, solved_per_round=[2, 1], methods=Counter(numeric=6), errors=Counter(t=1))
    b = ChunkStats(tried=3, samples=4, solved_per_round=[1], methods=Counter(numeric=1, symbolic=3))
    assert ChunkStats.from_json(a.to_json()) == a
    total = ChunkStats.total([a, b])
    assert (total.tried, total.samples, total.solved_per_round) == (7, 12, [3, 1])
    assert total.methods == Counter(numeric=7, symbolic=3) and total.errors == Counter(t=1)
    old = ChunkStats.from_json({"tried": 5, "kept": 5, "retired_counter": 9})  # an older or newer checkpoint
    assert (old.tried, old.kept, old.samples) == (5, 5, 0)


def test_seeds_are_stable_and_match_the_older_derivations():
    """The values the per-module derivations gave before (chunk 1 round 2 of seed 0; refresh v2 of seed 0)."""
    assert derive_seed(0, 1, 2) == round_seed(0, 1, 2) == 1905264133
    assert version_seed(0, 2) == 1800788556 and version_seed(5, 1) == 5
    a, b = list(range(30)), list(range(30))
    random.Random("order/7").shuffle(a)
    seeded_rng("order", 7).shuffle(b)
    assert a == b and derive_seed("refresh", 0, 2) != derive_seed("refresh", 0, 3)


def test_tasks_registry_parses_and_formats():
    gsm8k = TASKS["gsm8k"]
    p = gsm8k.parse({"question": "Q?", "answer": "2 + 2 = <<2+2=4>>4\n#### 4"}, "train", "row 1")
    assert (p.task, p.answer, gsm8k.gold_rationale(p)) == ("gsm8k", "4", "2 + 2 = 4\nThe answer is 4")
    assert gsm8k.query_shape("How many?\nSolution: 4") == "How many?" and gsm8k.query_shape("2 = 2?") is None
    assert TASKS["math"].query_shape("Line one.\nLine two.") == "Line one.\nLine two."
    assert TASKS["math"].hub["test"][0] == "HuggingFaceH4/MATH-500"


def test_build_spec_defaults_exist_once():
    """An entry with only the required keys is the dataclasses' defaults, whichever front-end reads it."""
    assert build_spec({"mode": "reinforced", "task": "gsm8k"}) == BuildSpec(mode="reinforced",
                                                                            selection=Selection(task="gsm8k"))
    assert Rounds().max_tokens == 512
    cli = build_parser().parse_args(["bank", "build", "--task", "math", "--mode", "reinforced", "--levels", "1,2",
                                     "--limit", "64", "--zero-shot"])
    from_cli = build_spec({k: v for k, v in vars(cli).items() if k in
                           {"mode", "task", "levels", "limit", "zero_shot", "model"}})
    from_ablation = bank_spec({"name": "b", "mode": "reinforced", "task": "math", "levels": [1, 2], "limit": 64,
                               "zero_shot": True}, "embedded")
    from_pipeline, workers = bank_job_spec({"name": "job", "kind": "bank", "mode": "reinforced", "task": "math",
                                            "levels": [1, 2], "limit": 64, "zero_shot": True}, "embedded")
    assert from_cli == from_ablation == from_pipeline and workers == 1
    assert from_cli.few_shot is False and from_cli.rounds == Rounds()


def test_config_errors_name_the_place_and_the_key():
    with pytest.raises(ConfigError, match=r"bank b1: unknown key\(s\) \['sample'\]"):
        build_spec({"mode": "reinforced", "task": "gsm8k", "sample": 4}, "bank b1")
    with pytest.raises(ConfigError, match=r"missing key\(s\) \['task'\]"):
        build_spec({"mode": "reinforced"})
    with pytest.raises(BuildError, match="set the model once"):
        bank_spec({"name": "b", "mode": "reinforced", "task": "gsm8k", "model": "x"}, "embedded")


def test_eval_spec_temperature_rule_and_defaults():
    assert eval_spec({"task": "gsm8k"}) == EvalSpec(task="gsm8k")
    assert eval_spec({"task": "gsm8k", "samples": 5}).temperature == 0.7
    assert eval_spec({"task": "gsm8k", "samples": 5, "temperature": 0.3}).temperature == 0.3
    spec = eval_spec({"task": "math", "shots": [0, 4, "max"], "select": "random,similar", "banks": ["a.parquet"]})
    assert (spec.shots, spec.select, spec.banks) == ((0, 4, "max"), ("random", "similar"), ("a.parquet",))
    cli = build_parser().parse_args(["eval", "--task", "math", "--bank", "a.parquet", "--shots", "0,4,max",
                                     "--select", "random,similar"])
    assert eval_spec({k: v for k, v in vars(cli).items() if k in {"task", "banks", "shots", "select", "model"}}) == spec
