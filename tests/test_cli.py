"""The ``imagebuild`` command through a real subprocess: every subcommand and every exit code.

Fast cases need no engine (usage, unknown, engine down, dry run); the real tier builds with
the local engine and the plain registry, interrupts a build with SIGINT, and drives a real
build service for status/logs/cancel.
"""

from __future__ import annotations

import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from imagebuild_nb.cli import main
from imagebuild_nb.cli._progress import TerminalProgress
from imagebuild_nb.events import BuildFinished, BuildStarted, CacheHit, LogLine, StepStarted
from tests.service.conftest import ServiceProcess, start_service  # noqa: F401 -- fixture
from tests.support.services import Registry, containers_with, free_port

_SCRIPT = Path(sys.executable).parent / "imagebuild"
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "imagebuild_nb.cli"]
DRIVERS = ("docker-api", "buildkit")


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    # Only what a test sets: the developer's IMAGEBUILD_NB_* must not change the answers.
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEBUILD_NB_")}
    return {**env, **(extra or {})}


def imagebuild(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
               timeout: float = 120) -> Result:
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd,
                          env=_env(env), timeout=timeout)
    assert "Traceback" not in done.stderr, done.stderr
    return Result(done.returncode, done.stdout, done.stderr)


def imagebuild_all(*calls: tuple[str, ...], **options: Any) -> list[Result]:
    """Independent invocations at once (each process spends most of its time importing)."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda args: imagebuild(*args, **options), calls))


def _module(folder: Path, base: str, registry: str | None, name: str, *commands: str) -> Path:
    """images.py with ``image`` (the commands), ``envs`` (a dict of two) and ``pair`` (a list)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "images.py").write_text(
        "from imagebuild_nb import Image\n"
        f"image = Image.from_base({base!r}, name={name!r}, registry={registry!r})"
        f".with_commands({list(commands)!r})\n"
        "envs = {'same': image, 'other': image.with_env_vars({'OTHER': '1'})}\n"
        "pair = [image, envs['other']]\n")
    return folder / "images.py"


# -- fast tier: no engine needed -------------------------------------------------------------------

def test_help_documents_every_exit_code() -> None:
    result = imagebuild("--help")
    assert result.code == 0
    for code in ("0", "1", "2", "3", "4", "5", "6", "130"):
        assert f"\n  {code} " in result.stdout
    assert "IMAGEBUILD_NB_" in result.stdout and "module.py:variable" in result.stdout
    build_help = imagebuild("build", "--help")
    assert build_help.code == 0 and "--no-wait" in build_help.stdout


USAGE_ERRORS = [
    ("frobnicate",),
    ("build",),
    ("check", "no-such-module.py:image"),
    ("check", "images.py:nothing_here"),
    ("check", "broken.py:image"),
    ("build", "images.py:envs"),
    ("build", "images.py:image", "--no-wait"),
    ("build", "images.py:image", "--tag", "Not A Tag"),
    ("build", "images.py:image", "--ca-file", "/no/such/ca.pem"),
    ("build", "Dockerfile.missing", "--name", "x"),
]


def test_usage_errors_exit_2_with_a_json_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    _module(tmp_path, "localhost:5001/library/busybox:latest", "localhost:5001",
            "test/usage", "true")  # the images.py some of the cases name
    (tmp_path / "broken.py").write_text("import no_such_module_for_imagebuild\n")
    # A few through the console script; the rest in-process (the same main(), no start-up cost).
    by_script = USAGE_ERRORS[:3]
    results = imagebuild_all(*(("--json", *args) for args in by_script))
    for args, result in zip(by_script, results, strict=True):
        assert result.code == 2 and result.json()["exit_code"] == 2, (args, result.stderr)
    monkeypatch.chdir(tmp_path)
    for args in USAGE_ERRORS[3:]:
        assert main(["--json", *args]) == 2, args
        out, err = capsys.readouterr()
        assert json.loads(out)["error"]["message"] and "imagebuild: error:" in err, args
        assert "Traceback" not in err
        if "broken.py" in args[1]:
            assert "raised ModuleNotFoundError" in err and "python " in err


