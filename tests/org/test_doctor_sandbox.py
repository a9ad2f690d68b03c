"""`knexa org doctor` on a machine where bubblewrap cannot build the sandbox: it says why and what to do.

The advice is pure logic over the facts `sandbox_host` reads (tested with each cause); the check
itself runs for real with the bubblewrap path pointed at nothing, as on a machine without it.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent import sandbox
from org.doctor import UNSAFE_COST, SandboxHost, _run, check_sandbox, sandbox_advice, sandbox_host

DOCKER = SandboxHost(
    bwrap=True,
    python=True,
    container="docker",
    seccomp_filter=True,
    max_user_namespaces=63000,
    unprivileged_userns_clone=None,
    apparmor_restricts_userns=False,
    bwrap_error="bwrap: No permissions to creating new namespace",
)


def test_docker_default_seccomp_is_named_with_what_to_do_and_what_unsafe_costs() -> None:
    advice = sandbox_advice(DOCKER)
    assert "docker container's seccomp profile blocks the user namespaces" in advice
    assert "CLONE_NEWUSER" in advice
    assert "seccomp=unconfined" in advice
    assert "apparmor=unconfined" in advice
    assert "bwrap said: bwrap: No permissions to creating new namespace" in advice
    assert advice.endswith(UNSAFE_COST)
    for cost in ("--unsafe-sandbox", "learner refuses to start", "KNEXA_PASSWORD", "reach the network"):
        assert cost in UNSAFE_COST


def test_a_container_that_masks_proc_is_told_to_unmask_it() -> None:
    # what bubblewrap says under podman's defaults (user namespaces allowed, /proc masked)
    masked = replace(DOCKER, container="podman", bwrap_error="bwrap: Can't mount proc on /newroot/proc")
    advice = sandbox_advice(masked)
    assert "podman container masks paths of its /proc" in advice
    assert "systempaths=unconfined" in advice
    assert "seccomp profile" not in advice
    assert advice.endswith(UNSAFE_COST)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"bwrap": False}, "apt-get install bubblewrap"),
        ({"python": False}, "/usr/bin/python3"),
        ({"max_user_namespaces": 0}, "user.max_user_namespaces=15000"),
        ({"unprivileged_userns_clone": 0}, "kernel.unprivileged_userns_clone=1"),
        ({"apparmor_restricts_userns": True}, "kernel.apparmor_restrict_unprivileged_userns=0"),
        ({"container": None}, "bubblewrap cannot create user, PID and network namespaces here"),
        ({"seccomp_filter": False}, "bubblewrap cannot create user, PID and network namespaces here"),
    ],
)
def test_each_cause_gets_its_own_fix_and_host_causes_come_before_the_container(
    changes: dict[str, object], expected: str
) -> None:
    advice = sandbox_advice(replace(DOCKER, **changes))  # type: ignore[arg-type]
    assert expected in advice
    assert "seccomp profile" not in advice  # the host's own refusal is what to fix first
    assert advice.endswith(UNSAFE_COST)


def test_without_bubblewrap_the_check_fails_and_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "BWRAP", "/nonexistent/bwrap")
    assert sandbox.isolation_level() == "unsafe"
    check = _run("sandbox", check_sandbox)
    assert not check.ok
    assert check.detail.startswith("isolation unsafe: bubblewrap cannot build the sandbox here")
    assert "install bubblewrap" in check.fix
    assert not sandbox_host().bwrap
    with pytest.raises(sandbox.SandboxUnavailableError, match="knexa org doctor"):
        sandbox.run_program("x = 1\n")


def test_where_bubblewrap_works_the_host_facts_say_so() -> None:
    if sandbox.isolation_level() != "full":
        pytest.skip("bubblewrap cannot build the sandbox on this machine")
    host = sandbox_host()
    assert host.bwrap
    assert host.python
    assert host.max_user_namespaces != 0
    assert _run("sandbox", check_sandbox).ok
