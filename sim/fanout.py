"""Fan independent simulation jobs out: in this process, over local processes, or on Ray.

Simulations of many organizations, seeds and methods are embarrassingly parallel. Rather than a
home-made pool, large runs go to an existing cluster engine: Ray (the optional `.[sim]` extra),
started locally on loopback by default or joined by address (`ray://host:10001` or `auto`).
`processes` (the standard library's pool) stays as the fallback without Ray, and `serial` runs
in this process. Every backend returns the results in the order of the jobs, so a seeded job gives
the same answer wherever it runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Literal, TypeVar, get_args

from sim.errors import SimError

Backend = Literal["serial", "processes", "ray"]
BACKENDS: tuple[str, ...] = get_args(Backend)

Job = TypeVar("Job")
Result = TypeVar("Result")


class RayUnavailableError(SimError):
    """The ray backend was asked for, but Ray is not installed (`pip install '.[sim]'`)."""


def fan_out(
    function: Callable[[Job], Result],
    jobs: Sequence[Job],
    *,
    backend: Backend = "serial",
    workers: int = 1,
    ray_address: str | None = None,
) -> list[Result]:
    """`[function(job) for job in jobs]`, computed on `backend`. `function` must be a module-level
    function (it is pickled to other processes); `workers` bounds local parallelism."""
    if backend not in BACKENDS:
        raise SimError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if backend == "serial" or (len(jobs) <= 1 and backend == "processes"):
        return [function(job) for job in jobs]
    if backend == "processes":
        with ProcessPoolExecutor(max_workers=max(1, min(workers, len(jobs)))) as pool:
            return list(pool.map(function, jobs))
    return _on_ray(function, jobs, workers, ray_address)


def _on_ray(
    function: Callable[[Job], Result], jobs: Sequence[Job], workers: int, address: str | None
) -> list[Result]:
    try:
        import ray
    except ImportError as error:
        raise RayUnavailableError("the ray backend needs Ray: pip install '.[sim]'") from error
    started_here = not ray.is_initialized()
    if started_here:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never phone home
        options: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "configure_logging": False,
        }
        if address is None:
            # A private local cluster on loopback only, sized like the process pool.
            options |= {"num_cpus": max(1, workers), "_node_ip_address": "127.0.0.1"}
        else:
            options["address"] = address
        ray.init(**options)
    try:
        remote = ray.remote(function)
        return list(ray.get([remote.remote(job) for job in jobs]))
    finally:
        if started_here:
            ray.shutdown()
