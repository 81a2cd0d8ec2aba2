from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa
import pytest

from flows.bank import BankError, ChunkStore, bank_path, config_key, list_banks, read_bank, write_bank
from flows.schema import SHOT_SCHEMA, SchemaError, to_table, validate


def shot(**over):
    row = {"shot_id": "s1", "problem_id": "gsm8k/1", "task": "gsm8k", "question": "1+1?", "rationale": "2",
           "answer": "2", "source": "ground-truth", "dataset": "gsm8k:test", "split": "train",
           "created_at": datetime.now(timezone.utc), "run_id": "r1"}
    return row | over


def test_required_columns_are_enforced():
    with pytest.raises(SchemaError, match="column 'question' is required but row 1 is null"):
        to_table([shot(), shot(question=None)], SHOT_SCHEMA)
    with pytest.raises(SchemaError, match="unknown shot source 'made-up'"):
        to_table([shot(source="made-up")], SHOT_SCHEMA)
    with pytest.raises(SchemaError, match="missing required columns: question"):
        validate(to_table([shot()], SHOT_SCHEMA).drop(["question"]), SHOT_SCHEMA)
    with pytest.raises(SchemaError, match="rows do not match"):
        to_table([shot(level="three")], SHOT_SCHEMA)


def test_bank_written_once_and_readable_by_pandas_and_datasets(tmp_path):
    path = bank_path(tmp_path, "gsm8k", "ground-truth", config_key({"a": 1}))
    write_bank(path, to_table([shot(), shot(shot_id="s2")], SHOT_SCHEMA), {"config": {"task": "gsm8k"}})
    table, meta = read_bank(path)
    assert table.num_rows == 2 and meta["config"] == {"task": "gsm8k"}
    assert list(pd.read_parquet(path)["shot_id"]) == ["s1", "s2"]
    import datasets

    ds = datasets.load_dataset("parquet", data_files=str(path), split="train")
    assert ds[0]["question"] == "1+1?"
    with pytest.raises(BankError, match="already exists"):
        write_bank(path, to_table([shot()], SHOT_SCHEMA), {})
    assert [r["shots"] for r in list_banks(tmp_path)] == [2]
    assert not list(tmp_path.glob("*.tmp"))


def test_read_bank_errors_name_the_path(tmp_path):
    with pytest.raises(BankError, match="no bank at"):
        read_bank(tmp_path / "missing.parquet")
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet")
    with pytest.raises(BankError, match="junk.parquet is not a readable Parquet file"):
        read_bank(junk)
    other = tmp_path / "other.parquet"
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1]}), other)
    with pytest.raises(BankError, match="other.parquet is not a manyshot bank"):
        read_bank(other)


def test_config_key_is_order_independent():
    assert config_key({"a": 1, "b": [1, 2]}) == config_key({"b": [1, 2], "a": 1})
    assert config_key({"a": 1}) != config_key({"a": 2})


def test_chunk_store_roundtrip(tmp_path):
    store = ChunkStore(tmp_path, "w1")
    assert store.get("c1") is None
    store.put("c1", to_table([shot()], SHOT_SCHEMA), {"tried": 1})
    assert store.get("c1").num_rows == 1 and store.stats("c1") == {"tried": 1}