def test_progress_on_a_tty_redraws_a_frame_and_plain_output_has_no_ansi() -> None:
    events = [BuildStarted(uri="r/x:1", builder="local", dockerfile="FROM b\nRUN make\n",
                           time=0.0),
              StepStarted(number=1, total=2, instruction="FROM b", time=0.5),
              CacheHit(step=1, time=0.5),
              StepStarted(number=2, total=2, instruction="RUN make", time=1.0),
              LogLine(text="compiling", step=2, time=1.5),
              BuildFinished(uri="r/x:1", pushed=True, time=3.25)]
    for tty in (True, False):
        stream = io.StringIO()
        progress = TerminalProgress(stream, tty=tty)
        for event in events:
            progress.feed(event)
            progress.tick(force=True)  # what the follow loop's idle ticks do
        progress.close()
        text = stream.getvalue()
        # Both end with the same summary: header, the user's steps with their durations.
        summary = text.rsplit("Built in", 1)[1].splitlines()
        assert summary[0] == " 3.2 s"
        assert [line.split()[1:] for line in summary[1:]] == [
            ["prepare", "0.5s"], ["[1/2]", "FROM", "b", "cached"], ["[2/2]", "RUN", "make", "2.2s"]]
        if tty:  # a frame redrawn in place, the running step's last lines under it
            assert "\x1b[" in text and "Building" in text and "     compiling\n" in text
        else:  # the whole log as plain lines
            assert "\x1b[" not in text and "\r" not in text
            assert "[2/2] RUN make\n  compiling\n" in text


def test_check_unknown_when_the_registry_does_not_answer(tmp_path: Path) -> None:
    host = f"127.0.0.1:{free_port()}"
    spec = _module(tmp_path, "localhost:5001/library/busybox:latest", host, "test/unknown", "true")
    result, as_json = imagebuild_all(("check", f"{spec}:image"),
                                     ("--json", "check", f"{host}/x:1"))
    assert (result.code == 4 and result.stdout.startswith("unknown ")
            and "unreachable" in result.stdout)
    document = as_json.json()
    assert document["exit_code"] == 4 and document["results"][0]["state"] == "unknown"


def test_build_with_the_engine_down_exits_5(tmp_path: Path) -> None:
    spec = _module(tmp_path, "localhost:5001/library/busybox:latest", "localhost:5001",
                   "test/down", "true")
    calls = [("build", f"{spec}:image", "--driver", driver) for driver in DRIVERS]
    for result in imagebuild_all(*calls, env={"DOCKER_HOST": "unix:///nonexistent"}):
        assert result.code == 5, result.stderr
        assert "does not answer" in result.stderr and "Hint:" in result.stderr


def test_build_ids_without_a_service_say_local_builds_do_not_outlive_their_process() -> None:
    calls = [(command, "0123456789ab") for command in ("status", "logs", "cancel")]
    for result in imagebuild_all(*calls):
        assert result.code == 5
        assert "do not outlive" in result.stderr and "IMAGEBUILD_NB_REMOTE_URL" in result.stderr


# -- real tier: engine and registry ----------------------------------------------------------------

@pytest.mark.engine
@pytest.mark.registry
def test_check_missing_then_build_pushes_then_check_exists(
        tmp_path: Path, busybox_base: str, plain_registry: Registry, unique_name: str,
        remove_images: list[str]) -> None:
    spec = _module(tmp_path / "project", busybox_base, plain_registry.host, unique_name,
                   f"echo built-by-cli-{unique_name[-8:]}")
    missing = imagebuild("--json", "check", f"{spec}:envs")
    assert missing.code == 3
    rows = missing.json()["results"]
    assert [r["spec"] for r in rows] == [f"{spec}:envs[same]", f"{spec}:envs[other]"]
    assert {r["state"] for r in rows} == {"missing"}

    built = imagebuild("--json", "build", f"{spec}:image", cwd=tmp_path)
    assert built.code == 0, built.stderr
    document = built.json()
    remove_images.append(document["uri"])
    repository, tag = document["uri"].split("/", 1)[1].rsplit(":", 1)
    assert document["status"] == "built"
    assert document["digest"] == plain_registry.manifest_digest(repository, tag)
    assert f"built-by-cli-{unique_name[-8:]}" in built.stderr and "\x1b[" not in built.stderr
    assert "[2/2] RUN echo" in built.stderr or "[2/" in built.stderr

    exists, again, pair = imagebuild_all(("check", f"{spec}:image"), ("build", f"{spec}:image"),
                                         ("check", f"{spec}:pair"))
    assert exists.code == 0 and exists.stdout.startswith(f"exists   {document['uri']}")
    assert again.code == 0 and "status: exists" in again.stdout
    assert pair.code == 3  # one of the two is still missing


