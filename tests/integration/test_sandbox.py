"""The sandbox against hostile programs: each is contained, reported, and the host unharmed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from datamill import sandbox
from datamill.sandbox import Limits, SandboxResult, SandboxUnavailable, run_python
from support import skip_or_fail

HUMAN_EVAL = Path(__file__).parents[1] / "data" / "human_eval" / "HumanEval_subset.jsonl"


@pytest.fixture(scope="module", autouse=True)
def contained() -> None:
    try:
        sandbox.check_containment()
    except SandboxUnavailable as e:
        skip_or_fail(str(e))


def run(code: str, **limits: float) -> SandboxResult:
    return run_python({"main.py": code}, "main.py", Limits(**limits))  # type: ignore[arg-type]


def sandboxed() -> list[int]:
    """Processes running as a sandbox uid: none may outlive its run.

    (Counting all processes would not do: others start and end on a shared machine.)
    """
    pids = []
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{p}").st_uid >= sandbox.UID_BASE:
                pids.append(int(p))
        except FileNotFoundError:
            continue
    return pids


@pytest.fixture
def listener() -> Iterator[int]:
    """A port on the host's loopback that accepts connections."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def test_a_plain_program_runs_as_an_unprivileged_user_in_its_own_directory() -> None:
    result = run("import os; print(os.getuid(), os.getcwd()); open('out.txt', 'w').write('x')")
    assert result.passed and result.returncode == 0 and result.killed is None
    uid, cwd = result.stdout.split()
    assert int(uid) >= sandbox.UID_BASE
    assert cwd == "/tmp"


def test_no_network_not_even_the_hosts_loopback(listener: int) -> None:
    socket.create_connection(("127.0.0.1", listener), timeout=2).close()  # open from the host
    code = f"""
import socket
for address in [("127.0.0.1", {listener}), ("127.0.0.1", 5432), ("1.1.1.1", 443)]:
    try:
        socket.create_connection(address, timeout=3)
        print("connected", address)
    except OSError as e:
        print("refused", address, e.errno)
"""
    result = run(code)
    assert result.passed
    assert "connected" not in result.stdout
    assert result.stdout.count("refused") == 3


def test_host_unix_sockets_and_files_are_out_of_sight() -> None:
    code = """
import os, socket
s = socket.socket(socket.AF_UNIX)
for path in ["/var/run/postgresql/.s.PGSQL.5432", "/run/postgresql/.s.PGSQL.5432"]:
    try:
        s.connect(path)
        print("connected", path)
    except OSError:
        pass
print(sorted(os.listdir("/")))
print(os.path.exists("/work"), os.path.exists("/root/.bashrc"), os.path.exists("/etc/passwd"))
"""
    result = run(code)
    assert result.passed
    assert "connected" not in result.stdout
    assert "'work'" not in result.stdout and "'var'" not in result.stdout
    assert result.stdout.splitlines()[-1] == "False False False"


def test_writes_outside_its_directory_fail_or_vanish(tmp_path: Path) -> None:
    host_tmp = Path("/tmp") / f"datamill-escape-{uuid.uuid4().hex}"
    repo = Path(__file__).parents[2] / f"escape-{uuid.uuid4().hex}"
    code = f"""
for path in [{str(host_tmp)!r}, {str(repo)!r}, {str(tmp_path / "x")!r}, "/escape", "/usr/x"]:
    try:
        open(path, "w").write("escaped")
        print("wrote", path)
    except OSError as e:
        print("failed", path, e.strerror)
"""
    result = run(code)
    assert result.passed
    assert f"wrote {host_tmp}" in result.stdout  # the sandbox's own /tmp...
    assert not host_tmp.exists()  # ...is not the host's
    assert not repo.exists() and not (tmp_path / "x").exists()
    assert result.stdout.count("failed") == 4
    assert "Read-only file system" in result.stdout


def test_it_cannot_become_root_again() -> None:
    code = """
import os
try:
    os.setuid(0)
    print("root")
except PermissionError:
    print("denied")
"""
    result = run(code)
    assert result.stdout.strip() == "denied"


