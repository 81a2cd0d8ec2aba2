"""Scheduled pipelines: a TOML config of cron jobs, served (``manyshot serve``) or deployed to a work pool
(``manyshot deploy``) as Prefect deployments.

Job kinds and the (JSON-serialisable) wrapper flows that run them:

* ``bank``     -> :func:`scheduled_bank`: an incremental, versioned refresh (:mod:`flows.build.refresh`) of
  ``<out>/banks/<job>/``; the bank keys are those of an ablation ``[[banks]]`` entry, plus ``workers``
  (chunks sharded over a local Dask cluster, :func:`flows.build.flow.sharded`) and ``chunk_size``.
* ``eval``     -> :func:`scheduled_eval`: :func:`flows.evaluate.flow.evaluate` of bank jobs' latest versions
  (or bank paths) into ``<out>/evals``.
* ``ablation`` -> :func:`scheduled_ablation`: :func:`flows.ablate.run_ablation` of an ablation spec.

See ``configs/pipeline.example.toml`` and ``docs/scheduling.md``. Relative paths in a config are
resolved against the current directory when the config is loaded and stored absolute in the
deployments' parameters, so runs do not depend on the worker's directory.
"""
from __future__ import annotations

import tomllib
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow

from flows.ablate import BANK_KEYS, load_spec, run_ablation
from flows.core.specs import BuildError, BuildSpec, KEEP_POLICIES
from flows.config import build_spec, eval_spec
from flows.build.sources import REFRESH_MODES
from flows.core.problem import DataError
from flows.core.taskfile import is_task_file, resolve

KINDS = ("bank", "eval", "ablation")
TOP_KEYS = {"out", "data_dir", "model", "endpoints", "timezone", "jobs"}
COMMON_KEYS = {"name", "kind", "cron", "timezone", "description", "paused", "model", "endpoints"}
KIND_KEYS = {
    "bank": (BANK_KEYS - {"name"}) | {"workers", "chunk_size"},
    "eval": {"task", "banks", "shots", "seeds", "limit", "max_tokens", "samples", "temperature",
             "exclude_contaminated"},
    "ablation": {"config", "out"},
}
REQUIRED = {"bank": ("mode", "task"), "eval": ("task",), "ablation": ("config",)}
_INT, _NUM, _STR, _BOOL = (int,), (int, float), (str,), (bool,)
TYPES: dict[str, tuple] = {
    "name": _STR, "kind": _STR, "cron": _STR, "timezone": _STR, "description": _STR, "paused": _BOOL,
    "model": _STR, "mode": _STR, "task": _STR, "split": _STR, "limit": _INT, "seed": _INT, "samples": _INT,
    "temperature": _NUM, "retry_temperature": _NUM, "max_tokens": _INT, "rounds": _INT, "keep": _STR,
    "max_per_problem": _INT, "workers": _INT, "chunk_size": _INT, "seeds": _INT, "exclude_contaminated": _BOOL,
    "config": _STR, "out": _STR, "zero_shot": _BOOL, "require_valid_steps": _BOOL, "iterate_from": _STR,
    "prompt_shots": _INT,
}
LISTS: dict[str, tuple] = {"endpoints": _STR, "subjects": _STR, "levels": _INT, "banks": _STR, "shots": _INT}
POSITIVE = {"limit", "samples", "rounds", "max_tokens", "max_per_problem", "workers", "chunk_size", "seeds",
            "prompt_shots"}


class PipelineError(BuildError):
    """A pipeline config is invalid; the message names the file, the job and the key."""


@dataclass(frozen=True)
class Pipeline:
    path: str
    out: str
    data_dir: str | None = None
    model: str = "embedded"
    endpoints: tuple[str, ...] = ()
    timezone: str = "UTC"
    jobs: tuple[dict[str, Any], ...] = field(default_factory=tuple)


def _abs(path: str) -> str:
    return str(Path(path).expanduser().resolve())


def _check_value(where: str, key: str, value: Any) -> None:
    if key in LISTS:
        if not isinstance(value, list) or not all(isinstance(v, LISTS[key]) and not isinstance(v, bool) for v in value):
            raise PipelineError(f"{where}: {key} must be a list of {LISTS[key][0].__name__}, got {value!r}")
        return
    kinds = TYPES.get(key)
    if kinds and (not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool))):
        raise PipelineError(f"{where}: {key} must be {'a number' if kinds is _NUM else kinds[0].__name__}, "
                            f"got {value!r}")
    if key in POSITIVE and value < 1:
        raise PipelineError(f"{where}: {key} must be at least 1, got {value}")


