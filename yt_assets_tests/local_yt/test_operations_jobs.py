"""The job runner of the local YT (``local_yt/jobs.py``): real processes, real descriptors."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from yt_assets.local_yt.jobs import (
    JobLaunch,
    JobProcess,
    SandboxFile,
    kill_orphaned_job,
    output_table_fd,
    sandbox_relative_path,
)

BASE_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a killed orphan waiting for init to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def make_launch(tmp_path: Path, command: str, **options: object) -> JobLaunch:
    values: dict[str, object] = {
        "command": command,
        "sandbox": tmp_path / "sandbox",
        "stderr_path": tmp_path / "stderr",
        "environment": BASE_ENV,
    }
    values.update(options)
    return JobLaunch(**values)  # type: ignore[arg-type]


def test_output_tables_go_to_descriptors_1_4_7(tmp_path: Path) -> None:
    (tmp_path / "input").write_bytes(b"row\n")
    outputs = tuple(tmp_path / f"out{i}" for i in range(3))
    launch = make_launch(
        tmp_path,
        "cat; echo one >&4; echo two >&7; echo problem >&2; echo stats >&5",
        stdin_path=tmp_path / "input",
        output_paths=outputs,
    )

    outcome = JobProcess(launch).run()

    assert outcome.error is None and not outcome.aborted and outcome.exit_code == 0
    assert [path.read_bytes() for path in outputs] == [b"row\n", b"one\n", b"two\n"]
    assert (tmp_path / "stderr").read_bytes() == b"problem\n"
    assert outcome.stderr_size == len(b"problem\n")


def test_redirect_stdout_to_stderr_moves_the_first_table_to_descriptor_4(tmp_path: Path) -> None:
    output = tmp_path / "out0"
    launch = make_launch(
        tmp_path,
        'echo "printed"; echo "row" >&$YT_FIRST_OUTPUT_TABLE_FD',
        output_paths=(output,),
        redirect_stdout_to_stderr=True,
        environment={**BASE_ENV, "YT_FIRST_OUTPUT_TABLE_FD": "4"},
    )

    outcome = JobProcess(launch).run()

    assert outcome.error is None
    assert output.read_bytes() == b"row\n"
    assert (tmp_path / "stderr").read_bytes() == b"printed\n"
    assert output_table_fd(1, launch.first_output_fd) == 7


def test_sandbox_holds_files_and_is_the_working_directory(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho from-script\n")
    data = tmp_path / "data.txt"
    data.write_text("payload")
    output = tmp_path / "out0"
    launch = make_launch(
        tmp_path,
        "./tools/run.sh; cat data.txt; echo; pwd; env | sort",
        output_paths=(output,),
        files=(
            SandboxFile(source=script, name="tools/run.sh", executable=True),
            SandboxFile(source=data, name="data.txt"),
        ),
        environment={**BASE_ENV, "ONLY_THIS": "1"},
    )

    outcome = JobProcess(launch).run()

    assert outcome.error is None
    lines = output.read_text().splitlines()
    assert lines[:3] == ["from-script", "payload", str(tmp_path / "sandbox")]
    names = {line.split("=", 1)[0] for line in lines[3:]}
    assert names <= {"PATH", "ONLY_THIS", "PWD", "SHLVL", "_"}


def test_failing_command_reports_exit_code_and_keeps_stderr(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, "echo 'something broke' >&2; exit 3")

    outcome = JobProcess(launch).run()

    assert outcome.exit_code == 3
    assert outcome.error is not None
    assert outcome.error["message"] == "User job failed"
    assert outcome.error["inner_errors"][0]["attributes"] == {"exit_code": 3}
    assert (tmp_path / "stderr").read_bytes() == b"something broke\n"


def test_stderr_keeps_head_and_tail_within_the_limit(tmp_path: Path) -> None:
    command = "printf 'HEAD'; head -c 100000 /dev/zero | tr '\\0' x; printf 'TAIL'"
    launch = make_launch(tmp_path, "{ " + command + "; } >&2", max_stderr_size=1000)

    outcome = JobProcess(launch).run()

    stored = (tmp_path / "stderr").read_bytes()
    assert outcome.error is None
    assert stored.startswith(b"HEADx") and stored.endswith(b"xTAIL")
    assert b"bytes of stderr skipped" in stored
    assert len(stored) < 1100


def test_input_not_fully_consumed_fails_only_when_checked(tmp_path: Path) -> None:
    (tmp_path / "input").write_bytes(b"x" * 1_000_000)
    unchecked = make_launch(tmp_path, "true", stdin_path=tmp_path / "input")
    assert JobProcess(unchecked).run().error is None

    checked = make_launch(
        tmp_path,
        "true",
        sandbox=tmp_path / "sandbox2",
        stdin_path=tmp_path / "input",
        check_input_fully_consumed=True,
    )
    error = JobProcess(checked).run().error
    assert error is not None and "not fully consumed" in error["message"]


def test_time_limit_kills_the_job(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, "sleep 60", time_limit_seconds=0.2)

    outcome = JobProcess(launch).run()

    assert outcome.error is not None and outcome.error["message"] == "Job time limit exceeded"


def test_abort_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    launch = make_launch(tmp_path, f"sleep 60 & echo $! > {pid_file}; wait")
    process = JobProcess(launch)
    outcomes = []
    runner = threading.Thread(target=lambda: outcomes.append(process.run()))
    runner.start()
    while not (pid_file.exists() and pid_file.read_text().strip()):
        runner.join(0.02)
    child_pid = int(pid_file.read_text())

    process.abort()
    runner.join()

    assert outcomes[0].aborted
    deadline = time.monotonic() + 30  # SIGKILL of a group member is delivered asynchronously
    while pid_alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not pid_alive(child_pid)


def test_the_pid_file_is_there_before_the_job_runs_and_gone_after(tmp_path: Path) -> None:
    pid_path = tmp_path / "job.pid"
    launch = make_launch(tmp_path, f"test -e {pid_path}", pid_path=pid_path)

    outcome = JobProcess(launch).run()

    assert outcome.exit_code == 0, "the job ran before its pid file existed"
    assert not pid_path.exists()


def test_an_orphan_is_killed_by_its_job_id_even_with_an_empty_pid_file(tmp_path: Path) -> None:
    """A server killed between starting a job and writing its pid leaves an empty pid file."""

    def sleeper(job_id: str) -> subprocess.Popen[bytes]:
        env = {**BASE_ENV, "YT_JOB_ID": job_id}
        return subprocess.Popen(["sleep", "600"], env=env, start_new_session=True)

    orphan, other = sleeper("1-2-3-4"), sleeper("5-6-7-8")
    try:
        (tmp_path / "1-2-3-4.pid").write_text("")

        assert kill_orphaned_job(tmp_path / "1-2-3-4.pid", "1-2-3-4") == 1

        assert orphan.wait(timeout=10) == -9
        assert other.poll() is None, "a process of another job was killed"
        assert not (tmp_path / "1-2-3-4.pid").exists()
    finally:
        for process in (orphan, other):
            process.kill()
            process.wait()


def test_abort_before_start_never_spawns(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    process = JobProcess(make_launch(tmp_path, f"touch {marker}"))

    process.abort()
    outcome = process.run()

    assert outcome.aborted and not marker.exists()


@pytest.mark.parametrize("name", ["", "/etc/passwd", "../escape", "a/../../b", "."])
def test_sandbox_file_names_cannot_escape(name: str) -> None:
    with pytest.raises(ValueError):
        sandbox_relative_path(name)
