import threading
from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.runtime.banks import BankError, ChunkStore, bank_path, list_banks, publish_bank, read_bank, write_bank
from flows.core.specs import config_key
from flows.core.schema import SCHEMA_VERSION, SCHEMA_VERSION_FIELD, SHOT_SCHEMA, SchemaError, to_table, validate


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


def _bank_file(tmp_path, version: bytes | None):
    """A bank whose metadata records schema ``version`` (None: no version recorded, as before versions were)."""
    path = tmp_path / f"gsm8k-ground-truth-v{version and version.decode()}.parquet"
    write_bank(path, to_table([shot()], SHOT_SCHEMA), {"config": {"task": "gsm8k"}})
    table = pq.read_table(path)
    meta = {k: v for k, v in table.schema.metadata.items() if k != SCHEMA_VERSION_FIELD.encode()}
    if version is not None:
        meta[SCHEMA_VERSION_FIELD.encode()] = version
    pq.write_table(table.replace_schema_metadata(meta), path)
    return path


def test_banks_record_the_schema_version(tmp_path):
    path = bank_path(tmp_path, "gsm8k", "ground-truth", "k1")
    write_bank(path, to_table([shot()], SHOT_SCHEMA), {"config": {}})
    assert pq.read_schema(path).metadata[SCHEMA_VERSION_FIELD.encode()] == SCHEMA_VERSION.encode()
    assert read_bank(path)[1][SCHEMA_VERSION_FIELD] == int(SCHEMA_VERSION)


def test_a_bank_without_a_schema_version_reads_as_version_1(tmp_path):
    table, meta = read_bank(_bank_file(tmp_path, None))
    assert table.num_rows == 1 and meta[SCHEMA_VERSION_FIELD] == 1 and meta["config"] == {"task": "gsm8k"}


def test_a_bank_from_a_newer_schema_is_refused_naming_path_and_versions(tmp_path):
    newer = str(int(SCHEMA_VERSION) + 1)
    path = _bank_file(tmp_path, newer.encode())
    with pytest.raises(BankError) as err:
        read_bank(path)
    assert str(err.value).startswith(f"{path}: written with schema version {newer}, newer than version "
                                     f"{SCHEMA_VERSION}, the newest this manyshot reads")
    with pytest.raises(BankError, match="'one' is not a version number"):
        read_bank(_bank_file(tmp_path, b"one"))


def test_a_chunk_checkpoint_from_a_newer_schema_is_refused(tmp_path):
    store = ChunkStore(tmp_path, "w1")
    store.put("c1", to_table([shot()], SHOT_SCHEMA), {"tried": 1})
    table = pq.read_table(store.path("c1"))
    newer = str(int(SCHEMA_VERSION) + 1).encode()
    pq.write_table(table.replace_schema_metadata({**table.schema.metadata, SCHEMA_VERSION_FIELD.encode(): newer}),
                   store.path("c1"))
    with pytest.raises(BankError, match=f"chunk-c1.parquet: written with schema version {newer.decode()}"):
        store.get("c1")


def test_publish_bank_writes_once_and_a_second_writer_sees_the_first_bank(tmp_path):
    path = bank_path(tmp_path, "gsm8k", "ground-truth", "k2")
    assert publish_bank(path, to_table([shot(run_id="first")], SHOT_SCHEMA), {"run_id": "first"}) is True
    assert publish_bank(path, to_table([shot(run_id="second")], SHOT_SCHEMA), {"run_id": "second"}) is False
    table, meta = read_bank(path)
    assert meta["run_id"] == "first" and table.column("run_id").to_pylist() == ["first"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_concurrent_publishers_write_one_bank(tmp_path):
    path = bank_path(tmp_path, "gsm8k", "ground-truth", "k3")
    tables = [to_table([shot(run_id=f"r{i}")], SHOT_SCHEMA) for i in range(8)]
    start = threading.Barrier(len(tables))
    results: list[bool] = []

    def publisher(i):
        start.wait()
        results.append(publish_bank(path, tables[i], {"run_id": f"r{i}"}))
    threads = [threading.Thread(target=publisher, args=(i,)) for i in range(len(tables))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [False] * 7 + [True]
    table, meta = read_bank(path)
    assert table.column("run_id").to_pylist() == [meta["run_id"]]


def test_bank_show_prints_the_schema_version_and_refuses_a_newer_one(tmp_path, capsys):
    from flows.cli import main

    assert main(["bank", "show", str(_bank_file(tmp_path, None))]) == 0
    assert f"schema version: 1 (this manyshot reads up to {SCHEMA_VERSION})" in capsys.readouterr().out
    newer = str(int(SCHEMA_VERSION) + 1)
    path = _bank_file(tmp_path, newer.encode())
    assert main(["bank", "show", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"manyshot: error: {path}: written with schema version {newer}, newer than version {SCHEMA_VERSION}" in err


def test_written_files_follow_the_umask_not_mkstemps_0600(tmp_path):
    import os
    import stat

    from flows.runtime.banks import atomic_write

    old = os.umask(0o022)
    try:
        path = tmp_path / "cell.parquet"
        atomic_write(to_table([], SHOT_SCHEMA), path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
