"""The first process inside a sandbox: it builds the sandbox, then runs the program in it.

:mod:`datamill.sandbox` starts this file as root under ``unshare`` in new mount, PID,
network, IPC and UTS namespaces, with the interpreter in isolated mode (``-I -S``), so it
uses the standard library only. It

1. builds a root filesystem on a tmpfs that shows only what Python needs, read-only, plus
   a size-limited writable ``/tmp`` holding the program's files, and switches to it with
   ``pivot_root``: the host's files, sockets and ``/proc`` are out of sight;
2. sets the resource limits, drops to an unprivileged uid with no capabilities and
   ``no_new_privs`` (so set-uid binaries cannot give them back);
3. forks the program, reaps it and writes its exit status to the status pipe. It is
   PID 1 of the namespace: when it exits, the kernel kills whatever the program left.

Its one argument is a JSON spec: ``root`` (an empty host directory to build in),
``files`` (host directory to copy into ``/tmp``), ``read_only`` (host paths to show),
``uid``, ``tmp_bytes``, ``limits`` (resource name → [soft, hard]), ``argv``, ``env`` and
``status_fd``.
"""

import ctypes
import json
import os
import platform
import resource
import shutil
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_NO_NEW_PRIVS = 38
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}  # not in glibc: called by number

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _c(text):  # type: ignore[no-untyped-def]
    return None if text is None else os.fsencode(text)


def mount(source, target, fstype=None, flags=0, data=None):  # type: ignore[no-untyped-def]
    result = _libc.mount(_c(source), _c(target), _c(fstype), ctypes.c_ulong(flags), _c(data))
    _check(result, f"mount {target}")


def bind_read_only(source: str, target: str, flags: int = MS_NOSUID | MS_NODEV) -> None:
    mount(source, target, None, MS_BIND)
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)


def show(path: str, root: str) -> None:
    """Make host ``path`` appear at the same place under ``root``: a symlink or read-only bind."""
    target = root + path
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.islink(path):
        os.symlink(os.readlink(path), target)
        return
    if os.path.isdir(path):
        os.makedirs(target, exist_ok=True)
    else:
        open(target, "w").close()
    bind_read_only(path, target)


def build(spec: dict) -> None:  # type: ignore[type-arg]
    root, uid = spec["root"], spec["uid"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here reaches the host
    mount("sandbox", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    for path in spec["read_only"]:
        show(path, root)
    os.makedirs(root + "/dev")
    for name in ("null", "zero", "full", "random", "urandom"):
        open(f"{root}/dev/{name}", "w").close()
        bind_read_only(f"/dev/{name}", f"{root}/dev/{name}", MS_NOSUID | MS_NOEXEC)
    os.makedirs(root + "/proc")
    mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.makedirs(root + "/tmp")
    size = f"size={spec['tmp_bytes']},mode=0700,uid={uid},gid={uid}"
    mount("sandbox-tmp", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, size)
    shutil.copytree(spec["files"], root + "/tmp", dirs_exist_ok=True)
    for folder, dirs, files in os.walk(root + "/tmp"):
        for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
            os.chown(name, uid, uid)
    os.chdir(root)
    _check(_libc.syscall(PIVOT_ROOT[platform.machine()], b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", MNT_DETACH), "umount old root")
    os.chdir("/")
    mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def drop(spec: dict) -> None:  # type: ignore[type-arg]
    for name, (soft, hard) in spec["limits"].items():
        resource.setrlimit(getattr(resource, name), (soft, hard))
    uid = spec["uid"]
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    if os.geteuid() == 0 or os.getegid() == 0:
        raise OSError("still root after dropping privileges")


def run(spec: dict) -> str:  # type: ignore[type-arg]
    """Run the program, reap every child until it is done; its status as text."""
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir("/tmp")
            os.execve(spec["argv"][0], spec["argv"], spec["env"])
        finally:
            os._exit(127)
    while True:
        done, status = os.wait()
        if done == pid:
            break
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit {os.waitstatus_to_exitcode(status)}"


def main() -> None:
    spec = json.loads(sys.argv[1])
    status_fd = spec["status_fd"]
    os.set_inheritable(status_fd, False)
    try:
        build(spec)
        drop(spec)
    except Exception as e:  # any failure: say so and run nothing
        os.write(status_fd, f"error {e}".encode())
        os._exit(125)
    os.write(status_fd, run(spec).encode())


if __name__ == "__main__":
    main()
