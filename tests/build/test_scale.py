"""Sharded bank builds (``build_bank(..., submit=True)``, on a local Dask cluster with ``sharded``): same rows as a
single-worker build."""
import functools

import pyarrow.parquet as pq
import pytest

from conftest import bank_content, gsm8k_solver, small_spec
from flows.runtime.banks import read_bank
from flows.build.flow import build_bank, resolve_generator, sharded
from flows.core.specs import BuildError
from generators import GeneratorConfig
from generators.fake import FakeGenerator

pytestmark = pytest.mark.usefixtures("prefect_harness")


spec = functools.partial(small_spec, limit=12, chunk_size=3, samples=3, rounds=2)


@pytest.fixture(scope="module")
def dask2():
    """One local 2-process cluster for the module (starting one costs ~2 s)."""
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    yield cluster.scheduler_address
    cluster.close()


def test_two_dask_workers_give_the_single_worker_bank(tmp_path, data_dir, dask2):
    solver = gsm8k_solver(correct_every=2)
    serial = build_bank(spec(), data_dir=str(data_dir), out=str(tmp_path / "a"), generator=FakeGenerator(solver))
    two = sharded(address=dask2)(spec(), data_dir=str(data_dir), out=str(tmp_path / "b"),
                                         generator=FakeGenerator(solver))
    assert bank_content(two).equals(bank_content(serial))
    # same content-addressed name as build_bank, and the same report
    assert pq.read_metadata(two).num_rows == 12 and two.rsplit("/", 1)[1] == serial.rsplit("/", 1)[1]
    assert read_bank(two)[1]["report"] == read_bank(serial)[1]["report"]


def test_sharded_build_resumes_serial_checkpoints(tmp_path, data_dir):
    """Chunks a serial build checkpointed are reused by a sharded build (same keys), and only the rest run."""
    solver = gsm8k_solver()
    build_bank(spec(limit=6), data_dir=str(data_dir), out=str(tmp_path), generator=FakeGenerator(solver))
    gen = FakeGenerator(solver)
    path = build_bank(spec(limit=12), data_dir=str(data_dir), out=str(tmp_path), generator=gen, submit=True)
    assert len(gen.calls) == 2  # chunks 3 and 4 only (thread runner: the instance is shared)
    assert pq.read_metadata(path).num_rows == 12


def test_ground_truth_needs_no_model_and_generated_is_refused(tmp_path, data_dir):
    path = build_bank(spec("ground-truth", limit=7), data_dir=str(data_dir), out=str(tmp_path),
                      generator=GeneratorConfig("no-such-model"), submit=True)
    rows = read_bank(path)[0].to_pylist()
    assert len(rows) == 7 and all(r["model"] is None for r in rows)
    with pytest.raises(BuildError, match="cannot run in parallel"):
        build_bank(spec("generated"), data_dir=str(data_dir), out=str(tmp_path), submit=True)


def test_generator_resolution():
    """An instance is used as is (metered for the progress display); sources without a model load none."""
    fake = FakeGenerator()
    assert resolve_generator(spec(), fake).inner is fake
    assert resolve_generator(spec("unsupervised"), GeneratorConfig("x")) is None
    assert resolve_generator(spec("ground-truth"), fake) is None
