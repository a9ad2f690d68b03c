"""The marketplace as separate processes, driven through the same CLI a user runs.

One process each: Anvil (`knexa chain up`, a block per second so that deadlines pass in real
time), the matchmaker (`knexa matchmaker run`), and every organization (`knexa org join`), after
`knexa org init`; the organizations register concurrently, each in its own `knexa org up` process
that loads its model once. When the matchmaker has finalized the requested rounds,
the organizations are stopped (SIGTERM: a clean shutdown), `knexa audit replay` judges every round,
the chain's events are summarised, and Anvil is stopped. Nothing is left running, whatever happens.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from chain.anvil import free_port, terminate_group, wait_for_rpc
from chain.client import connect
from chain.deploy import Deployment, verify_deployment
from chain.events import EventReader
from chain.units import from_wad
from exchange.cid import cid_text
from market.ledger import Ledger
from market.parameters import read_constants

DEMO_PASSWORD = "knexa-demo-password"  # throw-away keystores of a throw-away chain


@dataclass
class ProcessDemoReport:
    rounds: list[dict[str, Any]] = field(default_factory=list)
    organizations: list[dict[str, Any]] = field(default_factory=list)
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    logs: Path | None = None
    file: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "organizations": self.organizations,
            "verdicts": self.verdicts,
            "logs": str(self.logs) if self.logs else None,
            "report": str(self.file) if self.file else None,
        }


class Processes:
    """Child processes in their own sessions; all stopped (group-wide) on exit."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, arguments: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        # The child keeps its own copy of the log's descriptor; ours is closed at once.
        with (self.logs / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "knexa", *arguments],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.children[name] = process
        return process

    def stop(self, name: str, timeout_s: float = 20.0) -> None:
        process = self.children.pop(name, None)
        if process is not None:
            terminate_group(process, timeout_s)

    def stop_all(self) -> None:
        for name in list(self.children):
            self.stop(name)


@contextmanager
def _processes(logs: Path) -> Iterator[Processes]:
    processes = Processes(logs)
    try:
        yield processes
    finally:
        processes.stop_all()