def check_cron(where: str, cron: str, tz: str) -> None:
    from prefect.schedules import validate_cron_string

    try:
        validate_cron_string(cron)
    except ValueError as exc:
        raise PipelineError(f"{where}: cron {cron!r} is not a valid cron expression ({exc}); expected five fields "
                            "'minute hour day-of-month month day-of-week', e.g. '0 2 * * *'") from None
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise PipelineError(f"{where}: timezone {tz!r} is not an IANA time zone (e.g. 'UTC', 'Europe/Paris')") from None


def check_job(job: dict[str, Any], where: str = "job", scheduled: bool = True) -> dict[str, Any]:
    """Validate one job table (keys, types, values); return it with its kind-specific checks done.

    Used at load time and again by the wrapper flows, whose parameters may have been edited in the UI.
    """
    if not isinstance(job, dict):
        raise PipelineError(f"{where}: expected a table, got {job!r}")
    name = job.get("name")
    if not isinstance(name, str) or not name:
        raise PipelineError(f"{where}: missing key 'name'")
    where = f"{where} {name!r}"
    from flows.build.refresh import JOB_NAME

    if not JOB_NAME.match(name):
        raise PipelineError(f"{where}: name may only use letters, digits, '.', '_' and '-' (it names folders)")
    kind = job.get("kind")
    if kind not in KINDS:
        raise PipelineError(f"{where}: unknown kind {kind!r}; expected one of {list(KINDS)}")
    unknown = sorted(set(job) - COMMON_KEYS - KIND_KEYS[kind])
    if unknown:
        raise PipelineError(f"{where}: unknown key(s) {unknown} for kind {kind!r}; allowed: "
                            f"{sorted((COMMON_KEYS | KIND_KEYS[kind]) - {'name', 'kind'})}")
    for key in (("cron",) if scheduled else ()) + REQUIRED[kind]:
        if key not in job:
            raise PipelineError(f"{where}: missing key {key!r}")
    for key, value in job.items():
        _check_value(where, key, value)
    if scheduled:
        check_cron(where, job["cron"], job.get("timezone", "UTC"))
    try:
        resolve(job.get("task", "gsm8k"))  # a built-in name or a task file (absolute: load_pipeline made it so)
    except DataError as exc:
        raise PipelineError(f"{where}: task {job['task']!r}: {exc}") from None
    if kind == "bank":
        if job["mode"] not in REFRESH_MODES:
            raise PipelineError(f"{where}: mode {job['mode']!r} cannot be refreshed incrementally; "
                                f"expected one of {list(REFRESH_MODES)}")
        if job.get("keep", "first") not in KEEP_POLICIES:
            raise PipelineError(f"{where}: keep {job['keep']!r} is not one of {list(KEEP_POLICIES)}")
        if job.get("split", "train") not in ("train", "test"):
            raise PipelineError(f"{where}: split {job['split']!r} is not 'train' or 'test'")
    if kind == "eval":
        shots = job.get("shots", [0, 4])
        if not shots or min(shots) < 0:
            raise PipelineError(f"{where}: shots must be non-negative integers, got {shots}")
        if any(k > 0 for k in shots) and not job.get("banks"):
            raise PipelineError(f"{where}: shots > 0 need a 'banks' list (bank job names or .parquet paths)")
    return job


def bank_job_spec(job: dict[str, Any], model: str) -> tuple[BuildSpec, int]:
    """The BuildSpec of a bank job and its number of workers."""
    entry = {k: v for k, v in job.items() if k in BANK_KEYS | {"chunk_size"} and k != "name"}
    if "task" in entry:
        entry["task"] = resolve(entry["task"])
    return build_spec(entry | {"model": job.get("model", model)}, f"job {job.get('name')}"), job.get("workers", 1)


