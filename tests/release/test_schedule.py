"""Scheduled runs without a cluster: cron validation, the recurring-run request and the exact body the real kfp
client sends (captured by a stub KFP API over HTTP), and the local scheduler with a job slower than its interval."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from matta_core.cli import app
from matta_core.release.cron import CronError, parse_cron
from matta_core.release.local_scheduler import no_overlap, run_schedule
from matta_core.release.schedule import recurring_run_body, recurring_run_request
from tests.json_stub import JsonStubHandler


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real compiled pipeline package (one lightweight step)."""
    from kfp import compiler

    from tests.release.tiny_pipeline import tiny

    path = tmp_path_factory.mktemp("package") / "pipeline.yaml"
    compiler.Compiler().compile(tiny, str(path))
    return path


def test_cron_needs_six_fields_seconds_first() -> None:
    assert parse_cron("0 0 2 * * *").next_after(datetime(2026, 1, 1, 3, tzinfo=UTC)) == datetime(
        2026, 1, 2, 2, tzinfo=UTC)
    with pytest.raises(CronError, match=r"5 fields .* SECONDS first.*e\.g\. '0 0 2 \* \* \*'"):
        parse_cron("0 2 * * *")
    with pytest.raises(CronError, match="7 fields"):
        parse_cron("0 0 2 * * * 2026")
    with pytest.raises(CronError, match="second field: '60' is outside 0-59"):
        parse_cron("60 * * * * *")
    weekdays = parse_cron("0 30 9 ? * MON-FRI")
    fires = [weekdays.next_after(datetime(2026, 11, 27, 10, tzinfo=UTC))]  # a Friday, after 09:30
    fires.append(weekdays.next_after(fires[0]))
    assert [f.strftime("%a %H:%M:%S") for f in fires] == ["Mon 09:30:00", "Tue 09:30:00"]


def test_recurring_run_request_is_the_create_recurring_run_kwargs(package: Path) -> None:
    import inspect

    import kfp

    request = recurring_run_request(package_path=package, experiment_id="exp-1", job_name="nightly",
                                    cron="0 0 2 * * *", params={"config_uri": "gs://b/run.yaml"})
    assert set(request) <= set(inspect.signature(kfp.Client.create_recurring_run).parameters)
    assert request["cron_expression"] == "0 0 2 * * *" and request["max_concurrency"] == 1
    assert request["no_catchup"] is True and request["pipeline_package_path"] == str(package)
    assert request["params"] == {"config_uri": "gs://b/run.yaml"} and request["enabled"] is True
    with pytest.raises(CronError, match="5 fields"):
        recurring_run_request(package_path=package, experiment_id="e", job_name="n", cron="0 2 * * *")
    with pytest.raises(ValueError, match="compiled pipeline file"):
        recurring_run_request(package_path="pipeline.py", experiment_id="e", job_name="n")

    body = recurring_run_body(request)
    assert body["trigger"] == {"cron_schedule": {"cron": "0 0 2 * * *"}}
    assert body["max_concurrency"] == 1 and body["no_catchup"] is True and body["mode"] == "ENABLE"
    assert body["display_name"] == "nightly" and body["experiment_id"] == "exp-1"
    assert body["pipeline_spec"]["pipelineInfo"]["name"] == "tiny-scheduled"
    assert body["runtime_config"]["parameters"] == {"config_uri": "gs://b/run.yaml"}


class StubKfp(JsonStubHandler):
    """The few KFP v2beta1 endpoints the schedule commands call; records every request."""

    calls: ClassVar[list[tuple[str, str, Any]]] = []
    created: ClassVar[dict[str, Any]] = {}

    def do_GET(self) -> None:
        self.calls.append(("GET", self.path, None))
        if self.path.startswith("/apis/v2beta1/healthz"):
            self._reply({"multi_user": False})
        elif self.path.startswith("/apis/v2beta1/experiments"):
            self._reply({"experiments": [{"experiment_id": "exp-7", "display_name": "matta"}], "total_size": 1})
        elif self.path.startswith("/apis/v2beta1/recurringruns"):
            self._reply({"recurringRuns": [self.created] if self.created else [], "total_size": 1})
        else:
            self._reply({})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.calls.append(("POST", self.path, body))
        if self.path == "/apis/v2beta1/recurringruns":
            type(self).created = {**body, "recurring_run_id": "rr-1", "status": "ENABLED"}
            self._reply(self.created)
        else:
            self._reply({})

    def do_DELETE(self) -> None:
        self.calls.append(("DELETE", self.path, None))
        self._reply({})

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def stub_kfp() -> Iterator[str]:
    StubKfp.calls, StubKfp.created = [], {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubKfp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_cli_sends_exactly_the_built_body_and_manages_the_schedule(package: Path, stub_kfp: str) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["schedule", "--cron", "0 0 2 * * *", "--host", stub_kfp, "--package", str(package),
                                 "--experiment", "matta", "--name", "nightly", "--param", "config_uri=gs://b/r.yaml"])
    assert result.exit_code == 0, result.output
    assert "recurring run rr-1 created" in result.output
    posted = [body for method, path, body in StubKfp.calls if (method, path) == ("POST", "/apis/v2beta1/recurringruns")]
    expected = recurring_run_body(recurring_run_request(
        package_path=package, experiment_id="exp-7", job_name="nightly", cron="0 0 2 * * *",
        params={"config_uri": "gs://b/r.yaml"}))
    assert posted == [expected]

    for args, call in [(["list"], ("GET", "/apis/v2beta1/recurringruns")),
                       (["pause", "rr-1"], ("POST", "/apis/v2beta1/recurringruns/rr-1:disable")),
                       (["resume", "rr-1"], ("POST", "/apis/v2beta1/recurringruns/rr-1:enable")),
                       (["delete", "rr-1"], ("DELETE", "/apis/v2beta1/recurringruns/rr-1"))]:
        result = runner.invoke(app, ["schedule", *args, "--host", stub_kfp])
        assert result.exit_code == 0, result.output
        assert any((m, p.split("?")[0]) == call for m, p, _ in StubKfp.calls), call
    listing = runner.invoke(app, ["schedule", "list", "--host", stub_kfp]).output
    assert "rr-1  nightly  ENABLED  cron='0 0 2 * * *'  max_concurrency=1  no_catchup=True" in listing