def _cli(arguments: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run one `knexa ... --json` command to completion; its JSON answer."""
    done = subprocess.run(
        [sys.executable, "-m", "knexa", *arguments, "--json"],
        capture_output=True,
        env=env,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"`knexa {' '.join(arguments)}` failed: {done.stderr.decode()[-2000:]}")
    text = done.stdout.decode()
    try:  # one (possibly indented) JSON document ...
        whole: dict[str, Any] = json.loads(text)
        return whole
    except json.JSONDecodeError:  # ... or JSON lines, of which the last one is the answer
        lines = [line for line in text.splitlines() if line.startswith("{")]
        if not lines:
            raise RuntimeError(f"`knexa {' '.join(arguments)}` printed no JSON: {text[-2000:]}") from None
        parsed: dict[str, Any] = json.loads(lines[-1])
        return parsed


def default_round_blocks(learner: str) -> int:
    """Blocks (seconds at one block per second) per round: enough for a learner to teach and learn
    while sharing a 2-core machine with two other organizations."""
    return 60 if learner == "lora" else 12


def run_process_demo(
    organizations: int = 3,
    rounds: int = 2,
    learner: str = "synthetic",
    round_blocks: int | None = None,
    scale: str = "tiny",
    workdir: Path | None = None,
    on_progress: Callable[[str], None] | None = None,
    ipfs_api: str | None = None,
    defective_teacher: bool = True,
) -> ProcessDemoReport:
    """Run the demo (see the module docstring); `workdir` keeps keystores, store and logs.

    With `defective_teacher`, the first organization seals its round-1 bundle to the wrong key
    (a demo-only flag of `knexa org up`): its student disputes it with evidence, the matchmaker
    rules it defective, and the replay re-judges the verdict.

    The content store is a local directory under `workdir`, or the IPFS node at `ipfs_api`
    (default: the `KNEXA_IPFS_API` environment variable) when one is given.
    """
    say = on_progress or (lambda message: None)
    round_blocks = round_blocks or default_round_blocks(learner)
    root = Path(workdir or tempfile.mkdtemp(prefix="knexa-demo-"))
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    ipfs_api = ipfs_api or os.environ.get("KNEXA_IPFS_API") or None
    manifest = root / "deployment.json"
    store: str | Path = ipfs_api or root / "store"
    port = free_port()
    rpc = f"http://127.0.0.1:{port}"
    env = {**os.environ, "KNEXA_PASSWORD": DEMO_PASSWORD, "PYTHONUNBUFFERED": "1"}
    report = ProcessDemoReport(logs=logs)
    with _processes(logs) as processes:
        say("starting Anvil and deploying the market")
        processes.start(
            "anvil",
            ["chain", "up", "--port", str(port), "--block-time", "1", "--manifest", str(manifest)],
            env,
        )
        wait_for_rpc(rpc, timeout_s=60)
        _wait_for(manifest.exists, 60, "the deployment manifest")
        if learner == "lora":  # pretrain (or load) the zoo once, not in three racing processes
            say(f"model zoo ({scale}): pretraining once, cached afterwards")
            _cli(["agent", "build-zoo", "--scale", scale], env)
        homes = {}
        for index in range(organizations):
            name = f"org-{index:05d}"
            homes[name] = root / "orgs" / name
            say(f"{name}: init")
            common = ["--rpc", rpc, "--manifest", str(manifest), "--store", str(store), "--learner", learner]
            common += ["--scale", scale]
            _cli(
                ["org", "init", name, "--home", str(homes[name]), *common, "--dev-account", str(2 + index)],
                env,
            )
        # One process per organization, all at once: each loads its model once, registers with the
        # profile it measures, then follows the market (`knexa org up`).
        for index, (name, home) in enumerate(homes.items()):
            say(f"{name}: register and join (concurrently)")
            arguments = ["org", "up", name, "--home", str(home), "--stake", "2", "--json", "--poll", "0.5"]
            if defective_teacher and index == 0:
                say(f"{name}: will seal its round-1 bundle to the wrong key (demo of a dispute)")
                arguments += ["--demo-defective-round", "1"]
            processes.start(name, arguments, env)
        for name in homes:  # rounds start once every agent has its model loaded
            say(f"{name}: loading its agent")
            ready = partial(_said_ready, logs / f"{name}.log", processes.children[name])
            _wait_for(ready, 600, name)
        say(f"matchmaker: {rounds} rounds of {round_blocks} blocks")
        matchmaker = processes.start(
            "matchmaker",
            [
                *(
                    "matchmaker",
                    "run",
                    "--manifest",
                    str(manifest),
                    "--store",
                    str(store),
                    "--dev-account",
                    "1",
                ),
                *(
                    "--round-blocks",
                    str(round_blocks),
                    "--max-rounds",
                    str(rounds),
                    "--poll",
                    "0.5",
                    "--json",
                ),
            ],
            env,
        )
        deadline = time.monotonic() + rounds * (round_blocks + 30) * 4 + 120
        while matchmaker.poll() is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the matchmaker did not finish; see {logs}")
            time.sleep(0.5)
        if matchmaker.returncode != 0:
            raise RuntimeError(f"the matchmaker failed; see {logs / 'matchmaker.log'}")
        for name in homes:
            processes.stop(name)
        say("replaying every round from chain + store")
        replay = subprocess.run(
            [
                sys.executable,
                "-m",
                "knexa",
                "audit",
                "replay",
                "--manifest",
                str(manifest),
                "--store",
                str(store),
                "--json",
            ],
            capture_output=True,
            env=env,
            timeout=600,
            check=False,
        )
        report.verdicts = json.loads(replay.stdout.decode())["rounds"]
        _summarise(report, rpc, manifest)
    report.file = root / "report.json"  # the full CIDs (the tables shorten them)
    report.file.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    return report


def _said_ready(log: Path, process: subprocess.Popen[bytes]) -> bool:
    """Whether an organization process announced it follows the market (and is still alive)."""
    if process.poll() is not None:
        raise RuntimeError(f"{log.stem} exited early; see {log}")
    return log.exists() and b'"action": "ready"' in log.read_bytes()


def _wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _summarise(report: ProcessDemoReport, rpc: str, manifest: Path) -> None:
    deployment = Deployment.load(manifest)
    market = verify_deployment(connect(rpc), deployment)
    events = EventReader(market.w3, market.contract).read(deployment.deploy_block)
    ledger = Ledger.from_events(events, initial_reputation=read_constants(market).initial_reputation)
    names = {address: org.name for address, org in ledger.organizations.items()}
    for round_id in sorted(ledger.rounds):
        record = ledger.rounds[round_id]
        pairs = []
        for pair in record.pairs:
            entry: dict[str, Any] = {
                "teacher": names[pair.teacher],
                "student": names[pair.student],
                "bundle": cid_text(pair.bundle_cid) if pair.bundle_cid is not None else None,
                "gain": from_wad(pair.gain) if pair.gain is not None else None,
                "disputed": pair.evidence_cid is not None,
            }
            reward = record.reward_of(pair.teacher, pair.student)
            if reward is not None:
                entry["reward_eth"] = from_wad(reward.fee)
            pairs.append(entry)
        disputes = [
            {
                "teacher": names[pair.teacher],
                "student": names[pair.student],
                "evidence": cid_text(pair.evidence_cid),
                "outcome": pair.outcome.name.lower() if pair.outcome is not None else "open",
                "verdict": cid_text(pair.verdict_cid) if pair.verdict_cid is not None else None,
            }
            for pair in record.pairs
            if pair.evidence_cid is not None
        ]
        report.rounds.append(
            {
                "round": round_id,
                "pairs": pairs,
                "disputes": disputes,
                "slashes": [
                    {"offender": names[s.offender], "eth": from_wad(s.amount)} for s in record.slashes
                ],
                "reputation": [
                    {"organization": names[m.organization], "after": from_wad(m.new)}
                    for m in record.reputation_moves
                ],
            }
        )
    for address, name in names.items():
        state = market.organization(address)
        report.organizations.append(
            {
                "name": name,
                "stake_eth": from_wad(state.stake),
                "reputation": from_wad(state.reputation),
                "credits": from_wad(state.credits),
                "withdrawable_eth": from_wad(market.pending_withdrawal(address)),
            }
        )
