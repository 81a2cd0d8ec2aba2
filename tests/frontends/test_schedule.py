"""Pipeline configs, incremental bank refreshes and the scheduled wrapper flows (no server needed)."""
import json
import textwrap
from unittest import mock
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import ROOT, bank_content, gsm8k_solver, small_spec
from flows.build import refresh as rf
from flows import schedule
from flows.runtime.banks import list_banks, read_bank
from flows.build.flow import build_bank
from flows.core.specs import BuildError
from generators.fake import FakeGenerator

pytestmark = pytest.mark.usefixtures("prefect_harness")


spec = small_spec  # 8 problems in chunks of 4, 2 samples, 1 round


def coin_solver(p=0.5):
    """Solves a prompt with probability p, decided by the engine seed: fresh seeds solve different problems."""
    solve = gsm8k_solver()
    return lambda prompt, sample, rng: solve(prompt, sample, rng) if rng.random() < p else "no idea"


def asked(gen):
    return {prompt[-1]["content"] for prompts, _ in gen.calls for prompt in prompts}


# --- refresh ---------------------------------------------------------------------------------------------

def test_refresh_publishes_versions_and_only_retries_unsolved(tmp_path, data_dir):
    g1 = FakeGenerator(coin_solver())
    first = rf.refresh_bank(spec(), "nightly", data_dir=str(data_dir), out=str(tmp_path), generator=g1)
    job_dir = tmp_path / "nightly"
    assert first["status"] == "published" and first["version"] == 1 and 0 < first["newly_solved"] < 8
    v1 = job_dir / "nightly-v0001.parquet"
    assert (job_dir / "latest").read_text().strip() == v1.name and rf.latest_version(job_dir) == v1
    t1, m1 = read_bank(v1)
    solved1 = set(t1.column("problem_id").to_pylist())
    v1_bytes = v1.read_bytes()

    g2 = FakeGenerator(coin_solver())
    second = rf.refresh_bank(spec(), "nightly", data_dir=str(data_dir), out=str(tmp_path), generator=g2)
    assert second["already_solved"] == len(solved1) and second["tried"] == 8 - len(solved1)
    questions1 = set(t1.column("question").to_pylist())
    assert not asked(g2) & questions1 and len(asked(g2)) == 8 - len(solved1)  # only unsolved problems retried
    assert {s.seed for _, s in g1.calls}.isdisjoint({s.seed for _, s in g2.calls})  # fresh samples
    assert v1.read_bytes() == v1_bytes  # the previous version is untouched and readable
    if second["status"] == "published":
        v2 = job_dir / "nightly-v0002.parquet"
        t2, m2 = read_bank(v2)
        assert m2["previous"] == v1.name and m2["version"] == 2 and m2["seed"] != m1["seed"]
        assert set(t1.column("shot_id").to_pylist()) < set(t2.column("shot_id").to_pylist())
        assert m2["refresh"]["shots_total"] == t2.num_rows == t1.num_rows + second["shots_added"]
        assert rf.latest_version(job_dir) == v2
    assert [r["path"] for r in list_banks(job_dir)]  # `manyshot bank list <out>/<job>` sees the versions


def test_refresh_until_done_then_up_to_date(tmp_path, data_dir):
    out = str(tmp_path)
    statuses = []
    while "up-to-date" not in statuses and len(statuses) < 8:
        statuses.append(rf.refresh_bank(spec(), "j", data_dir=str(data_dir), out=out,
                                        generator=FakeGenerator(coin_solver(0.7)))["status"])
    assert statuses[0] == "published" and statuses[-1] == "up-to-date"
    table, meta = read_bank(rf.latest_version(tmp_path / "j"))
    assert len(set(table.column("problem_id").to_pylist())) == 8
    n = len(rf.versions(tmp_path / "j"))
    assert n == statuses.count("published") and meta["version"] == n
    idle = FakeGenerator(coin_solver())
    again = rf.refresh_bank(spec(), "j", data_dir=str(data_dir), out=out, generator=idle)
    assert again["status"] == "up-to-date" and "no new version" in again["message"] and idle.calls == []


