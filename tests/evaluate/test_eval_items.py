"""An eval's cells belong to the test items they were computed on: changed test data is never served old cells."""
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import gsm8k_solver
from flows.build import BuildSpec, Selection, build_bank
from flows.evaluate import EvalSpec, evaluate
from flows.evaluate.cellfiles import items_digest, stale_cell
from flows.core.problem import Problem
from generators.fake import FakeGenerator


def data_folder(root: Path, real: Path, edit: str = "") -> Path:
    """A data folder with the real GSM8K train split and the first 6 test rows; ``edit`` is appended to the third
    test question (one item's text differs, everything else is the same)."""
    (root / "gsm8k").mkdir(parents=True)
    (root / "gsm8k" / "train.jsonl").symlink_to(real / "gsm8k" / "train.jsonl")
    rows = [json.loads(line) for line in (real / "gsm8k" / "test.jsonl").read_text().splitlines()[:6]]
    rows[2]["question"] += edit
    (root / "gsm8k" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def questions(folder: str, data: Path) -> set[str]:
    ids = set(pq.read_table(f"{folder}/results.parquet").column("item_id").to_pylist())
    from flows.core.data import load_problems
    return {p.question for p in load_problems("gsm8k", "test", data) if p.id in ids}


@pytest.mark.usefixtures("prefect_harness")
def test_changed_test_item_recomputes_cells_and_resolutions(tmp_path, data_dir):
    first = data_folder(tmp_path / "a", data_dir)
    second = data_folder(tmp_path / "b", data_dir, edit=" Answer in dollars.")
    bank = build_bank(BuildSpec(mode="ground-truth", selection=Selection(task="gsm8k", limit=12)),
                      data_dir=str(first), out=str(tmp_path / "banks"))
    gen = FakeGenerator(gsm8k_solver())
    spec = EvalSpec(task="gsm8k", banks=(bank,), shots=(0, 2, "max"), limit=6, max_tokens=32)
    old = evaluate(spec, data_dir=str(first), out=str(tmp_path / "evals"), generator=gen).folder
    calls = len(gen.calls)
    assert calls == 3

    new = evaluate(spec, data_dir=str(second), out=str(tmp_path / "evals"), generator=gen).folder
    assert len(gen.calls) == 2 * calls  # every cell computed again, none reused from the first data
    assert Path(new).parents[1] != Path(old).parents[1]  # a new eval folder: its key covers the items' content
    edited = next(q for q in questions(new, second) if q.endswith(" Answer in dollars."))
    assert edited not in questions(old, first)
    assert len(questions(new, second)) == 6

    # A cell file made for other items (copied in by hand, or from before the key covered the items) is not
    # trusted either: its recorded digest is checked, and the cell and the K=max resolution are made again.
    new_cells, old_cells = Path(new).parents[1] / "cells", Path(old).parents[1] / "cells"
    for path in old_cells.iterdir():
        shutil.copy(path, new_cells / path.name)
    again = evaluate(spec, data_dir=str(second), out=str(tmp_path / "evals"), generator=gen).folder
    assert again == new and len(gen.calls) == 3 * calls
    assert edited in questions(again, second)
    assert all(json.loads(p.read_text())["items"] != json.loads((old_cells / p.name).read_text())["items"]
               for p in new_cells.glob("*-kmax.json"))
    assert len(gen.calls) == 3 * calls
    evaluate(spec, data_dir=str(second), out=str(tmp_path / "evals"), generator=gen)
    assert len(gen.calls) == 3 * calls  # and the remade cells are reused


def test_stale_cell_names_the_reason(tmp_path):
    import pyarrow as pa

    items = [Problem("x/1", "gsm8k", "test", "How many?", None, "3")]
    table = pa.table({"item_id": ["x/1"], "gold": ["3"]})
    pq.write_table(table.replace_schema_metadata({b"manyshot.items": items_digest(items).encode()}), tmp_path / "c")
    assert stale_cell(tmp_path / "c", items, items_digest(items)) is None
    changed = [Problem("x/1", "gsm8k", "test", "How many apples?", None, "3")]  # same id, other text
    assert "other test items" in stale_cell(tmp_path / "c", changed, items_digest(changed))
    pq.write_table(table, tmp_path / "legacy")  # a cell from before digests: ids and gold answers are compared
    assert stale_cell(tmp_path / "legacy", items, items_digest(items)) is None
    other = [Problem("x/1", "gsm8k", "test", "How many?", None, "4")]
    assert "gold answers differ" in stale_cell(tmp_path / "legacy", other, items_digest(other))