def load_pipeline(path: str | Path) -> Pipeline:
    """Read and validate a pipeline config; errors name the file, the job and the key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise PipelineError(f"cannot read pipeline config {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PipelineError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise PipelineError(f"{path}: unknown top-level key(s) {unknown}; allowed: {sorted(TOP_KEYS)}")
    for key in ("out", "data_dir", "model", "timezone"):
        if key in raw and not isinstance(raw[key], str):
            raise PipelineError(f"{path}: {key} must be a string, got {raw[key]!r}")
    _check_value(str(path), "endpoints", raw.get("endpoints", []))
    jobs = raw.get("jobs")
    if not isinstance(jobs, list) or not jobs:
        raise PipelineError(f"{path}: needs at least one [[jobs]] table")
    tz = raw.get("timezone", "UTC")
    checked, names = [], set()
    for i, job in enumerate(jobs, start=1):
        if isinstance(job, dict) and isinstance(job.get("task"), str) and is_task_file(job["task"]):
            job = job | {"task": str((path.parent / job["task"]).resolve())}  # relative to the config
        job = dict(check_job({"timezone": tz} | job if isinstance(job, dict) else job, f"{path}: job #{i}"))
        if job["name"] in names:
            raise PipelineError(f"{path}: job name {job['name']!r} is used twice; names must be unique")
        names.add(job["name"])
        checked.append(job)
    bank_jobs = {j["name"] for j in checked if j["kind"] == "bank"}
    for job in checked:
        where = f"{path}: job {job['name']!r}"
        if job["kind"] == "bank":
            try:
                bank_job_spec(job, raw.get("model", "embedded"))
            except BuildError as exc:
                raise PipelineError(f"{where}: {exc}") from None
        elif job["kind"] == "eval":
            refs = []
            for ref in job.get("banks", []):
                if ref.endswith(".parquet"):
                    refs.append(_abs(ref))
                elif ref in bank_jobs:
                    refs.append(ref)
                else:
                    raise PipelineError(f"{where}: banks: {ref!r} is neither a bank job of this pipeline "
                                        f"({sorted(bank_jobs)}) nor a .parquet path")
            if "banks" in job:
                job["banks"] = refs
        else:
            job["config"] = _abs(job["config"])
            try:
                load_spec(job["config"])
            except BuildError as exc:
                raise PipelineError(f"{where}: config: {exc}") from None
            if "out" in job:
                job["out"] = _abs(job["out"])
    return Pipeline(path=_abs(str(path)), out=_abs(raw.get("out", "runs/pipeline")),
                    data_dir=_abs(raw["data_dir"]) if raw.get("data_dir") else None,
                    model=raw.get("model", "embedded"), endpoints=tuple(raw.get("endpoints", ())), timezone=tz,
                    jobs=tuple(checked))


# --- the wrapper flows a deployment runs (JSON parameters only) ------------------------------------------

def _generator_config(job: dict, model: str, endpoints: list[str] | None, seed: int = 0):
    from generators import GeneratorConfig

    return GeneratorConfig(job.get("model", model), tuple(job.get("endpoints", endpoints or ())), seed=seed)


@flow(name="scheduled-bank", log_prints=True)
def scheduled_bank(job: dict, out: str, data_dir: str | None = None, model: str = "embedded",
                   endpoints: list[str] | None = None) -> dict:
    """Refresh the bank of a ``bank`` job: publish ``<out>/banks/<name>/<name>-vNNNN.parquet`` if anything is new."""
    from flows.build.refresh import refresh_bank
    from flows.build.flow import dask_runner

    check_job(job, scheduled=False)
    spec, workers = bank_job_spec(job, model)
    ref = _generator_config(job, model, endpoints, seed=spec.selection.seed)
    runner = refresh_bank if workers <= 1 else refresh_bank.with_options(task_runner=dask_runner(workers))
    return runner(spec, job["name"], data_dir=data_dir, out=str(Path(out) / "banks"), generator=ref,
                  submit=workers > 1)


def resolve_banks(refs: list[str], out: str) -> tuple[str, ...]:
    """Bank job names -> their latest published version; paths stay paths (and must exist)."""
    from flows.build.refresh import latest_version

    paths = []
    for ref in refs:
        if ref.endswith(".parquet"):
            if not Path(ref).is_file():
                raise PipelineError(f"bank {ref} does not exist")
            paths.append(ref)
            continue
        latest = latest_version(Path(out) / "banks" / ref)
        if latest is None:
            raise PipelineError(f"bank job {ref!r} has no published version under {Path(out) / 'banks' / ref} yet; "
                                "run it first (prefect deployment run scheduled-bank/" + ref + ")")
        paths.append(str(latest))
    return tuple(paths)


@flow(name="scheduled-eval", log_prints=True)
def scheduled_eval(job: dict, out: str, data_dir: str | None = None, model: str = "embedded",
                   endpoints: list[str] | None = None) -> str:
    """Evaluate the latest versions of the job's banks into ``<out>/evals``; returns the results folder."""
    from flows.evaluate.flow import evaluate

    check_job(job, scheduled=False)
    entry = {k: v for k, v in job.items() if k in KIND_KEYS["eval"]}
    entry["task"] = resolve(entry["task"])
    spec = eval_spec(entry | {"banks": resolve_banks(job.get("banks", []), out), "model": job.get("model", model)},
                     f"job {job.get('name')}")
    ref = _generator_config(job, model, endpoints)
    generator = ref.resolve() if ref.endpoints else None
    print(f"evaluating {[Path(b).name for b in spec.banks]} on {spec.task}")
    return str(evaluate(spec, data_dir=data_dir, out=str(Path(out) / "evals"), generator=generator).folder)


