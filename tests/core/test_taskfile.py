"""Task files (flows.core.taskfile): loading, validation errors naming the file/key/row, keys, task check and list."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flows.build.sources import key_config
from flows.cli import main
from flows.taskcli import check_command, list_command
from flows.core.problem import DataError
from flows.core.taskfile import load_task_file, resolve
from flows.core.tasks import TASKS

CSV = "ID,Body,Question,Answer,Kind\n" + "".join(
    f"q{i},Ann has {i} apples and gets {i + 2} more.,How many apples does she have?,{2 * i + 2},"
    f"{'add' if i % 2 else 'more'}\n" for i in range(20))
TOML = """name = "apples"
[data]
path = "data/apples.csv"
[split]
test = 5
seed = 0
[fields]
question = "{Body} {Question}"
answer = "{Answer}"
group = "{Kind}"
[answer]
format = "number"
"""


def write(folder: Path, toml: str = TOML, csv: str = CSV, data_name: str = "apples.csv") -> Path:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / data_name).write_text(csv)
    (folder / "apples.toml").write_text(toml)
    return folder / "apples.toml"


def error(path: Path, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        load_task_file(path, **kwargs)
    return str(info.value)


def test_a_task_file_loads_with_a_seeded_holdout(tmp_path):
    task = load_task_file(write(tmp_path))
    train, test = task.problems["train"], task.problems["test"]
    assert len(train) == 15 and len(test) == 5 and not {p.id for p in train} & {p.id for p in test}
    assert test[0].question.endswith("How many apples does she have?") and test[0].subject in ("add", "more")
    assert task.fmt.name == "number" and not task.has_rationale
    again = load_task_file(write(tmp_path / "elsewhere"))
    assert again.digest == task.digest and [p.id for p in again.problems["test"]] == [p.id for p in test]


def test_a_changed_task_file_or_data_changes_the_digest(tmp_path):
    base = load_task_file(write(tmp_path / "a")).digest
    assert load_task_file(write(tmp_path / "b", TOML.replace("seed = 0", "seed = 1"))).digest != base
    assert load_task_file(write(tmp_path / "c", csv=CSV.replace("q3,", "q33,"))).digest != base
    assert "/" not in json.dumps(load_task_file(write(tmp_path / "d")).definition["data"]["path"]).strip('"data/')


@pytest.mark.parametrize("toml,csv,expected", [
    (TOML + "color = 1\n", CSV, "unknown key(s) ['color']"),
    (TOML.replace("[answer]", "[answer]\nunits = 1"), CSV, "unknown key(s) ['units'] in [answer]"),
    (TOML.replace("{Question}", "{Query}"), CSV, "names column 'Query'"),
    (TOML.replace("apples.csv", "pears.csv"), CSV, "data file not found"),
    (TOML, CSV + "q99,too,many,fields,here,extra\n", "apples.csv:22: 6 fields, the header has 5"),
    (TOML.replace('group = "{Kind}"', 'id = "{ID}"'), CSV.replace("q5,", "q4,"), "duplicate id 'apples/q4'"),
    (TOML, CSV.replace("has 5 apples and gets 7", "has 4 apples and gets 6"), "(the same question; set [fields] id"),
    (TOML.replace("test = 5", "test = 20"), CSV, "test = 20 is not smaller than the 20 usable rows"),
    (TOML.replace('format = "number"', 'format = "yesno"'), CSV, "unknown answer format 'yesno'"),
    (TOML.replace("[split]\ntest = 5\nseed = 0\n", ""), CSV, "missing [split] table"),
    (TOML.replace('answer = "{Answer}"', 'answer = "{Body}"'), CSV, "do not parse as number"),
])
def test_bad_input_is_one_clear_error(tmp_path, toml, csv, expected):
    message = error(write(tmp_path, toml, csv))
    assert expected in message, message


def test_a_missing_column_lists_the_columns(tmp_path):
    message = error(write(tmp_path, TOML.replace("{Question}", "{Query}")))
    assert "columns: ['ID', 'Body', 'Question', 'Answer', 'Kind']" in message and "[fields] question" in message


def test_malformed_jsonl_names_file_and_line(tmp_path):
    toml = TOML.replace("apples.csv", "apples.jsonl").replace("{Body} {Question}", "{q}").replace(
        "{Answer}", "{a}").replace('group = "{Kind}"\n', "")
    rows = "".join(json.dumps({"q": f"What is {i} + 1?", "a": i + 1}) + "\n" for i in range(9)) + "{oops\n"
    assert "apples.jsonl:10: not valid JSON" in error(write(tmp_path, toml, rows, "apples.jsonl"))
    rows = rows.replace("{oops\n", json.dumps({"q": "What is 1 + 1?"}) + "\n")
    assert "apples.jsonl:10: no column(s) ['a'] in this row" in error(write(tmp_path, toml, rows, "apples.jsonl"))
    bad_spec = toml.replace('answer = "{a}"', 'answer = "{a:.2f}"')
    assert "apples.jsonl:1: a [fields] template cannot render" in error(write(tmp_path, bad_spec, rows, "apples.jsonl"))


def test_unparsed_gold_answers_refused_over_a_few_percent_or_skipped_on_request(tmp_path):
    bad = CSV.replace(",2,more", ",two,more").replace(",6,more", ",six,more")
    path = write(tmp_path, csv=bad)
    message = error(path)
    assert "2 of 20 gold answers do not parse as number" in message and "apples.csv:2: 'two'" in message
    task = load_task_file(path, allow_unparsed=True)
    assert len(task.unparsed) == 2 and sum(len(v) for v in task.problems.values()) == 18


def test_labels_from_the_data_json_records_and_a_cot_prompt_file(tmp_path):
    rows = {"canary": "x", "examples": [{"input": f"Is {i} even?", "target": "Yes" if i % 2 == 0 else "No"}
                                        for i in range(12)]}
    (tmp_path / "cot.txt").write_text("Preamble line\n-----\nTask description.\n\nQ: Is 2 even?\nA: Let's think. "
                                      "2 = 2 * 1. So the answer is Yes.\n\nQ: Is 3 even?\nA: No remainder? "
                                      "There is one. So the answer is No.")
    toml = ('name = "parity"\n[data]\npath = "data/p.json"\nrecords = "examples"\n[split]\ntest = 4\n'
            '[fields]\nquestion = "{input}"\nanswer = "{target}"\n[answer]\nformat = "label"\n'
            '[prompt]\nexamples_file = "cot.txt"\n')
    path = write(tmp_path, toml, json.dumps(rows), "p.json")
    task = load_task_file(path)
    assert task.fmt.labels == ("No", "Yes") and len(task.cot_examples) == 2
    assert task.cot_examples[0] == ("Is 2 even?", "Let's think. 2 = 2 * 1. So the answer is Yes.")
    assert "one of: No, Yes" in task.answer_format
    assert task.template(few_shot=True).prompt("Is 5 even?")[1]["content"] == "Is 2 even?"


def test_a_gold_rationale_gets_the_formats_answer_line(tmp_path):
    toml = TOML.replace('group = "{Kind}"', 'rationale = "{Body} That is {Answer}."')
    task = load_task_file(write(tmp_path, toml))
    p = task.problems["train"][0]
    assert task.has_rationale and task.gold_rationale(p).endswith(f"\nThe answer is {p.answer}")


def test_task_check_prints_what_it_understood(tmp_path):
    path = write(tmp_path)
    out = check_command(str(path))
    assert "problems: train 15, test 5" in out and "answer format: number" in out
    assert out.count("generation prompt ") == 3 and "[system] Solve the problem step by step" in out
    assert "gold answers as the verifier reads them:" in out and "every gold answer parses as number" in out
    bad = write(tmp_path / "bad", csv=CSV.replace(",2,more", ",two,more"))
    out = check_command(str(bad), allow_unparsed=True)
    assert "1 rows skipped" in out and "apples.csv:2: 'two'" in out


def test_task_list_shows_built_ins_and_files(tmp_path):
    path = write(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    out = list_command([str(tmp_path)])
    assert out.splitlines()[0].startswith("gsm8k") and "math" in out
    assert f"apples               number   {path}" in out and "pyproject" not in out


def test_cli_errors_name_the_file_without_traceback(tmp_path, capsys):
    path = write(tmp_path, TOML.replace("{Question}", "{Query}"))
    assert main(["task", "check", str(path)]) == 1  # bad input data: exit 1 (2 is for command-line usage)
    err = capsys.readouterr().err
    assert err.startswith("manyshot: error:") and "Query" in err and "Traceback" not in err


def test_resolve_registers_by_name_and_refuses_a_builtin_name(tmp_path):
    name = resolve("apples.toml", tmp_path if write(tmp_path) else None)
    assert name == "apples" and TASKS["apples"].source == str((tmp_path / "apples.toml").resolve())
    shutil.copytree(tmp_path / "data", tmp_path / "x" / "data")
    (tmp_path / "x" / "gsm8k.toml").write_text(TOML.replace('name = "apples"', 'name = "gsm8k"'))
    with pytest.raises(DataError, match="already a built-in task"):
        resolve(str(tmp_path / "x" / "gsm8k.toml"))


def test_ablation_specs_and_pipeline_configs_take_task_files_relative_to_themselves(tmp_path):
    from flows.ablate import load_spec
    from flows.schedule import bank_job_spec, load_pipeline

    write(tmp_path / "tasks", TOML.replace('"apples"', '"apples-ablate"'))
    (tmp_path / "spec.toml").write_text('[[banks]]\nname = "r"\nmode = "reinforced"\ntask = "tasks/apples.toml"\n'
                                        '[[evals]]\ntask = "tasks/apples.toml"\nbanks = ["r"]\n')
    spec = load_spec(tmp_path / "spec.toml")
    assert spec["banks"][0]["task"] == spec["evals"][0]["task"] == "apples-ablate"
    (tmp_path / "pipeline.toml").write_text('[[jobs]]\nname = "b"\nkind = "bank"\nmode = "reinforced"\n'
                                            'task = "tasks/apples.toml"\ncron = "0 3 * * *"\n')
    job = load_pipeline(tmp_path / "pipeline.toml").jobs[0]
    assert Path(job["task"]).is_absolute()
    build, _ = bank_job_spec(job, "embedded")
    assert build.selection.task == "apples-ablate" and "task_definition" in key_config(build)
