"""BIG-Bench Hard as shipped task files (``bbh/<task>``): answer formats on real targets, the seeded split, the
3-shot chain-of-thought prompt as in its source file, and keys that name no absolute path."""
from __future__ import annotations

import json
import os
import re

import pytest

import verifiers
from flows.core.problem import DataError
from flows.core.taskfile import load_task_file
from flows.core.taskpackaged import packaged_refs
from conftest import DATA_DIR

PAPER = ("dyck_languages", "word_sorting", "multistep_arithmetic_two", "object_counting", "geometric_shapes",
         "logical_deduction_seven_objects", "tracking_shuffled_objects_seven_objects",
         "salient_translation_error_detection")
BBH = DATA_DIR / "bbh"


@pytest.fixture(scope="module")
def tasks():
    if not (BBH / "tasks").is_dir():
        pytest.fail(f"BIG-Bench Hard not found under {BBH}; set MANYSHOT_DATA_DIR")
    return {name: load_task_file(f"bbh/{name}") for name in PAPER}


def test_all_27_tasks_are_shipped_and_the_paper_formats_are_the_right_ones(tasks):
    assert len(packaged_refs()) == 27
    assert {n: t.fmt.name for n, t in tasks.items()} == {
        "dyck_languages": "exact", "word_sorting": "exact", "multistep_arithmetic_two": "number",
        "object_counting": "number", "geometric_shapes": "choice", "logical_deduction_seven_objects": "choice",
        "tracking_shuffled_objects_seven_objects": "choice", "salient_translation_error_detection": "choice"}
    for t in tasks.values():
        assert (len(t.problems["train"]), len(t.problems["test"])) == (150, 100) and not t.unparsed
        assert 'End with "So the answer is X."' in t.answer_format and len(t.cot_examples) == 3


# (task, a real gold target, a near miss that must be rejected)
NEAR_MISSES = [
    ("dyck_languages", "] ) }", "] } )"),
    ("dyck_languages", "] ) }", "] )"),
    ("word_sorting", "aberdeen fairfax", "fairfax aberdeen"),
    ("multistep_arithmetic_two", "-330", "330"),
    ("object_counting", "8", "18"),
    ("geometric_shapes", "(C)", "(G)"),
    ("logical_deduction_seven_objects", "(C)", "(CD)"),
    ("tracking_shuffled_objects_seven_objects", "(A)", "(A) or (B)"),
    ("salient_translation_error_detection", "(E)", "(F)"),
]


@pytest.mark.parametrize("name", PAPER)
def test_every_gold_target_is_accepted_as_the_cot_prompt_ends(tasks, name):
    """Both directions on the real data: each gold target, said as "So the answer is X.", is right; each other
    target of the task that differs is wrong."""
    task = tasks[name]
    problems = [*task.problems["train"], *task.problems["test"]]
    for p in problems:
        assert verifiers.verify(p.answer, f"Let's think step by step.\nSo the answer is {p.answer}.", task.fmt,
                                question=p.question).correct, p.id
    for p in problems[:40]:
        other = next(q.answer for q in problems if verifiers.parse_gold(q.answer, task.fmt, p.question)
                     not in (None, verifiers.parse_gold(p.answer, task.fmt, p.question)))
        assert not verifiers.verify(p.answer, f"So the answer is {other}.", task.fmt, question=p.question).correct


@pytest.mark.parametrize("name, gold, miss", NEAR_MISSES)
def test_a_near_miss_is_rejected(tasks, name, gold, miss):
    task = tasks[name]
    question = next((p.question for p in task.problems["test"] if p.answer == gold), None)
    assert verifiers.verify(gold, f"So the answer is {gold}.", task.fmt, question=question).correct
    assert not verifiers.verify(gold, f"So the answer is {miss}.", task.fmt, question=question).correct


def test_dyck_answers_may_drop_the_spaces_and_word_lists_the_case(tasks):
    assert verifiers.verify("] ) }", "So the answer is ])}.", tasks["dyck_languages"].fmt).correct
    assert verifiers.verify("aberdeen fairfax", "So the answer is Aberdeen Fairfax.", tasks["word_sorting"].fmt).correct


