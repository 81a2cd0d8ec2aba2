"""Schedules against a real ``prefect server start`` (the in-process ephemeral server does not schedule runs).

One server per module on a free 127.0.0.1 port, PREFECT_HOME in a temp dir. ``manyshot deploy`` registers
cron deployments on a work pool and the scheduler creates their runs; ``manyshot serve`` runs a triggered
bank job to completion; a ``prefect worker`` runs a triggered run of a deployed job.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest


pytestmark = [pytest.mark.server, pytest.mark.timeout(120)]
BIN = Path(sys.executable).parent
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = os.environ | {"PREFECT_HOME": str(home), "PREFECT_API_URL": url,
                        "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "1",
                        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
                        "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_SERVER_API_PORT": str(port)}
    log = open(home / "server.log", "w")
    proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    started = time.monotonic()
    try:
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() - started > 60:
                pytest.fail(f"prefect server did not start: {(home / 'server.log').read_text()[-2000:]}")
            time.sleep(0.25)
        print(f"prefect server healthy after {time.monotonic() - started:.1f}s")
        yield {"url": url, "env": env, "home": home}
    finally:
        _stop(proc)
        log.close()


@pytest.fixture
def client(server):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: server["url"]}):
        with get_client(sync_client=True) as c:
            yield c


def pipeline(tmp_path, data_dir, suffix):
    path = tmp_path / "pipeline.toml"
    path.write_text(textwrap.dedent(f"""
        out = "{tmp_path / 'runs'}"
        data_dir = "{data_dir}"
        [[jobs]]
        name = "gt-{suffix}"
        kind = "bank"
        cron = "0 2 * * *"
        mode = "ground-truth"
        task = "gsm8k"
        limit = 6
        [[jobs]]
        name = "eval-{suffix}"
        kind = "eval"
        cron = "0 4 * * 0"
        task = "gsm8k"
        banks = ["gt-{suffix}"]
        shots = [0, 2]
    """))
    return path


def wait_for(what, check, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def scheduled_runs(client, deployment_id):
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter, \
        FlowRunFilterState, FlowRunFilterStateType

    return client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=["SCHEDULED"]))))


def finish(client, run_id, timeout):
    def done():
        run = client.read_flow_run(run_id)
        return run if run.state and run.state.type.value in FINAL else None
    return wait_for(f"flow run {run_id}", done, timeout)


def test_deploy_registers_cron_deployments_and_a_worker_runs_them(server, client, tmp_path, data_dir):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    config = pipeline(tmp_path, data_dir, "deployed")
    out = subprocess.run([str(BIN / "manyshot"), "deploy", "--config", str(config), "--work-pool", "test-pool"],
                         env=server["env"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr + out.stdout
    assert "registered 2 deployment(s)" in out.stdout and "created process work pool 'test-pool'" in out.stdout
    bank = client.read_deployment_by_name("scheduled-bank/gt-deployed")
    assert bank.work_pool_name == "test-pool" and bank.schedules[0].schedule.cron == "0 2 * * *"
    assert bank.parameters["job"]["mode"] == "ground-truth"
    started = time.monotonic()
    runs = wait_for("scheduled runs", lambda: scheduled_runs(client, bank.id), 20)
    print(f"scheduled runs of the deployment appeared after {time.monotonic() - started:.1f}s")
    assert all(r.expected_start_time.hour == 2 and r.expected_start_time.minute == 0 for r in runs)
    evals = client.read_deployment_by_name("scheduled-eval/eval-deployed")
    assert wait_for("scheduled eval runs", lambda: scheduled_runs(client, evals.id), 20)

    with temporary_settings({PREFECT_API_URL: server["url"]}):
        run = run_deployment("scheduled-bank/gt-deployed", timeout=0)
    worker = subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", "test-pool", "--run-once"],
                              env=server["env"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, start_new_session=True)
    try:
        state = finish(client, run.id, 60)
    finally:
        _stop(worker)
    assert state.state.type.value == "COMPLETED", worker.stdout.read()[-3000:]
    assert (tmp_path / "runs" / "banks" / "gt-deployed" / "gt-deployed-v0001.parquet").is_file()


def test_served_deployment_runs_and_writes_its_bank(server, client, tmp_path, data_dir):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    config = pipeline(tmp_path, data_dir, "served")
    serve = subprocess.Popen([str(BIN / "manyshot"), "serve", "--config", str(config)], env=server["env"],
                             cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    try:
        def registered():
            from prefect.exceptions import ObjectNotFound
            try:
                return client.read_deployment_by_name("scheduled-bank/gt-served")
            except ObjectNotFound:
                assert serve.poll() is None, serve.stdout.read()
                return None
        deployment = wait_for("the served deployment", registered, 30)
        assert wait_for("scheduled runs", lambda: scheduled_runs(client, deployment.id), 20)
        started = time.monotonic()
        with temporary_settings({PREFECT_API_URL: server["url"]}):
            run = run_deployment("scheduled-bank/gt-served", timeout=0)
        state = finish(client, run.id, 60)
        print(f"triggered run finished in {time.monotonic() - started:.1f}s")
        assert state.state.type.value == "COMPLETED"
        bank = tmp_path / "runs" / "banks" / "gt-served" / "gt-served-v0001.parquet"
        assert bank.is_file() and (bank.parent / "latest").read_text().strip() == bank.name
    finally:
        _stop(serve)
    log = serve.stdout.read()
    assert "serving 2 job(s)" in log
