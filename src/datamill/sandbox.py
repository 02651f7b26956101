"""Run untrusted Python (a model's code and its tests) without letting it touch the host.

Each run gets new mount, PID, network, IPC and UTS namespaces (``unshare`` from
util-linux), a root filesystem that shows only the Python installation, read-only, and a
size-limited tmpfs as its working directory (see :mod:`datamill.sandbox_init`), a
fresh unprivileged uid with no capabilities, resource limits (CPU time, address space,
processes, file size, open files), a wall-clock timeout and a scrubbed environment. So:

- no network: the new network namespace has only a loopback that is down, and host Unix
  sockets are not in the sandbox's filesystem;
- writes land in the sandbox's tmpfs, which vanishes with it, or fail (read-only root);
- a fork bomb hits the per-uid process limit, and everything the program started dies
  with the PID namespace when the program ends or is killed.

Memory is bounded per process (``RLIMIT_AS``): a run uses at most ``processes ×
memory_bytes`` plus its tmpfs. It needs root; without containment :func:`run_python`
refuses to run (:class:`SandboxUnavailable`) unless called with ``contained=False``,
which keeps only the limits, timeout, clean environment and throwaway directory.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import asdict, dataclass, replace
from functools import cache
from pathlib import Path, PurePosixPath
from typing import IO

from datamill.errors import DatamillError

INIT = Path(__file__).with_name("sandbox_init.py")
ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8"}
UID_BASE = 1_800_000_000  # sandbox uids: far above any real account, one per run


class SandboxUnavailable(DatamillError):
    """The sandbox cannot contain a program on this machine, so it will not run one."""


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 10.0
    cpu_seconds: int = 5
    memory_bytes: int = 512 * 1024**2  # address space per process
    processes: int = 32  # for the sandbox's uid, the sandbox's own init included
    file_bytes: int = 16 * 1024**2  # largest file it may write, stdout and stderr included
    tmp_bytes: int = 32 * 1024**2  # its whole writable directory
    open_files: int = 256
    output_chars: int = 8192  # kept of stdout and of stderr, each


@dataclass(frozen=True)
class SandboxResult:
    passed: bool  # exited 0 within its limits
    returncode: int | None  # negative: killed by that signal
    timed_out: bool
    killed: str | None  # "timeout", "cpu", "memory", "file_size" or "signal <name>"
    stdout: str
    stderr: str
    seconds: float

    def as_details(self) -> dict[str, str | int | float | bool | None]:
        """Everything but ``passed``, for a :class:`~datamill.records.CheckResult`."""
        details = asdict(self)
        del details["passed"]
        return {**details, "seconds": round(self.seconds, 3)}


def python() -> str:
    """The base interpreter (not a virtualenv's): what the sandbox shows and runs."""
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def _read_only_paths() -> list[str]:
    wanted = ["/usr", "/bin", "/lib", "/lib64", "/etc/ld.so.cache"]
    wanted.append(os.path.realpath(sys.base_prefix))
    paths = [p for p in wanted if os.path.lexists(p)]
    return [p for p in paths if not any(p.startswith(q + "/") for q in paths)]


def _rlimits(limits: Limits) -> dict[str, tuple[int, int]]:
    """Soft and hard resource limits by name, for the sandboxed process."""
    cpu = limits.cpu_seconds
    return {
        "RLIMIT_CPU": (cpu, cpu + 1),  # SIGXCPU, then SIGKILL if it is caught
        "RLIMIT_AS": (limits.memory_bytes,) * 2,
        "RLIMIT_NPROC": (limits.processes,) * 2,
        "RLIMIT_FSIZE": (limits.file_bytes,) * 2,
        "RLIMIT_NOFILE": (limits.open_files,) * 2,
        "RLIMIT_CORE": (0, 0),
    }


def run_python(
    files: Mapping[str, str],
    main: str,
    limits: Limits | None = None,
    contained: bool = True,
) -> SandboxResult:
    """Run ``python main`` in a sandbox whose working directory holds ``files``.

    Blocking; from async code use ``asyncio.to_thread``. Raises
    :class:`SandboxUnavailable` if ``contained`` and this machine cannot contain it.
    """
    if contained:
        check_containment()
    return _execute(files, main, limits or Limits(), contained)


def _execute(files: Mapping[str, str], main: str, limits: Limits, contained: bool) -> SandboxResult:
    with tempfile.TemporaryDirectory(prefix="datamill-sandbox-") as staging:
        work = Path(staging) / "files"
        for name, text in files.items():
            path = PurePosixPath(name)
            if path.is_absolute() or ".." in path.parts:
                raise ValueError(f"sandbox file names must be relative and inside: {name!r}")
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            (work / path).write_text(text)
        argv = [python(), "-I", "-S", "-B", main]
        if contained:
            return _run_contained(Path(staging), argv, limits)
        return _run_uncontained(work, argv, limits)


def _run_contained(staging: Path, argv: list[str], limits: Limits) -> SandboxResult:
    (staging / "root").mkdir()
    uid = UID_BASE + random.randrange(100_000_000)
    status_read, status_write = os.pipe()
    spec = {
        "root": str(staging / "root"),
        "files": str(staging / "files"),
        "read_only": _read_only_paths(),
        "uid": uid,
        "tmp_bytes": limits.tmp_bytes,
        "limits": _rlimits(limits),
        "argv": argv,
        "env": ENV,
        "status_fd": status_write,
    }
    unshare = shutil.which("unshare") or "unshare"
    namespaces = ["--mount", "--pid", "--fork", "--kill-child", "--net", "--ipc", "--uts"]
    command = [unshare, *namespaces, "--", python(), "-I", "-S", "-B", str(INIT), json.dumps(spec)]
    try:
        result = _supervise(command, staging, limits, {}, pass_fds=(status_write,))
    finally:
        os.close(status_write)
        with os.fdopen(status_read, "rb") as f:
            status = f.read().decode(errors="replace").split(" ", 1)
        _wait_until_gone(uid)
    # The init's report is the program's status; unshare's own is only a fallback.
    if status[0] == "error":
        raise SandboxUnavailable(f"the sandbox could not be built: {status[1]}")
    if status[0] == "exit" and not result.timed_out:
        return _judged(result, int(status[1]))
    if status[0] == "signal" and not result.timed_out:
        return _judged(result, -int(status[1]))
    return result


def _run_uncontained(work: Path, argv: list[str], limits: Limits) -> SandboxResult:
    def preexec() -> None:
        for name, value in _rlimits(limits).items():
            resource.setrlimit(getattr(resource, name), value)

    env = {**ENV, "HOME": str(work), "TMPDIR": str(work)}
    return _supervise(argv, work, limits, env, preexec=preexec)


def _supervise(
    command: list[str],
    cwd: Path,
    limits: Limits,
    env: dict[str, str],
    pass_fds: tuple[int, ...] = (),
    preexec: Callable[[], None] | None = None,
) -> SandboxResult:
    """Start ``command``, kill its whole process group at the wall limit, collect output."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            pass_fds=pass_fds,
            start_new_session=True,
            preexec_fn=preexec,
        )
        timed_out = False
        try:
            proc.wait(timeout=limits.wall_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        seconds = time.monotonic() - started
        stdout, stderr = (_head(f, limits.output_chars) for f in (out, err))
    result = SandboxResult(False, proc.returncode, timed_out, None, stdout, stderr, seconds)
    return replace(result, killed="timeout") if timed_out else _judged(result, proc.returncode)


def _head(f: IO[bytes], chars: int) -> str:
    f.seek(0)
    text = f.read(chars * 4).decode(errors="replace")
    return text if len(text) <= chars else text[:chars] + "\n…[truncated]"


_SIGNALS = {signal.SIGXCPU: "cpu", signal.SIGXFSZ: "file_size"}


def _judged(result: SandboxResult, code: int) -> SandboxResult:
    """``result`` of a program that ended by itself with ``code`` (negative: a signal)."""
    killed = None
    if code < 0:
        try:
            sig = signal.Signals(-code)
            killed = _SIGNALS.get(sig, f"signal {sig.name}")
        except ValueError:
            killed = f"signal {-code}"
    elif code != 0 and "MemoryError" in result.stderr:
        killed = "memory"
    return replace(result, passed=code == 0, returncode=code, killed=killed)


def _processes_of(uid: int) -> list[int]:
    pids = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with suppress(FileNotFoundError):
            if os.stat(f"/proc/{entry}").st_uid == uid:
                pids.append(int(entry))
    return pids


def _wait_until_gone(uid: int, seconds: float = 10.0) -> None:
    """Return once no process of the run's own uid is left, killing stragglers by pid.

    The kernel kills them when the namespace's init exits; this makes it happen faster
    and makes sure it did before the run counts as over.
    """
    deadline = time.monotonic() + seconds
    while (pids := _processes_of(uid)) and time.monotonic() < deadline:
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


@cache
def check_containment() -> None:
    """Raise :class:`SandboxUnavailable` unless a contained run works here (checked once)."""
    if sys.platform != "linux":
        raise SandboxUnavailable("the sandbox needs Linux namespaces")
    if os.geteuid() != 0:
        raise SandboxUnavailable(
            "the sandbox needs root to create namespaces and switch to an unprivileged uid; "
            "run as root, or opt out of containment explicitly"
        )
    if shutil.which("unshare") is None:
        raise SandboxUnavailable("the sandbox needs `unshare` from util-linux on PATH")
    result = _execute({"probe.py": "print('ok')"}, "probe.py", Limits(), contained=True)
    if not (result.passed and result.stdout.strip() == "ok"):
        raise SandboxUnavailable(f"a contained probe run failed: {result.stderr[-500:]}")
