import json
import subprocess
from pathlib import Path

import pytest

from flows.core.data import data_source, load_problems, select
from flows.core.problem import DataError, normalize_text


def test_real_gsm8k_and_math_load(data_dir):
    gsm = load_problems("gsm8k", "test", data_dir)
    assert len(gsm) == 1319
    assert gsm[0].answer == "18" and gsm[0].solution and gsm[0].id.startswith("gsm8k/")
    math = load_problems("math", "test", data_dir)
    assert len(math) == 500
    assert math[0].id == "math/test/precalculus/807.json" and math[0].level == 2 and math[0].subject == "Precalculus"
    assert len({p.id for p in gsm}) == len(gsm)


def test_selection_is_seeded_and_prefix_stable(data_dir):
    train = load_problems("gsm8k", "train", data_dir)
    small, big = select(train, limit=10, seed=3), select(train, limit=40, seed=3)
    assert [p.id for p in big[:10]] == [p.id for p in small]
    assert [p.id for p in select(train, limit=10, seed=4)] != [p.id for p in small]


def test_math_filters(data_dir):
    chosen = select(load_problems("math", "train", data_dir), subjects=["algebra"], levels=[1, 2], limit=30)
    assert len(chosen) == 30 and all(p.subject == "Algebra" and p.level in (1, 2) for p in chosen)


@pytest.mark.parametrize("line, message", [
    ('{"question": "q?"}', "'answer' has no '#### <final answer>' line"),
    ('{"answer": "#### 4"}', "missing or empty 'question'"),
    ('{"question": "q", "answer": "no marker"}', "no '#### <final answer>'"),
    ('[1, 2]', "expected a JSON object"),
    ('{"question": ', "not valid JSON"),
])
def test_bad_rows_name_file_and_line(tmp_path, line, message):
    (tmp_path / "gsm8k").mkdir()
    path = tmp_path / "gsm8k" / "train.jsonl"
    path.write_text(json.dumps({"question": "ok?", "answer": "x\n#### 1"}) + "\n" + line + "\n")
    with pytest.raises(DataError) as err:
        load_problems("gsm8k", "train", tmp_path)
    assert f"{path}:2" in str(err.value) and message in str(err.value)


def test_non_utf8_row(tmp_path):
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "test.jsonl").write_bytes(b'{"question": "\xff", "answer": "#### 1"}\n')
    with pytest.raises(DataError, match=r"test.jsonl:1: not valid UTF-8"):
        load_problems("gsm8k", "test", tmp_path)


def test_offline_hub_fails_fast_naming_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("MANYSHOT_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./data with datasets here
    with pytest.raises(DataError, match="--data-dir"):
        load_problems("gsm8k", "test", None)


def test_normalize_text():
    assert normalize_text("  What is 2+2?\n") == normalize_text("what is 2 + 2")


def test_math_train_skips_the_two_rows_with_empty_answers(data_dir):
    assert len(load_problems("math", "train", data_dir)) == 11998


def test_math_missing_answer_key_is_an_error(tmp_path):
    (tmp_path / "math").mkdir()
    (tmp_path / "math" / "test.jsonl").write_text('{"problem": "p"}\n')
    with pytest.raises(DataError, match=r"test.jsonl:1: missing 'answer'"):
        load_problems("math", "test", tmp_path)


def _local_copy(folder, question="What is 2 + 3?", answer="5"):
    (folder / "data" / "gsm8k").mkdir(parents=True)
    row = {"question": question, "answer": f"2 + 3 = 5\n#### {answer}"}
    (folder / "data" / "gsm8k" / "test.jsonl").write_text(json.dumps(row) + "\n")


def test_data_folder_of_the_working_directory_is_the_default(monkeypatch, tmp_path):
    monkeypatch.delenv("MANYSHOT_DATA_DIR", raising=False)
    _local_copy(tmp_path)
    monkeypatch.chdir(tmp_path)
    problems = load_problems("gsm8k", "test")
    assert [(p.question, p.answer) for p in problems] == [("What is 2 + 3?", "5")]
    assert data_source() == str(tmp_path.resolve() / "data")
    with pytest.raises(DataError, match=r"data/math/train.jsonl does not exist"):
        load_problems("math", "train")


def test_explicit_data_dirs_win_over_the_data_folder(monkeypatch, tmp_path, data_dir):
    _local_copy(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MANYSHOT_DATA_DIR", str(data_dir))
    assert len(load_problems("gsm8k", "test")) == 1319
    monkeypatch.delenv("MANYSHOT_DATA_DIR")
    assert len(load_problems("gsm8k", "test", data_dir)) == 1319


def test_a_data_folder_without_datasets_falls_back_to_the_hub(monkeypatch, tmp_path):
    monkeypatch.delenv("MANYSHOT_DATA_DIR", raising=False)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "README.md").write_text("only the readme, as in a fresh clone\n")
    monkeypatch.chdir(tmp_path)
    assert data_source() == "hub"
    with pytest.raises(DataError, match="or put those files under ./data"):
        load_problems("gsm8k", "test")


def test_the_repository_data_folder_commits_only_its_readme():
    root = Path(__file__).resolve().parents[2]
    assert (root / "data" / "README.md").is_file()
    ignored = subprocess.run(["git", "check-ignore", "data/gsm8k/train.jsonl", "data/cache/embeddings.npy",
                              "data/README.md"], cwd=root, capture_output=True, text=True).stdout.split()
    assert ignored == ["data/gsm8k/train.jsonl", "data/cache/embeddings.npy"]