@flow(name="scheduled-ablation", log_prints=True)
def scheduled_ablation(config: str, out: str | None = None, data_dir: str | None = None) -> str:
    """Run an ablation spec (banks are reused by configuration, eval cells by checkpoint)."""
    return run_ablation(config, data_dir=data_dir, out=out)


FLOWS = {"bank": scheduled_bank, "eval": scheduled_eval, "ablation": scheduled_ablation}


def job_parameters(pipeline: Pipeline, job: dict[str, Any]) -> dict[str, Any]:
    """The deployment parameters of a job (plain JSON)."""
    if job["kind"] == "ablation":
        return {"config": job["config"], "out": job.get("out", pipeline.out), "data_dir": pipeline.data_dir}
    own = {k: v for k, v in job.items() if k not in ("cron", "timezone", "description", "paused")}
    return {"job": own, "out": pipeline.out, "data_dir": pipeline.data_dir, "model": pipeline.model,
            "endpoints": list(pipeline.endpoints)}


def deployments(pipeline: Pipeline) -> list:
    """One RunnerDeployment per job: cron schedule, JSON parameters, module-path entrypoint."""
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    out = []
    for job in pipeline.jobs:
        out.append(FLOWS[job["kind"]].to_deployment(
            name=job["name"], schedules=[Cron(job["cron"], timezone=job["timezone"])],
            parameters=job_parameters(pipeline, job), paused=job.get("paused"),
            description=job.get("description") or f"manyshot {job['kind']} job from {pipeline.path}",
            tags=["manyshot", job["kind"]], entrypoint_type=EntrypointType.MODULE_PATH,
            concurrency_limit=1 if job["kind"] == "bank" else None))
    return out


def _require_server() -> str:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise PipelineError("schedules need a running Prefect server (the in-process ephemeral one does not schedule "
                            "runs): start `prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api")
    with get_client(sync_client=True) as client:
        failure = client.api_healthcheck()
    if failure is not None:
        raise PipelineError(f"cannot reach the Prefect server at PREFECT_API_URL={url}: {failure}")
    return url


def describe(pipeline: Pipeline) -> str:
    return "\n".join(f"  {FLOWS[j['kind']].name}/{j['name']}: cron '{j['cron']}' ({j['timezone']})"
                     + (" [paused]" if j.get("paused") else "") for j in pipeline.jobs)


def serve(config_path: str, limit: int | None = None) -> None:
    """Register the config's jobs as cron deployments and serve them from this process (blocks)."""
    from prefect import serve as prefect_serve

    pipeline = load_pipeline(config_path)
    url = _require_server()
    print(f"serving {len(pipeline.jobs)} job(s) from {pipeline.path} on {url}; outputs under {pipeline.out}\n"
          f"{describe(pipeline)}", flush=True)
    prefect_serve(*deployments(pipeline), limit=limit)


def deploy(config_path: str, work_pool: str) -> str:
    """Register the config's jobs on the server for workers of ``work_pool`` (a process pool is created if
    missing). Workers import the installed ``manyshot`` package; no image, no storage. Returns a summary."""
    from prefect import deploy as prefect_deploy
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    pipeline = load_pipeline(config_path)
    url = _require_server()
    created = ""
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(work_pool)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=work_pool, type="process",
                                                   base_job_template=ProcessWorker.get_default_base_job_template()))
            created = f"created process work pool {work_pool!r}\n"
    deps = deployments(pipeline)
    ids = prefect_deploy(*deps, work_pool_name=work_pool, build=False, push=False, print_next_steps_message=False,
                         ignore_warnings=True)
    if len(ids) != len(deps):
        raise PipelineError(f"only {len(ids)} of {len(deps)} deployments could be registered on {url}; see above")
    return (f"{created}registered {len(ids)} deployment(s) on {url} (work pool {work_pool!r}):\n{describe(pipeline)}\n"
            f"start a worker (with the manyshot package installed): prefect worker start --pool {work_pool}\n"
            f"run one now: prefect deployment run '{FLOWS[pipeline.jobs[0]['kind']].name}/{pipeline.jobs[0]['name']}'")