def test_secrets_in_the_environment_do_not_reach_it(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"sk-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    code = """
import json, os
print(json.dumps(dict(os.environ)))
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            print(open(f"/proc/{pid}/environ").read())
        except OSError:
            pass
"""
    result = run(code)
    assert result.passed
    assert secret not in result.stdout
    assert "OPENAI_API_KEY" not in result.stdout
    assert json.loads(result.stdout.splitlines()[0]) == sandbox.ENV


def test_an_infinite_loop_is_stopped_at_the_wall_limit() -> None:
    result = run("while True: pass", wall_seconds=1.5, cpu_seconds=30)
    assert result.timed_out and result.killed == "timeout" and not result.passed
    assert result.seconds < 5


def test_cpu_time_is_limited() -> None:
    result = run("while True: pass", wall_seconds=25, cpu_seconds=1)
    assert not result.timed_out
    assert result.killed == "cpu" and not result.passed


def test_a_huge_allocation_fails_inside() -> None:
    result = run("x = bytearray(8 * 1024**3)\nprint('allocated')")
    assert not result.passed and result.killed == "memory"
    assert "MemoryError" in result.stderr and "allocated" not in result.stdout


def test_the_memory_limit_is_what_stops_an_allocation() -> None:
    """300 MB fit on any test machine: refused under a 256 MB limit, granted under 1 GB."""
    code = "x = bytearray(300 * 1024**2)\nprint('allocated', len(x))"
    refused = run(code, memory_bytes=256 * 1024**2)
    assert not refused.passed and refused.killed == "memory"
    assert "allocated" not in refused.stdout
    granted = run(code, memory_bytes=1024**3)
    assert granted.passed and granted.stdout.split() == ["allocated", str(300 * 1024**2)]


def test_files_past_the_size_limits_cannot_be_written() -> None:
    # Python ignores SIGXFSZ, so the write fails (EFBIG) instead of killing the program.
    big = run("open('big', 'wb').write(b'x' * 4 * 1024**2)\nprint('wrote')", file_bytes=1024**2)
    assert not big.passed and "wrote" not in big.stdout
    assert "File too large" in big.stderr
    many = """
import errno
written = 0
try:
    for i in range(64):
        with open(f"part{i}", "wb") as f:
            f.write(b"x" * 512 * 1024)
        written += 1
except OSError as e:
    print("full", written, errno.errorcode[e.errno])
"""
    result = run(many, file_bytes=1024**2, tmp_bytes=4 * 1024**2)
    assert result.passed
    full, written, code = result.stdout.split()
    assert (full, code) == ("full", "ENOSPC") and int(written) < 8  # 4 MB of 512 kB parts


def test_processes_are_capped_and_none_outlive_the_run() -> None:
    code = """
import os, time
children = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        children += 1
except OSError:
    print(children)
"""
    result = run(code, processes=16)
    assert result.passed
    assert 0 < int(result.stdout) < 16
    assert sandboxed() == []  # the sleeping children died with the sandbox


def test_a_fork_bomb_is_contained_and_the_host_keeps_working() -> None:
    bomb = (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    )
    result = run(bomb, wall_seconds=2)
    assert result.timed_out and not result.passed
    assert subprocess.run(["true"], check=False).returncode == 0  # the host can still fork
    assert sandboxed() == []


def test_output_is_truncated() -> None:
    result = run("print('x' * 100_000)", output_chars=1000)
    assert result.passed
    assert len(result.stdout) < 1100 and result.stdout.endswith("[truncated]")


def test_file_names_must_stay_inside() -> None:
    with pytest.raises(ValueError, match="relative"):
        run_python({"../evil.py": "pass"}, "../evil.py")


def test_without_containment_it_refuses_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 1000)
    sandbox.check_containment.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match="needs root"):
            run("print('ran')")
        monkeypatch.setenv("SOME_SECRET", "hunter2")
        loose = run_python(
            {"main.py": "import os; print(sorted(os.environ))"}, "main.py", None, False
        )
        assert loose.passed and "SOME_SECRET" not in loose.stdout
        spin = run_python({"m.py": "while True: pass"}, "m.py", Limits(wall_seconds=1), False)
        assert spin.timed_out
    finally:
        sandbox.check_containment.cache_clear()


def human_eval() -> list[dict[str, str]]:
    return [json.loads(line) for line in HUMAN_EVAL.read_text().splitlines()]


def program(task: dict[str, str], solution: str) -> str:
    return f"{task['prompt']}{solution}\n\n{task['test']}\n\ncheck({task['entry_point']})\n"


@pytest.mark.parametrize("task", human_eval(), ids=lambda t: t["task_id"])
def test_human_eval_canonical_solutions_pass(task: dict[str, str]) -> None:
    result = run_python({"main.py": program(task, task["canonical_solution"])}, "main.py")
    assert result.passed, result.stderr


@pytest.mark.parametrize("task", human_eval()[:3], ids=lambda t: t["task_id"])
def test_human_eval_wrong_solutions_fail(task: dict[str, str]) -> None:
    result = run_python({"main.py": program(task, "    return None\n")}, "main.py")
    assert not result.passed and result.returncode == 1
    assert "AssertionError" in result.stderr