@pytest.mark.engine
@pytest.mark.registry
def test_dockerfile_spec_checks_and_builds_with_name_registry_and_tag(
        tmp_path: Path, busybox_base: str, plain_registry: Registry, unique_name: str,
        remove_images: list[str]) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {busybox_base}\nCOPY hello.txt /hello.txt\n")
    (tmp_path / "hello.txt").write_text(unique_name)
    tag = f"v-{uuid.uuid4().hex[:8]}"
    args = (str(tmp_path / "Dockerfile"), "--name", unique_name,
            "--registry", plain_registry.host, "--tag", tag)
    uri = f"{plain_registry.host}/{unique_name}:{tag}"
    remove_images.append(uri)
    assert imagebuild("check", *args).code == 3
    built = imagebuild("--json", "build", *args)
    assert built.code == 0, built.stderr
    assert built.json()["uri"] == uri
    assert built.json()["digest"] == plain_registry.manifest_digest(unique_name, tag)
    assert imagebuild("check", *args).code == 0


@pytest.mark.engine
@pytest.mark.registry
def test_dry_run_builds_and_pushes_nothing(
        tmp_path: Path, busybox_base: str, plain_registry: Registry, unique_name: str,
        docker_client: docker.DockerClient) -> None:
    spec = _module(tmp_path, busybox_base, plain_registry.host, unique_name, "echo dry")
    result, text = imagebuild_all(("--json", "build", f"{spec}:image", "--dry-run"),
                                  ("build", f"{spec}:image", "--dry-run"))
    assert result.code == 0, result.stderr
    plan = result.json()
    assert plan["status"] == "dry-run" and "RUN echo dry" in plan["dry_run"]["dockerfile"]
    assert plan["uri"] in plan["dry_run"]["command"]
    assert "--- Dockerfile ---" in text.stdout and "Would run:" in text.stdout
    # Other tests share the engine: look for this spec's image, not at the whole image list.
    assert not docker_client.images.list(name=unique_name)
    tags = httpx.get(f"{plain_registry.url}/v2/{unique_name}/tags/list")
    assert tags.status_code == 404 or not tags.json().get("tags")


@pytest.mark.engine
@pytest.mark.parametrize("driver", DRIVERS)
def test_failing_build_exits_1_with_step_and_log_tail(
        driver: str, tmp_path: Path, busybox_base: str, unique_name: str) -> None:
    spec = _module(tmp_path, busybox_base, None, unique_name, "echo about-to-fail && exit 4")
    result = imagebuild("--json", "build", f"{spec}:image", "--driver", driver)
    assert result.code == 1
    error = result.json()["error"]
    assert error["type"] == "BuildFailedError" and error["exit_code"] == 4
    assert "about-to-fail" in error["log_tail"]
    assert "Failing step:" in result.stderr and "echo about-to-fail && exit 4" in result.stderr
    assert "Last log lines:\n  about-to-fail" in result.stderr


def _lines(stream: Any) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    return lines


