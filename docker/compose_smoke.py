"""`make compose-smoke`: bring the compose stack up on a real engine, watch two rounds, replay, tear down.

Runs podman-compose on docker-compose.yml + docker-compose.jsipfs.yml (js-ipfs stands in for Kubo)
with the images `make compose-smoke-images` built: anvil, ipfs, deployer, zoo, explorer, three
organizations with real (LoRA) learners and the matchmaker; Otterscan is left out (its image cannot
be pulled here, and nothing depends on it). Services start in the order their `depends_on`
conditions give, one stage at a time (`up --no-deps`), and this script waits for each condition
itself, because podman-compose ignores
`service_healthy` on podman < 4.6 and podman runs health checks only through systemd timers: it runs
`podman healthcheck run` until the service is healthy. When two rounds are finalized,
`knexa audit replay` runs inside the matchmaker's container and must say `match` for both. The stack
is then removed with its volumes, and the script checks that no container, network or volume of the
project is left. Wall times go to stdout and to .knexa/compose/smoke.json.

Standalone on purpose (standard library only): it drives the engine, not the project's code.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "knexa-smoke"
FILES = ["docker-compose.yml", "docker-compose.jsipfs.yml"]
ORGS = ["org-a", "org-b", "org-c"]
# (services to start, what to wait for, timeout in seconds): the depends_on graph of the file
STAGES: list[tuple[list[str], str, float]] = [
    (["anvil", "ipfs"], "healthy", 180),
    (["deployer", "zoo"], "completed", 900),
    (["explorer", *ORGS], "healthy", 2400),  # minutes per learner on a busy machine
    (["matchmaker"], "healthy", 300),
]
ROUNDS = 2
ROUND_TIMEOUT_S = 1500
LABEL = f"label=io.podman.compose.project={PROJECT}"


def log(message: str, started: float) -> None:
    print(f"[{time.monotonic() - started:7.1f} s] {message}", flush=True)


def run(argv: list[str], check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed ({done.returncode}): {done.stderr[-3000:]}")
    return done


class Stack:
    def __init__(self, podman_compose: str) -> None:
        self.base = [podman_compose, "-p", PROJECT]
        for name in FILES:
            self.base += ["-f", name]

    def compose(self, *args: str, check: bool = True, timeout: float = 600) -> str:
        return run([*self.base, *args], check=check, timeout=timeout).stdout

    def container(self, service: str) -> str:
        names = run(
            [
                "podman",
                "ps",
                "-a",
                "--filter",
                LABEL,
                "--filter",
                f"label=com.docker.compose.service={service}",
                "--format",
                "{{.Names}}",
            ]
        ).stdout.split()
        if len(names) != 1:
            raise RuntimeError(f"expected one container for {service}, found {names}")
        return names[0]

    def state(self, service: str) -> dict[str, Any]:
        inspected = json.loads(run(["podman", "inspect", self.container(service)]).stdout)
        state: dict[str, Any] = inspected[0]["State"]
        return state

    def healthy(self, service: str) -> bool:
        state = self.state(service)
        if state["Status"] != "running":
            if state["Status"] == "exited" and state.get("ExitCode", 0) != 0:
                raise RuntimeError(f"{service} exited with {state.get('ExitCode')}")
            return False
        return run(["podman", "healthcheck", "run", self.container(service)], check=False).returncode == 0

    def completed(self, service: str) -> bool:
        state = self.state(service)
        if state["Status"] != "exited":
            return False
        if state.get("ExitCode") != 0:
            raise RuntimeError(f"{service} exited with {state.get('ExitCode')}")
        return True

    def exec(self, service: str, *argv: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return run(["podman", "exec", self.container(service), *argv], check=False, timeout=timeout)

    def logs(self, service: str, lines: int = 40) -> str:
        done = run(["podman", "logs", "--tail", str(lines), self.container(service)], check=False)
        return done.stdout + done.stderr

    def leftovers(self) -> dict[str, list[str]]:
        found = {}
        for kind, argv in {
            "containers": ["podman", "ps", "-a", "--filter", LABEL, "--format", "{{.Names}}"],
            "volumes": ["podman", "volume", "ls", "--filter", LABEL, "--format", "{{.Name}}"],
            "networks": ["podman", "network", "ls", "--filter", LABEL, "--format", "{{.Name}}"],
            "pods": ["podman", "pod", "ls", "--filter", f"name={PROJECT}", "--format", "{{.Name}}"],
        }.items():
            found[kind] = run(argv).stdout.split()
        return found


def wait(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(3)


def rounds(stack: Stack) -> list[dict[str, Any]]:
    """Every round the matchmaker's API lists (it is paged: follow `next_cursor` to the end)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        url = "http://127.0.0.1:8600/rounds?limit=100" + (f"&cursor={quote(cursor)}" if cursor else "")
        probe = f"import urllib.request as r; print(r.urlopen({url!r}, timeout=5).read().decode())"
        done = stack.exec("matchmaker", "python", "-c", probe, timeout=60)
        if done.returncode != 0:
            return items
        page: dict[str, Any] = json.loads(done.stdout)
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def smoke(stack: Stack, report: dict[str, Any], started: float) -> None:
    for services, condition, timeout_s in STAGES:
        stage_start = time.monotonic()
        log(f"up: {' '.join(services)} (waiting until {condition})", started)
        # exactly these services: their dependencies are up already, and podman-compose would otherwise
        # start the one-shot ones again and recreate containers that others require
        stack.compose("up", "-d", "--no-build", "--no-deps", "--no-recreate", *services)
        check = stack.healthy if condition == "healthy" else stack.completed
        for service in services:
            wait(
                lambda service=service, check=check: check(service), timeout_s, f"{service} to be {condition}"
            )
            log(f"{service}: {condition}", started)
        report["stages"].append(
            {"services": services, "until": condition, "seconds": round(time.monotonic() - stage_start, 1)}
        )
    log(f"waiting for {ROUNDS} finalized rounds", started)
    rounds_start = time.monotonic()
    wait(
        lambda: sum(r["status"] == "finalized" for r in rounds(stack)) >= ROUNDS,
        ROUND_TIMEOUT_S,
        f"{ROUNDS} finalized rounds",
    )
    report["rounds_seconds"] = round(time.monotonic() - rounds_start, 1)
    finalized = [r for r in rounds(stack) if r["status"] == "finalized"][:ROUNDS]
    for record in finalized:
        pairs = ", ".join(f"{p['teacher'][:10]}->{p['student'][:10]}" for p in record["pairs"])
        log(f"round {record['round']}: finalized, {len(record['pairs'])} pairs ({pairs})", started)
    report["rounds"] = finalized
    for org in ORGS:  # what each organization did (teach, learn, missed, no-bundle), for the record
        lines = [line for line in stack.logs(org, 400).splitlines() if line.startswith("org-")]
        report.setdefault("organizations", {})[org] = lines[-12:]
        for line in lines[-6:]:
            log(f"{org}: {line[:150]}", started)
    probe = "from agent.sandbox import isolation_level; print(isolation_level())"
    isolation = stack.exec("org-a", "python", "-c", probe, timeout=120)
    report["sandbox_isolation"] = isolation.stdout.strip() or isolation.stderr[-300:]
    log(f"org-a: sandbox isolation {report['sandbox_isolation']}", started)
    replay = stack.exec(
        "matchmaker",
        "knexa",
        "audit",
        "replay",
        "--rpc",
        "http://anvil:8545",
        "--manifest",
        "/shared/deployment.json",
        "--store",
        "http://ipfs:5001",
        "--json",
    )
    if replay.returncode not in (0, 1, 2):
        raise RuntimeError(f"knexa audit replay failed ({replay.returncode}): {replay.stderr[-3000:]}")
    verdicts = {v["round"]: v for v in json.loads(replay.stdout)["rounds"]}
    report["replay"] = [verdicts.get(r["round"]) for r in finalized]
    for record in finalized:
        verdict = verdicts.get(record["round"])
        log(f"knexa audit replay, round {record['round']}: {verdict and verdict['verdict']}", started)
        if verdict is None or verdict["verdict"] != "match":
            raise RuntimeError(f"round {record['round']} does not replay: {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--podman-compose", default="podman-compose")
    parser.add_argument("--report", type=Path, default=ROOT / ".knexa" / "compose" / "smoke.json")
    args = parser.parse_args()
    stack = Stack(args.podman_compose)
    started = time.monotonic()
    report: dict[str, Any] = {"project": PROJECT, "files": FILES, "stages": []}
    stack.compose("down", "-v", check=False)  # what an interrupted earlier run left
    failure: Exception | None = None
    try:
        smoke(stack, report, started)
    except Exception as error:  # report, tear down, then fail
        failure = error
        for service in ["anvil", "ipfs", "deployer", "zoo", "explorer", *ORGS, "matchmaker"]:
            with contextlib.suppress(RuntimeError):
                print(f"--- {service} (last lines)\n{stack.logs(service)}", file=sys.stderr)
    finally:
        log("down -v", started)
        stack.compose("down", "-v", check=False)
        left = stack.leftovers()
        report["left_behind"] = left
        report["wall_seconds"] = round(time.monotonic() - started, 1)
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    if any(left.values()):
        print(f"compose-smoke: left behind: {left}", file=sys.stderr)
        return 1
    log("nothing left: no containers, networks or volumes of the project", started)
    if failure is not None:
        print(f"compose-smoke: FAILED: {failure}", file=sys.stderr)
        return 1
    log(
        f"compose-smoke passed: {report['wall_seconds']:.0f} s from `up` to `down` (builds not counted)",
        started,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
