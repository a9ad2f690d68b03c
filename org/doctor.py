"""`knexa org doctor`: check everything an organization needs, say what is wrong and how to fix it.

Each check is independent: a failing one does not hide the others. The order follows what a new
organization sets up: its config and keys, its data and model, the sandbox, then the chain, the
store and its registration.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from org.errors import OrgError
from org.identity import PASSWORD_ENV, IdentityError, OrgConfig, address_of, load_config, unlock


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    skipped: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "skipped": self.skipped,
            "detail": self.detail,
            "fix": self.fix,
        }


def _run(name: str, probe: Callable[[], tuple[str, str]]) -> Check:
    """`probe` returns (detail, fix-if-degraded) or raises: a raised error is a failed check."""
    try:
        detail, warning = probe()
    except _SkippedError as skip:
        return Check(name, True, str(skip), skipped=True)
    except _ProblemError as problem:
        return Check(name, False, problem.detail, problem.fix)
    except Exception as error:  # the doctor reports whatever breaks; it never crashes
        return Check(name, False, f"{type(error).__name__}: {' '.join(str(error).split())}")
    return Check(name, True, detail, warning)


class _SkippedError(Exception):
    pass


class _ProblemError(Exception):
    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix


def _config(home: Path) -> OrgConfig:
    try:
        return load_config(home)
    except IdentityError as error:
        raise _ProblemError(
            str(error), "run `knexa org init NAME` (or give the right --org/--home)"
        ) from error


def check_config(home: Path) -> tuple[str, str]:
    config = _config(home)
    return f"{config.name}: learner {config.learner.get('kind', 'synthetic')}, home {home}", ""


def check_keystore(home: Path) -> tuple[str, str]:
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        raise _SkippedError(f"not checked: set {PASSWORD_ENV} to let the doctor open the keystore")
    try:
        identity = unlock(home, password)
    except IdentityError as error:
        raise _ProblemError(
            str(error), f"check {PASSWORD_ENV}; the keystore is {home / 'keystore.json'}"
        ) from error
    return f"opens: address {identity.address}", ""


def check_data(home: Path) -> tuple[str, str]:
    from org.data import DataFileError
    from org.lora import DATA_FILE, TRANSFER_FILE, split_own_data

    settings = _config(home).learner
    if "model" not in settings:
        raise _SkippedError("no data of its own (a synthetic or federation-share learner)")
    try:
        train, val = split_own_data(home)
        transfer = ""
        if (home / TRANSFER_FILE).exists():
            from org.data import parse_transfer

            transfer = f", {len(parse_transfer(home / TRANSFER_FILE))} transfer prompts"
    except DataFileError as error:
        raise _ProblemError(str(error), f"fix those lines of {error.path.name} in {home}") from error
    except OrgError as error:
        raise _ProblemError(str(error), f"add problems with a solution to {home / DATA_FILE}") from error
    return f"{len(train)} training and {len(val)} validation problems{transfer}", ""


def check_model(home: Path) -> tuple[str, str]:
    from org.model import ModelLoadError, load_base

    settings = _config(home).learner
    if "model" not in settings:
        raise _SkippedError("no model of its own (a synthetic or federation-share learner)")
    started = time.perf_counter()
    try:
        base = load_base(str(settings["model"]), lora_rank=settings.get("lora_rank"))
    except ModelLoadError as error:
        raise _ProblemError(
            str(error), "point the config's learner.model at a checkpoint directory or a zoo name"
        ) from error
    params = sum(p.numel() for p in base.model.parameters())
    return (
        f"{base.name} ({base.spec.family}, {params / 1e6:.1f} M parameters, vocabulary "
        f"{base.codec.vocab_size}) loads in {time.perf_counter() - started:.1f} s; "
        f"identity {base.identity[:16]}, tokenizer {base.tokenizer_digest}, {base.prompt_format} prompts",
        "",
    )


@dataclass(frozen=True)
class SandboxHost:
    """What decides whether bubblewrap can build the sandbox here (read by `sandbox_host`)."""

    bwrap: bool  # bubblewrap is installed
    python: bool  # the interpreter generated code runs with exists
    container: str | None  # "docker", "podman" or None
    seccomp_filter: bool  # this process runs under a seccomp filter (Seccomp: 2)
    max_user_namespaces: int | None  # user.max_user_namespaces (None: unreadable)
    unprivileged_userns_clone: int | None  # Debian's kernel.unprivileged_userns_clone
    apparmor_restricts_userns: bool  # Ubuntu's kernel.apparmor_restrict_unprivileged_userns = 1
    bwrap_error: str = ""  # what bubblewrap said when asked for the namespaces


#: What running without isolation costs, said with every piece of advice.
UNSAFE_COST = (
    "Without isolation an organization does not evaluate at all (its learner refuses to start); "
    "`knexa agent evaluate --unsafe-sandbox` runs programs without it: they keep the rlimits, the "
    "timeout, a fresh folder and an empty environment, but can read whatever this user can (the "
    "organization's home and keystore, other processes' environment such as KNEXA_PASSWORD), reach "
    "the network (the chain's RPC and the IPFS API on a compose network) and outlive their run."
)


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def sandbox_host() -> SandboxHost:
    """Read the facts `sandbox_advice` needs from this machine (and ask bubblewrap once)."""
    import subprocess

    from agent import sandbox

    container = (
        "docker"
        if Path("/.dockerenv").exists()
        else "podman"
        if Path("/run/.containerenv").exists()
        else None
    )
    seccomp = False
    try:
        status = Path("/proc/self/status").read_text()
        seccomp = any(
            line.split()[1:] == ["2"] for line in status.splitlines() if line.startswith("Seccomp:")
        )
    except OSError:
        pass
    error = ""
    if Path(sandbox.BWRAP).exists():
        try:
            tried = subprocess.run(  # exactly what the sandbox asks of bubblewrap
                [*sandbox._bwrap_args(), sandbox.SYSTEM_PYTHON, "-c", ""],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            error = " ".join(tried.stderr.split())[:200]
        except (OSError, subprocess.TimeoutExpired) as failure:
            error = str(failure)
    return SandboxHost(
        bwrap=Path(sandbox.BWRAP).exists(),
        python=Path(sandbox.SYSTEM_PYTHON).exists(),
        container=container,
        seccomp_filter=seccomp,
        max_user_namespaces=_read_int("/proc/sys/user/max_user_namespaces"),
        unprivileged_userns_clone=_read_int("/proc/sys/kernel/unprivileged_userns_clone"),
        apparmor_restricts_userns=_read_int("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == 1,
        bwrap_error=error,
    )


def sandbox_advice(host: SandboxHost) -> str:
    """Why bubblewrap cannot isolate programs on `host` and what to do, most likely cause first."""
    from agent import sandbox

    if not host.bwrap:
        why = (
            f"install bubblewrap ({sandbox.BWRAP}: `apt-get install bubblewrap`; the project's image has it)."
        )
    elif not host.python:
        why = f"install Python 3 as {sandbox.SYSTEM_PYTHON}: the sandbox runs generated code with it."
    elif host.max_user_namespaces == 0:
        why = "the kernel allows no user namespaces: on the host, `sysctl -w user.max_user_namespaces=15000`."
    elif host.unprivileged_userns_clone == 0:
        why = (
            "the kernel refuses unprivileged user namespaces: on the host, "
            "`sysctl -w kernel.unprivileged_userns_clone=1`."
        )
    elif host.apparmor_restricts_userns:
        why = (
            "AppArmor restricts unprivileged user namespaces (Ubuntu 23.10 and later): on the host, "
            "`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`, or an AppArmor profile that "
            "lets bwrap create them."
        )
    elif host.container is not None and "mount proc" in host.bwrap_error:
        why = (
            f"this {host.container} container masks paths of its /proc, so bubblewrap may not mount the "
            'fresh /proc each program gets: run it with `security_opt: ["systempaths=unconfined"]` '
            "(Docker 20.10 and later, podman; podman also takes `unmask=ALL`), as the project's "
            "docker-compose.yml does for the organizations."
        )
    elif host.container is not None and host.seccomp_filter:
        why = (
            f"this {host.container} container's seccomp profile blocks the user namespaces bubblewrap needs "
            "(Docker's default profile allows unshare, setns, mount and clone/clone3 with CLONE_NEWUSER only "
            "with CAP_SYS_ADMIN, so an unprivileged container cannot): run it with a seccomp profile that "
            "allows them (Docker's default with those syscalls moved to the unconditional list: "
            '`security_opt: ["seccomp=bwrap-seccomp.json"]`), or `seccomp=unconfined`; where Docker\'s '
            "AppArmor profile is active, also `apparmor=unconfined` (docker-default denies mount). "
            "`--privileged` works too, but gives the container far more than the sandbox needs."
        )
    else:
        why = "bubblewrap cannot create user, PID and network namespaces here."
    said = f" bwrap said: {host.bwrap_error}" if host.bwrap_error else ""
    return f"{why}{said} {UNSAFE_COST}"


def check_sandbox(programs: int = 16) -> tuple[str, str]:
    from agent import sandbox

    level = sandbox.isolation_level()
    if level != "full":
        raise _ProblemError(
            f"isolation {level}: bubblewrap cannot build the sandbox here, so generated programs "
            "cannot be run isolated",
            sandbox_advice(sandbox_host()),
        )
    evaluator = sandbox.Evaluator(workers=2)
    sources = [f"assert {i} + 1 == {i + 1}\n" for i in range(programs)]
    started = time.perf_counter()
    results = evaluator.run_many(sources)
    elapsed = time.perf_counter() - started
    if not all(result.passed for result in results):
        raise _ProblemError(
            "trivial programs fail in the sandbox",
            f"check that {sandbox.SYSTEM_PYTHON} runs and /tmp is writable",
        )
    return f"isolation {level}; {programs / elapsed:.0f} programs/s with 2 workers", ""


def check_chain(home: Path) -> tuple[str, str]:
    from chain.client import connect
    from chain.deploy import Deployment, verify_deployment
    from chain.errors import ChainError

    config = _config(home)
    try:
        deployment = Deployment.load(Path(config.manifest))
        market = verify_deployment(connect(config.rpc_url, timeout_s=5.0), deployment)
        block = market.w3.eth.block_number
    except (ChainError, OSError, ValueError) as error:
        raise _ProblemError(
            " ".join(str(error).split()),
            f"start the chain at {config.rpc_url} and deploy (`knexa chain up`), or fix rpc_url/manifest "
            f"in {home / 'config.json'}",
        ) from error
    return f"{config.rpc_url}: the market of {config.manifest} is deployed; block {block}", ""


def check_store(home: Path) -> tuple[str, str]:
    from exchange.cid import cid_of
    from exchange.errors import ExchangeError
    from exchange.stores import open_store

    config = _config(home)
    try:
        store = open_store(config.store, timeout_s=5.0, retries=0)
        store.has(cid_of(b"knexa doctor"))
    except (ExchangeError, OSError) as error:
        raise _ProblemError(
            " ".join(str(error).split()), f"start the IPFS node or fix `store` in {home / 'config.json'}"
        ) from error
    return f"{config.store} answers", ""


def check_registration(home: Path) -> tuple[str, str]:
    from chain.client import OrganizationStatus, connect
    from chain.deploy import Deployment, verify_deployment
    from chain.errors import ChainError

    config = _config(home)
    address = address_of(home)
    try:
        market = verify_deployment(
            connect(config.rpc_url, timeout_s=5.0), Deployment.load(Path(config.manifest))
        )
        state = market.organization(address)
    except (ChainError, OSError, ValueError) as error:
        raise _SkippedError(f"not checked: the chain is not reachable ({type(error).__name__})") from error
    if state.status is OrganizationStatus.NONE:
        raise _ProblemError(f"{address} is not registered", "run `knexa org register`")
    return f"{address}: {state.status.name.lower()}, stake {state.stake / 1e18:g} ETH", ""


def diagnose(home: Path) -> list[Check]:
    """Every check, in order (a missing config fails them all but the sandbox)."""
    return [
        _run("config", lambda: check_config(home)),
        _run("keystore", lambda: check_keystore(home)),
        _run("data", lambda: check_data(home)),
        _run("model", lambda: check_model(home)),
        _run("sandbox", check_sandbox),
        _run("chain", lambda: check_chain(home)),
        _run("store", lambda: check_store(home)),
        _run("registration", lambda: check_registration(home)),
    ]
