"""Label Studio under the annotate_load workload, for comparison in the same run.

Label Studio is installed on first use into benchmarks/.venv-labelstudio and started with its
default server (``label-studio start``, Django's threaded server, SQLite). One organisation
with legacy API tokens, one user and token per simulated annotator, a project whose
``maximum_annotations`` is the overlap, tasks imported over its API. Each annotator loops
over its labeling stream (``GET /api/projects/ID/next``) and submits one choice
(``POST /api/tasks/ID/annotations``). Afterwards its database is read for tasks holding more
annotations than their limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from annotate_load import Run, free_port, think, wait_port

HERE = Path(__file__).parent
VENV = HERE / ".venv-labelstudio"
PYTHON = VENV / "bin" / "python"
PACKAGE = "label-studio>=1.20,<2"
CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="verdict" toName="text"><Choice value="good"/><Choice value="bad"/></Choices>
</View>"""
ANSWER = [
    {"from_name": "verdict", "to_name": "text", "type": "choices", "value": {"choices": ["good"]}}
]

# Run inside Label Studio's venv: its own Django models create what its web UI would.
SETUP = """
import json, os, sys
from label_studio.server import _apply_database_migrations, _setup_env
_setup_env()
_apply_database_migrations()
from organizations.models import Organization
from projects.models import Project
from rest_framework.authtoken.models import Token
from users.models import User
n, overlap, config = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
admin = User.objects.create_user(email="admin@bench.local", password="bench-pass")
org = Organization.create_organization(created_by=admin, title="bench",
                                       legacy_api_tokens_enabled=True)
tokens = []
for user in [admin] + [User.objects.create_user(email=f"a{i}@bench.local", password="bench-pass")
                       for i in range(n)]:
    org.add_user(user)
    user.active_organization = org
    user.save(update_fields=["active_organization"])
    tokens.append(Token.objects.get_or_create(user=user)[0].key)
project = Project.objects.create(title="load", created_by=admin, organization=org,
                                 label_config=config, maximum_annotations=overlap)
print(json.dumps({"admin": tokens[0], "annotators": tokens[1:], "project": project.id}))
"""


@dataclass
class Result:
    run: Run
    over: int  # tasks holding more annotations than maximum_annotations


def install() -> bool:
    if PYTHON.exists() and (VENV / "bin" / "label-studio").exists():
        return True
    print("label-studio: installing into benchmarks/.venv-labelstudio (first use only)...")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(PYTHON), "-m", "pip", "install", "--quiet", PACKAGE]
        subprocess.run(pip, check=True, timeout=1800)
        return True
    except (subprocess.SubprocessError, OSError) as e:
        print(f"label-studio: skipped, it did not install ({e})")
        return False


async def annotator(
    http: aiohttp.ClientSession,
    url: str,
    token: str,
    project: int,
    run: Run,
    stop: float,
    pause: float,
) -> None:
    headers = {"Authorization": f"Token {token}"}
    await think(pause)
    while time.monotonic() < stop:
        t0 = time.perf_counter()
        try:
            async with http.get(f"{url}/api/projects/{project}/next", headers=headers) as r:
                task = await r.json() if r.status == 200 else None
                run.next_ms.append((time.perf_counter() - t0) * 1000)
                if r.status == 404:
                    return  # nothing left for this user
                if task is None:
                    run.errors += 1
                    continue
            await think(pause)
            t0 = time.perf_counter()
            body = {"result": ANSWER, "lead_time": 1.0, "task": task["id"], "project": project}
            async with http.post(
                f"{url}/api/tasks/{task['id']}/annotations/", json=body, headers=headers
            ) as r:
                await r.read()
                run.submit_ms.append((time.perf_counter() - t0) * 1000)
                if r.status == 201:
                    run.submitted += 1
                else:
                    run.errors += 1
        except (aiohttp.ClientError, TimeoutError):
            run.errors += 1


async def drive(url: str, tokens: list[str], project: int, seconds: float, pause: float) -> Run:
    run = Run()
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=timeout
    ) as http:
        start = time.monotonic()
        stop = start + seconds
        await asyncio.gather(*(annotator(http, url, t, project, run, stop, pause) for t in tokens))
        run.seconds = time.monotonic() - start
    return run


def over_limit(data_dir: Path, overlap: int) -> int:
    with contextlib.closing(sqlite3.connect(data_dir / "label_studio.sqlite3")) as db:
        rows = db.execute(
            "SELECT COUNT(*) FROM (SELECT task_id FROM task_completion "
            "WHERE was_cancelled = 0 GROUP BY task_id HAVING COUNT(*) > ?)",
            (overlap,),
        ).fetchone()
    return int(rows[0])


def measure(
    annotators: int, items: int, overlap: int, seconds: float, pause: float
) -> Result | None:
    if not install():
        return None
    with tempfile.TemporaryDirectory(prefix="ls-bench-") as tmp:
        data_dir = Path(tmp)
        env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir)}
        env.pop("VIRTUAL_ENV", None)
        made = subprocess.run(
            [str(PYTHON), "-c", SETUP, str(annotators), str(overlap), CONFIG],
            env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        if made.returncode != 0:
            print(f"label-studio: skipped, setup failed: {made.stderr.strip()[-300:]}")
            return None
        setup = json.loads(made.stdout.strip().splitlines()[-1])
        port = free_port()
        cmd = [str(VENV / "bin" / "label-studio"), "start", "--no-browser", "--port", str(port)]
        cmd += ["--data-dir", str(data_dir), "--log-level", "ERROR"]
        server = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_port(port, server, timeout=300)
            url = f"http://127.0.0.1:{port}"
            tasks = [
                {"text": f"Question {i}: what is {i} + {i}? It is {2 * i}."} for i in range(items)
            ]
            import urllib.request

            request = urllib.request.Request(
                f"{url}/api/projects/{setup['project']}/import",
                data=json.dumps(tasks).encode(),
                headers={
                    "Authorization": f"Token {setup['admin']}",
                    "Content-Type": "application/json",
                },
            )
            with urllib.request.urlopen(request, timeout=300) as r:
                assert r.status == 201, r.status
            run = asyncio.run(drive(url, setup["annotators"], setup["project"], seconds, pause))
        finally:
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        return Result(run, over_limit(data_dir, overlap))