def test_nothing_solved_writes_no_version(tmp_path, data_dir):
    result = rf.refresh_bank(spec(), "j", data_dir=str(data_dir), out=str(tmp_path),
                             generator=FakeGenerator(lambda *a: "no idea"))
    assert result["status"] == "nothing-solved" and "no new version" in result["message"]
    assert rf.versions(tmp_path / "j") == [] and rf.latest_version(tmp_path / "j") is None


def test_first_version_equals_a_plain_build_and_a_larger_limit_adds_only_new_problems(tmp_path, data_dir):
    solver = gsm8k_solver()
    plain = build_bank(spec(), data_dir=str(data_dir), out=str(tmp_path / "plain"), generator=FakeGenerator(solver))
    rf.refresh_bank(spec(), "j", data_dir=str(data_dir), out=str(tmp_path), generator=FakeGenerator(solver))
    v1 = read_bank(rf.latest_version(tmp_path / "j"))[0]
    assert bank_content(v1).equals(bank_content(pq.read_table(plain)))
    grow = FakeGenerator(solver)
    result = rf.refresh_bank(spec(limit=12), "j", data_dir=str(data_dir), out=str(tmp_path), generator=grow)
    assert result["status"] == "published" and result["tried"] == 4 and len(asked(grow)) == 4
    assert read_bank(rf.latest_version(tmp_path / "j"))[0].num_rows == 12


def test_ground_truth_refresh_and_crash_between_write_and_pointer(tmp_path, data_dir):
    out = str(tmp_path)
    first = rf.refresh_bank(spec("ground-truth", limit=5), "gt", data_dir=str(data_dir), out=out)
    assert first["status"] == "published"
    (tmp_path / "gt" / "latest").unlink()  # as if killed right after writing v1
    assert rf.latest_version(tmp_path / "gt").name == "gt-v0001.parquet"
    result = rf.refresh_bank(spec("ground-truth", limit=5), "gt", data_dir=str(data_dir), out=out)
    assert result["status"] == "up-to-date" and (tmp_path / "gt" / "latest").read_text().strip() == "gt-v0001.parquet"


def test_refresh_refuses_a_changed_job_and_bad_modes(tmp_path, data_dir):
    rf.refresh_bank(spec("ground-truth", limit=3), "j", data_dir=str(data_dir), out=str(tmp_path))
    with pytest.raises(BuildError, match="give the changed job a new name"):
        rf.refresh_bank(spec("unsupervised", limit=3), "j", data_dir=str(data_dir), out=str(tmp_path))
    with pytest.raises(BuildError, match="cannot be refreshed"):
        rf.refresh_bank(spec("generated"), "k", data_dir=str(data_dir), out=str(tmp_path))


def test_refresh_with_submitted_chunks_matches_serial(tmp_path, data_dir):
    a = rf.refresh_bank(spec(limit=12), "j", data_dir=str(data_dir), out=str(tmp_path / "a"),
                        generator=FakeGenerator(coin_solver()))
    b = rf.refresh_bank(spec(limit=12), "j", data_dir=str(data_dir), out=str(tmp_path / "b"),
                        generator=FakeGenerator(coin_solver()), submit=True)
    assert bank_content(read_bank(a["latest"])[0]).equals(bank_content(read_bank(b["latest"])[0]))


# --- config ----------------------------------------------------------------------------------------------

def write(tmp_path, text):
    path = tmp_path / "pipeline.toml"
    path.write_text(textwrap.dedent(text))
    return path


GOOD = """
out = "{out}"
[[jobs]]
name = "gt"
kind = "bank"
cron = "0 2 * * *"
mode = "ground-truth"
task = "gsm8k"
limit = 6
[[jobs]]
name = "weekly"
kind = "eval"
cron = "0 4 * * 0"
task = "gsm8k"
banks = ["gt"]
shots = [0, 2]
limit = 3
"""


def test_example_config_is_valid():
    pipeline = schedule.load_pipeline(ROOT / "configs" / "pipeline.example.toml")
    assert [j["kind"] for j in pipeline.jobs] == ["bank", "bank", "eval", "ablation"]
    assert Path(pipeline.jobs[3]["config"]).is_file() and Path(pipeline.out).is_absolute()
    deps = schedule.deployments(pipeline)
    assert [d.name for d in deps] == [j["name"] for j in pipeline.jobs]
    for d in deps:
        json.dumps(d.parameters)  # JSON-serialisable
        assert d.entrypoint.startswith("flows.schedule.scheduled_") and len(d.schedules) == 1
    assert deps[0].schedules[0].schedule.cron == "0 2 * * *"
    assert "cron" not in deps[0].parameters["job"]