def test_cli_rejects_a_five_field_cron_before_contacting_anything(package: Path) -> None:
    result = CliRunner().invoke(app, ["schedule", "--cron", "0 2 * * *", "--host", "http://127.0.0.1:9",
                                      "--package", str(package)])
    assert result.exit_code == 2 and "5 fields" in result.output and "'0 0 2 * * *'" in result.output


def test_local_scheduler_skips_ticks_while_a_run_is_still_going(tmp_path: Path) -> None:
    log = tmp_path / "runs.jsonl"
    job = [sys.executable, "-c", "import time; time.sleep(2.5)"]  # longer than the 2 s interval
    events = run_schedule("*/2 * * * * *", job, log, max_runs=2)
    kinds = [e["event"] for e in events]
    assert kinds.count("start") == 2 and kinds.count("end") == 2 and kinds.count("skipped") >= 1
    assert no_overlap(events)
    ends = [e for e in events if e["event"] == "end"]
    assert [e["status"] for e in ends] == ["succeeded", "succeeded"] and all(e["seconds"] >= 2.5 for e in ends)
    starts = [e for e in events if e["event"] == "start"]
    assert ends[0]["ended_at"] <= starts[1]["at"]
    assert [json.loads(line) for line in log.read_text().splitlines()] == events


def test_local_scheduler_records_failures_and_goes_on(tmp_path: Path) -> None:
    calls = []

    def flaky() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("pipeline exploded")
        return 0

    events = run_schedule("* * * * * *", flaky, tmp_path / "runs.jsonl", max_runs=2)
    ends = [e for e in events if e["event"] == "end"]
    assert [e["status"] for e in ends] == ["failed", "succeeded"]
    assert ends[0]["error"] == "RuntimeError: pipeline exploded"
    with pytest.raises(TypeError, match="list of arguments"):
        run_schedule("* * * * * *", "matta run", tmp_path / "x.jsonl", max_runs=1)  # type: ignore[arg-type]


def test_cli_local_schedule_runs_a_command(tmp_path: Path) -> None:
    log = tmp_path / "cli.jsonl"
    result = CliRunner().invoke(app, ["schedule", "--local", "--cron", "* * * * * *", "--max-runs", "1",
                                      "--command", f"{sys.executable} -c pass", "--log", str(log)])
    assert result.exit_code == 0, result.output
    assert "1 runs (1 succeeded)" in result.output and len(log.read_text().splitlines()) == 2


def test_cli_compiles_the_config_and_schedules_it_with_its_pipeline_root(tmp_path: Path, stub_kfp: str) -> None:
    """`matta schedule --config run.yaml --cron ... --host ...`: no --package; the config is compiled for the
    cluster, its values are the parameters and its pipeline root the recurring run's."""
    import yaml

    from matta_core.config import PipelineConfig
    from pipelines.cluster import cluster_arguments

    root = "gs://matta-bucket/pipeline-root"
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "name": "matta-nightly", "cache_dir": "gs://matta-bucket/cache",
        "cluster": {"pipeline_root": root, "image": "europe-docker.pkg.dev/proj/repo/matta:0.1.0"}}))
    result = CliRunner().invoke(app, ["schedule", "--config", str(config), "--cron", "0 0 2 * * *", "--host", stub_kfp,
                                      "--namespace", "team-a", "--param", "measure_speed=false"])
    assert result.exit_code == 0, result.output
    [body] = [body for method, path, body in StubKfp.calls if (method, path) == ("POST", "/apis/v2beta1/recurringruns")]
    assert body["trigger"] == {"cron_schedule": {"cron": "0 0 2 * * *"}}
    assert body["max_concurrency"] == 1 and body["no_catchup"] is True and body["mode"] == "ENABLE"
    assert body["display_name"] == "matta-nightly" and body["experiment_id"] == "exp-7"
    assert body["runtime_config"]["pipeline_root"] == root
    expected = json.loads(json.dumps({**cluster_arguments(PipelineConfig.load(config)), "measure_speed": False}))
    assert body["runtime_config"]["parameters"] == expected
    assert body["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] == "matta"
    lookups = [path for method, path, _ in StubKfp.calls if method == "GET" and "/experiments" in path]
    assert lookups and all("namespace=team-a" in path for path in lookups)


@pytest.mark.parametrize("backend", ["kfp", "vertex"])
def test_cli_names_cron_when_it_has_the_wrong_number_of_fields(tmp_path: Path, backend: str) -> None:
    result = CliRunner().invoke(app, ["schedule", "--backend", backend, "--cron", "0 0 2 * * * 2026",
                                      "--host", "http://127.0.0.1:9", "--project", "p", "--region", "r"])
    assert result.exit_code == 2 and "--cron" in result.output and "7 fields" in result.output, result.output


def test_cli_refuses_a_config_a_cluster_cannot_run_before_contacting_it(tmp_path: Path, stub_kfp: str) -> None:
    result = CliRunner().invoke(app, ["schedule", "--cron", "0 0 2 * * *", "--host", stub_kfp,
                                      "--set", "name=laptop"])
    assert result.exit_code == 2 and "cluster.pipeline_root" in result.output
    assert StubKfp.calls == []