def test_the_split_is_seeded_and_stable(tasks):
    assert [p.id for p in tasks["object_counting"].problems["test"][:5]] == [
        "bbh-object_counting/008bc13ed0cb182c", "bbh-object_counting/b390091a54ceb980",
        "bbh-object_counting/31a879976b9e7a8f", "bbh-object_counting/50cfaa22458a20a1",
        "bbh-object_counting/ffc938205c146cbb"]
    train, test = ({p.id for p in tasks["word_sorting"].problems[s]} for s in ("train", "test"))
    assert not train & test and len(train | test) == 250


@pytest.mark.parametrize("name", ["object_counting", "geometric_shapes", "dyck_languages"])
def test_the_3_shot_prompt_renders_as_in_the_source_file(tasks, name):
    task = tasks[name]
    source = (BBH / "cot-prompts" / f"{name}.txt").read_text()
    body = source[source.index("\nQ: ") + 1:].strip()
    prompt = task.template(few_shot=True).prompt("THE QUESTION")
    assert prompt[0] == {"role": "system", "content": task.answer_format}
    turns = prompt[1:-1]
    assert [m["role"] for m in turns] == ["user", "assistant"] * 3 and prompt[-1]["content"] == "THE QUESTION"
    rendered = "\n\n".join(f"Q: {q['content']}\nA: {a['content']}" for q, a in zip(turns[::2], turns[1::2]))
    assert rendered == body
    assert all(a["content"].startswith("Let's think step by step.") and
               re.search(r"So the answer is [^\n]+\.$", a["content"]) for a in turns[1::2])


def test_the_definition_names_the_data_root_not_its_path(tasks):
    definition = tasks["word_sorting"].definition
    assert definition["data"]["root"] == "data_dir" and definition["data"]["path"] == "bbh/tasks/word_sorting.json"
    assert str(DATA_DIR) not in json.dumps({k: v for k, v in definition.items() if k != "file_sha256"})


def test_a_data_dir_root_without_a_data_folder_says_what_to_set(monkeypatch):
    monkeypatch.delenv("MANYSHOT_DATA_DIR")
    with pytest.raises(DataError, match=r"root = \"data_dir\" but no data folder is set; pass --data-dir"):
        load_task_file("bbh/word_sorting")
    assert "MANYSHOT_DATA_DIR" not in os.environ


def test_duplicate_questions_are_dropped_where_the_file_says_so():
    task = load_task_file("bbh/sports_understanding")
    assert len(task.problems["train"]) + len(task.problems["test"]) == 248  # 2 repeated questions of 250
    conflicting = load_task_file("bbh/causal_judgement")  # 2 questions asked twice with opposite answers
    assert len(conflicting.problems["train"]) + len(conflicting.problems["test"]) == 183


def test_the_paper_config_builds_its_banks_the_papers_way():
    from flows.ablate import bank_spec, load_spec

    spec = load_spec("configs/paper-bbh.toml")
    builds = {b["name"]: bank_spec(b, spec["model"]) for b in spec["banks"]}
    reinforced = [b for b in builds.values() if b.mode == "reinforced"]
    assert len(reinforced) == 4 and all((b.rounds.samples, b.rounds.temperature, b.selection.limit) == (5, 1.0, 150)
                                        for b in reinforced)  # 5 samples: sized to this machine (the paper: 10)
    assert sorted({b.mode for b in builds.values()}) == ["ground-truth", "human-cot", "reinforced", "unsupervised"]
    assert spec["limit"] == 100 and len(spec["evals"]) == 4
    for e in spec["evals"]:  # one eval per task: every source on the same items, paired against the human CoT
        assert e["shots"] == [3, 25, "max"] and e["reference"].endswith("-human-cot") and len(e["banks"]) == 4
        assert {builds[name].mode for name in e["banks"]} == {"ground-truth", "human-cot", "reinforced",
                                                              "unsupervised"}


def test_data_dir_on_the_command_line_holds_for_that_command(monkeypatch, capsys):
    from flows.cli import main

    monkeypatch.delenv("MANYSHOT_DATA_DIR")
    assert main(["task", "check", "bbh/object_counting", "--data-dir", str(DATA_DIR)]) == 0
    assert "problems: train 150, test 100" in capsys.readouterr().out and "MANYSHOT_DATA_DIR" not in os.environ
