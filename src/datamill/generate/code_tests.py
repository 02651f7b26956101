"""Check a Python solution and its one-line ``assert`` tests, then run them in the sandbox.

The static check says why a solution cannot be verified as is (not valid Python, the
function is not defined, a test is not one assert calling it). The run executes the
solution and each test separately in :mod:`datamill.sandbox`; a runner prints each test's
failure (or null) after a random nonce, so a solution that exits early or prints cannot
pass for the runner. The result is a ``tests_pass`` :class:`CheckResult`: passed only if
every test passed and the run ended cleanly within its limits; score is the share of tests
passed. :func:`verify` does both: a static problem fails the verdict whatever the run
says (a test that is not an assert calling the function verifies nothing), and the run's
output is kept to show what happened.
"""

from __future__ import annotations

import ast
import json
import re
import secrets
from collections.abc import Sequence

from datamill.records import CheckResult
from datamill.sandbox import Limits, run_python

_FENCE = re.compile(r"^\s*```[\w+-]*[ \t]*\n(.*?)\n?```\s*$", re.DOTALL)


def unfenced(code: str) -> str:
    """``code`` without the Markdown fence models often wrap it in."""
    match = _FENCE.match(code)
    return (match.group(1) if match else code).strip("\n")


def one_per_line(tests: Sequence[str]) -> list[str]:
    """The tests, a string holding several one-line statements split into one test each.

    Blank and comment lines go; a test whose lines do not each parse alone (a statement
    over several lines) is kept whole, for the static check to judge.
    """
    out: list[str] = []
    for test in tests:
        lines = [line.strip() for line in test.splitlines()]
        lines = [line for line in lines if line and not line.startswith("#")]
        if len(lines) > 1 and all(_parses(line) for line in lines):
            out.extend(lines)
        elif lines:
            out.append(test.strip())
    return out


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
        return True
    except SyntaxError:
        return False


def check_solution(
    solution: str, function: str, tests: Sequence[str], min_tests: int
) -> str | None:
    """Why the solution and tests cannot be run as they are (a message), or None."""
    if not function.isidentifier():
        return f"function name {function[:40]!r} is not an identifier"
    try:
        module = ast.parse(solution)
    except SyntaxError as e:
        return f"the solution is not valid Python: {e.msg} (line {e.lineno})"
    if function not in {n.name for n in module.body if isinstance(n, ast.FunctionDef)}:
        return f"the solution does not define {function}()"
    if len(tests) < min_tests:
        return f"{len(tests)} tests, fewer than {min_tests}"
    for test in tests:
        try:
            statements = ast.parse(test).body
        except SyntaxError:
            return f"test {test[:60]!r} is not valid Python"
        called = {
            node.func.id
            for node in ast.walk(ast.Module(statements, []))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        }
        if (
            len(statements) != 1
            or not isinstance(statements[0], ast.Assert)
            or function not in called
        ):
            return f"test {test[:60]!r} is not one assert calling {function}()"
    return None


_RUNNER = """\
import json, sys
tests = json.loads({tests!r})
namespace = {{"__name__": "solution"}}
try:
    exec(compile(open("solution.py").read(), "solution.py", "exec"), namespace)
    failures = []
except BaseException as e:
    failures = ["solution: " + type(e).__name__ + ": " + str(e)[:200]] * len(tests)
for i, test in enumerate(tests[len(failures):]):
    try:
        exec(compile(test, "<test %d>" % i, "exec"), dict(namespace))
        failures.append(None)
    except BaseException as e:
        failures.append(type(e).__name__ + ": " + str(e)[:200])
print({nonce!r}, json.dumps(failures))
sys.exit(1 if any(failures) else 0)
"""


def runner(tests: Sequence[str], nonce: str) -> str:
    """A script that runs each test against solution.py and reports a line after ``nonce``."""
    return _RUNNER.format(tests=json.dumps(list(tests)), nonce=nonce)


def read_report(stdout: str, nonce: str, count: int) -> list[str | None] | None:
    """Each test's failure (None: passed) from the runner's report, or None if it made none."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(nonce + " "):
            try:
                failures = json.loads(line[len(nonce) + 1 :])
            except ValueError:
                return None
            if isinstance(failures, list) and len(failures) == count:
                return failures
    return None


def run_tests(
    solution: str, tests: Sequence[str], limits: Limits | None = None, contained: bool = True
) -> CheckResult:
    """Run ``tests`` against ``solution`` in the sandbox (blocking) and judge the run."""
    nonce = secrets.token_hex(8)
    files = {"solution.py": solution, "run_tests.py": runner(tests, nonce)}
    result = run_python(files, "run_tests.py", limits, contained)
    failures = read_report(result.stdout, nonce, len(tests))
    if failures is None:
        why = result.killed or f"exit {result.returncode}, no report"
        failures = [f"not run: {why}"] * len(tests)
    passed = sum(f is None for f in failures)
    details = result.as_details()
    del details["seconds"]  # a record must not depend on how busy the machine was
    details["stdout"] = result.stdout.replace(nonce, "<report>")
    return CheckResult(
        passed=result.passed and passed == len(tests),
        score=passed / len(tests) if tests else 0.0,
        details={**details, "failures": failures, "passed_tests": passed},
    )


def verify(
    solution: str,
    function: str,
    tests: Sequence[str],
    min_tests: int,
    limits: Limits | None = None,
    contained: bool = True,
) -> CheckResult:
    """The ``tests_pass`` verdict (blocking): the static check, then the run.

    ``details["problem"]`` is why the exercise cannot be verified as written, or None; with
    one the verdict fails with score 0, and the run's failures and output stay in the
    details.
    """
    problem = check_solution(solution, function, tests, min_tests)
    result = run_tests(solution, tests, limits, contained)
    if problem is None:
        return result.model_copy(update={"details": {**result.details, "problem": None}})
    return CheckResult(passed=False, score=0.0, details={**result.details, "problem": problem})