def _wait_for(lines: queue.Queue[str], wanted: Callable[[str], bool], seen: list[str],
              timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if wanted(line):
            return
    pytest.fail("never saw the expected line:\n" + "".join(seen))


def _rest(lines: queue.Queue[str]) -> Iterator[str]:
    """The lines still coming from a process that ended."""
    while True:
        try:
            yield lines.get(timeout=2)
        except queue.Empty:
            return


@pytest.mark.engine
@pytest.mark.parametrize("driver", DRIVERS)
def test_sigint_cancels_the_build_exits_130_and_leaves_no_container(
        driver: str, tmp_path: Path, busybox_base: str, docker_client: docker.DockerClient) -> None:
    marker = uuid.uuid4().hex
    spec = _module(tmp_path, busybox_base, None, f"test/sigint-{marker[:8]}",
                   f"echo started-{marker} && sleep 60")
    # -v: an unexpected error prints its traceback (shown below if the exit code is wrong).
    with subprocess.Popen([*CLI, "build", f"{spec}:image", "--driver", driver, "-v"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=_env(), start_new_session=True) as process:
        assert process.stderr is not None
        seen: list[str] = []
        lines = _lines(process.stderr)
        _wait_for(lines, lambda line: line.rstrip().endswith(
            f"started-{marker}") and "echo" not in line, seen)
        began = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends: the whole foreground group
        code = process.wait(timeout=60)
        assert code == 130, "".join(seen) + "".join(_rest(lines))
        assert time.monotonic() - began < 20
    assert not containers_with(docker.from_env(), marker)
    assert not docker_client.images.list(name=f"test/sigint-{marker[:8]}")


# -- real tier: the build service ------------------------------------------------------------------

@pytest.mark.engine
@pytest.mark.registry
def test_remote_build_status_logs_and_cancel_by_id(
        start_service: Callable[..., ServiceProcess], tmp_path: Path, busybox_base: str,  # noqa: F811 -- fixture
        plain_registry: Registry, unique_name: str, remove_images: list[str]) -> None:
    service = start_service()
    env = {"IMAGEBUILD_NB_REMOTE_URL": service.url, "IMAGEBUILD_NB_REMOTE_TOKEN": service.token}
    quick = _module(tmp_path / "quick", busybox_base, plain_registry.host, unique_name,
                    f"echo remote-{unique_name[-8:]}")
    built = imagebuild("--json", "build", f"{quick}:image", "--builder", "remote", env=env)
    assert built.code == 0, built.stderr
    document = built.json()
    remove_images.append(document["uri"])
    build_id = document["build_id"]
    assert build_id and document["run_url"].startswith(service.url)
    repository, tag = document["uri"].split("/", 1)[1].rsplit(":", 1)
    assert document["digest"] == plain_registry.manifest_digest(repository, tag)
    slow = _module(tmp_path / "slow", busybox_base, plain_registry.host, f"{unique_name}-slow",
                   f"echo slow-started {unique_name} && sleep 60")  # unique: never cached
    status, logs, submitted = imagebuild_all(
        ("status", build_id), ("logs", build_id),
        ("--json", "build", f"{slow}:image", "--builder", "remote", "--no-wait"), env=env)
    assert status.code == 0 and "succeeded" in status.stdout and document["digest"] in status.stdout
    assert logs.code == 0 and f"remote-{unique_name[-8:]}" in logs.stdout
    assert submitted.code == 0 and submitted.json()["status"] == "running", submitted.stderr
    slow_id = submitted.json()["build_id"]
    with subprocess.Popen([*CLI, "--json", "logs", "--follow", slow_id], env=_env(env),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as follower:
        assert follower.stderr is not None and follower.stdout is not None
        started = f"slow-started {unique_name}"
        _wait_for(_lines(follower.stderr), lambda line: line.strip() == started, [])
        assert imagebuild("status", slow_id, env=env).code == 0  # running
        assert imagebuild("cancel", slow_id, env=env).code == 0
        assert follower.wait(timeout=30) == 1
        assert json.loads(follower.stdout.read())["build"]["status"] == "cancelled"
    status, unknown = imagebuild_all(("--json", "status", slow_id),
                                     ("status", "ffffffffffffffff"), env=env)
    assert status.code == 1 and status.json()["build"]["status"] == "cancelled"
    assert unknown.code == 6 and "has no build" in unknown.stderr