@pytest.mark.parametrize("change, message", [
    (("kind = \"bank\"", "kind = \"bnak\"", 1), "job #1 'gt': unknown kind 'bnak'"),
    (("cron = \"0 2 * * *\"", "cron = \"0 25 * * *\""), "job #1 'gt': cron '0 25 \\* \\* \\*' is not a valid"),
    (("cron = \"0 2 * * *\"", "cron = \"nightly\""), "job #1 'gt': cron 'nightly'"),
    (("mode = \"ground-truth\"\n", ""), "job #1 'gt': missing key 'mode'"),
    (("limit = 6", "limt = 6"), "job #1 'gt': unknown key\\(s\\) \\['limt'\\]"),
    (("limit = 6", "limit = \"6\""), "job #1 'gt': limit must be int"),
    (("mode = \"ground-truth\"", "mode = \"generated\""), "job #1 'gt': mode 'generated' cannot be refreshed"),
    (("banks = [\"gt\"]", "banks = [\"nope\"]"), "job 'weekly': banks: 'nope' is neither a bank job"),
    (("name = \"weekly\"", "name = \"gt\""), "job name 'gt' is used twice"),
    (("out =", "outt ="), "unknown top-level key"),
    (("task = \"gsm8k\"\nlimit = 6", "task = \"gsm9k\"\nlimit = 6"), "job #1 'gt': task 'gsm9k'"),
])
def test_bad_configs_name_the_job_and_key(tmp_path, change, message):
    path = write(tmp_path, GOOD.format(out=tmp_path).replace(*change))
    with pytest.raises(schedule.PipelineError, match=message):
        schedule.load_pipeline(path)


def test_timezone_and_missing_cron(tmp_path):
    path = write(tmp_path, GOOD.format(out=tmp_path).replace("cron = \"0 4 * * 0\"", "cron = \"0 4 * * 0\"\n"
                                                              "timezone = \"Mars/Olympus\""))
    with pytest.raises(schedule.PipelineError, match="job #2 'weekly': timezone 'Mars/Olympus'"):
        schedule.load_pipeline(path)
    path = write(tmp_path, GOOD.format(out=tmp_path).replace("cron = \"0 4 * * 0\"", ""))
    with pytest.raises(schedule.PipelineError, match="job #2 'weekly': missing key 'cron'"):
        schedule.load_pipeline(path)


def test_serve_and_deploy_need_a_server(tmp_path, monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    path = write(tmp_path, GOOD.format(out=tmp_path))
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        with pytest.raises(schedule.PipelineError, match="need a running Prefect server"):
            schedule.serve(str(path))


# --- wrapper flows ---------------------------------------------------------------------------------------

def test_scheduled_jobs_run_from_their_json_parameters(tmp_path, data_dir):
    pipeline = schedule.load_pipeline(write(tmp_path, GOOD.format(out=tmp_path / "runs")))
    bank_job, eval_job = pipeline.jobs
    with pytest.raises(schedule.PipelineError, match="no published version"):
        schedule.scheduled_eval(**json.loads(json.dumps(schedule.job_parameters(pipeline, eval_job))))
    params = json.loads(json.dumps(schedule.job_parameters(pipeline, bank_job)))
    result = schedule.scheduled_bank(**params | {"data_dir": str(data_dir)})
    assert result["status"] == "published"
    assert (tmp_path / "runs" / "banks" / "gt" / "gt-v0001.parquet").is_file()
    assert schedule.scheduled_bank(**params | {"data_dir": str(data_dir)})["status"] == "up-to-date"
    params = json.loads(json.dumps(schedule.job_parameters(pipeline, eval_job)))
    with mock.patch("flows.evaluate.flow.load_generator", return_value=FakeGenerator(gsm8k_solver())):
        results = schedule.scheduled_eval(**params | {"data_dir": str(data_dir)})
    assert Path(results).parents[2] == tmp_path / "runs" / "evals"  # runs/evals/<eval>/runs/<run>
    assert "gt-v0001" in (Path(results) / "summary.md").read_text()  # the bank job's latest version
