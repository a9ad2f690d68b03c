"""bench/federation.py on Ray: every (seed, method) a task of a real local cluster, the saved
results byte-for-byte those of the serial run, and a rerun resumes from what is saved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench_scripts import load_bench

METHODS = ("local-only", "random", "knexa")


def _runs(out: Path) -> Path:
    return out / "federation-runs" / "hetero-smoke"


@pytest.mark.slow
def test_smoke_federation_on_ray_equals_serial_and_resumes(zoo_cache: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")  # the .[sim] extra
    bench = load_bench("federation")
    common = ["--smoke", "--rounds", "1"]
    serial, on_ray = tmp_path / "serial", tmp_path / "ray"
    assert bench.main([*common, "--methods", ",".join(METHODS), "--out", str(serial)]) == 0
    # One method first, then all: the second run resumes (the saved result is not run again).
    ray_run = [*common, "--backend", "ray", "--jobs", "2", "--out", str(on_ray)]
    assert bench.main([*ray_run, "--methods", "random"]) == 0
    first = _runs(on_ray) / "seed0-random.json"
    stamp = first.stat().st_mtime_ns
    assert bench.main([*ray_run, "--methods", ",".join(METHODS)]) == 0
    assert first.stat().st_mtime_ns == stamp
    assert not ray.is_initialized()  # the local cluster was shut down
    for method in METHODS:
        name = f"seed0-{method}.json"
        assert (_runs(on_ray) / name).read_bytes() == (_runs(serial) / name).read_bytes(), name
    assert json.loads((_runs(on_ray) / "seed0-world.json").read_text()) == json.loads(
        (_runs(serial) / "seed0-world.json").read_text()
    )
    merged = json.loads((on_ray / "federation-smoke.json").read_text())
    assert merged["saved_results"] == sorted(f"seed0-{m}" for m in METHODS)
