"""Content-addressed exchange -> bench/results/exchange.json (+ exchange.png).

Measures, on this machine:

1. put/get throughput (MB/s) of `LocalStore` and of a real IPFS node (`IpfsStore`; js-ipfs from
   tools/ipfs, or Kubo when on PATH) at 1, 10 and 100 MB, plus the pure-Python CID computation.
   Every put computes the CID and every get verifies the bytes against it, as in production.
2. The sealed size of a knowledge bundle per 1,000 transfer tokens: top-k with k = 8, 16, 32, 64
   (uint16 ids, float16 and float32 log-probabilities, with and without zlib), full logits over a
   49,152-token vocabulary (float16, dense), and text only (generated code).
3. Seal and open time per MB (sign + encrypt; decrypt + verify signature + validate every number).

Top-k ids are random and log-probabilities are random but sorted and normalised like real ones, so
zlib figures are a lower bound on what real predictions compress to. Text is real Python source
(this repository's own files) cut to 3.2 characters per token, the ratio SmolLM2's tokenizer gives
on code (docs/toolchain.md).

Run: `.venv/bin/python bench/exchange.py` (about two minutes; `--quick` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from eth_account import Account
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exchange.cid import cid_of
from exchange.ecies import public_key_of
from exchange.ipfs import IpfsStore
from exchange.local import LocalStore
from exchange.node import IpfsNode
from exchange.sealing import open_envelope, seal
from market.bundles import KnowledgeBundle, TokenizerId, TopK, encode_container
from market.sealing import seal_bundle

RESULTS = Path(__file__).resolve().parent / "results"
MB = 1_000_000
VOCAB = 49_152
TOKENS = 1_000
PROMPTS = 10  # 1,000 transfer tokens over 10 prompts of 100 positions
CHARS_PER_TOKEN = 3.2
TEACHER = Account.from_key(b"\x51" * 32)
STUDENT = Account.from_key(b"\x52" * 32)
TOKENIZER = TokenizerId("smollm2-135m", VOCAB, "0" * 64)


def timed(action: Callable[[], object], repeats: int) -> float:
    """Median wall time of `repeats` runs, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --- 1. throughput ------------------------------------------------------------------------------


def throughput(sizes_mb: list[int], repeats: int, ipfs: IpfsStore, workdir: Path) -> list[dict[str, Any]]:
    rows = []
    rng = np.random.default_rng(0)
    for size_mb in sizes_mb:
        data = rng.bytes(size_mb * MB)
        runs = repeats if size_mb < 100 else max(1, repeats - 1)
        local = LocalStore(workdir / f"local-{size_mb}")
        row: dict[str, Any] = {"size_mb": size_mb, "repeats": runs}
        row["cid_mb_s"] = size_mb / timed(lambda: cid_of(data), runs)  # noqa: B023
        # Put into an empty store each time: a second put of the same bytes skips the write.
        counter = iter(range(1_000_000))

        def local_put() -> None:
            LocalStore(workdir / f"local-{size_mb}-{next(counter)}").put(data)  # noqa: B023

        row["local_put_mb_s"] = size_mb / timed(local_put, runs)
        cid = local.put(data)
        row["local_get_mb_s"] = size_mb / timed(lambda: local.get(cid), runs)  # noqa: B023
        row["ipfs_put_mb_s"] = size_mb / timed(lambda: ipfs.put(data, pin=False), runs)  # noqa: B023
        row["ipfs_get_mb_s"] = size_mb / timed(lambda: ipfs.get(cid), runs)  # noqa: B023
        rows.append(row)
    return rows


# --- 2. sealed size per 1,000 transfer tokens ---------------------------------------------------


def topk_table(k: int, rng: np.random.Generator, logprob_dtype: type) -> TopK:
    positions = TOKENS // PROMPTS
    per_prompt = []
    for _ in range(PROMPTS):
        logits = rng.standard_normal((positions, VOCAB)).astype(np.float32) * 3.0
        top = np.argpartition(-logits, k, axis=1)[:, :k]
        top_logits = np.take_along_axis(logits, top, axis=1)
        order = np.argsort(-top_logits, axis=1)
        top, top_logits = (
            np.take_along_axis(top, order, axis=1),
            np.take_along_axis(top_logits, order, axis=1),
        )
        log_z = np.log(np.exp(logits - logits.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True))
        logprobs = top_logits - logits.max(axis=1, keepdims=True) - log_z
        per_prompt.append((rng.integers(0, VOCAB, positions), top, logprobs))
    return TopK.from_prompts(per_prompt, VOCAB, logprob_dtype=logprob_dtype)


def code_text(chars: int) -> list[str]:
    root = Path(__file__).resolve().parent.parent
    source = "".join(path.read_text() for path in sorted((root / "exchange").glob("*.py")))
    while len(source) < chars:
        source += source
    per = chars // PROMPTS
    return [source[i * per : (i + 1) * per] for i in range(PROMPTS)]


def sealed_sizes() -> list[dict[str, Any]]:
    rng = np.random.default_rng(1)
    prompts = tuple(f"transfer/{i}" for i in range(PROMPTS))
    recipient = public_key_of(STUDENT.key)
    rows = []

    def measure(label: str, bundle: KnowledgeBundle, **extra: Any) -> None:
        payload = bundle.to_bytes()
        for compression in ("none", "zlib"):
            envelope = seal_bundle(
                bundle, teacher_key=TEACHER.key, recipient_public_key=recipient, compression=compression
            )
            rows.append(
                {
                    "variant": label,
                    "compression": compression,
                    "payload_bytes": len(payload),
                    "sealed_bytes": len(envelope),
                    **extra,
                }
            )

    text = code_text(int(TOKENS * CHARS_PER_TOKEN))
    base = {"round": 1, "teacher": TEACHER.address, "student": STUDENT.address, "tokenizer": TOKENIZER}
    measure("text only", KnowledgeBundle(prompt_ids=prompts, completions=tuple(text), **base), k=None)
    for k in (8, 16, 32, 64):
        for dtype, name in ((np.float16, "fp16"), (np.float32, "fp32")):
            table = topk_table(k, rng, dtype)
            bundle = KnowledgeBundle(prompt_ids=prompts, topk=table, **base)
            measure(f"top-{k} {name}", bundle, k=k, logprobs=name)
    # Full logits: every position's whole distribution, dense float16 (ids are implicit).
    dense = (rng.standard_normal((TOKENS, VOCAB)) * 3.0).astype(np.float16)
    payload = encode_container({"format": "bench.full-logits", "version": 1}, {"logits": dense})
    envelope = seal(
        payload,
        kind="knowledge",
        round=1,
        teacher_key=TEACHER.key,
        student=STUDENT.address,
        recipient_public_key=recipient,
    )
    rows.append(
        {
            "variant": "full logits fp16",
            "compression": "none",
            "payload_bytes": len(payload),
            "sealed_bytes": len(envelope),
            "k": VOCAB,
        }
    )
    return rows


# --- 3. seal / open time ------------------------------------------------------------------------


def seal_open_times(sizes_mb: list[int], repeats: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(2)
    recipient = public_key_of(STUDENT.key)
    rows = []
    for size_mb in sizes_mb:
        k = 64
        per_position = k * (2 + 2) + 2  # uint16 ids, float16 log-probabilities, one input id
        positions = size_mb * MB // per_position
        per_prompt_positions = max(1, positions // PROMPTS)
        per_prompt = [
            (
                rng.integers(0, VOCAB, per_prompt_positions),
                rng.integers(0, VOCAB, (per_prompt_positions, k)),
                -np.sort(rng.random((per_prompt_positions, k)) * 10.0, axis=1),
            )
            for _ in range(PROMPTS)
        ]
        table = TopK.from_prompts(per_prompt, VOCAB, logprob_dtype=np.float16)
        bundle = KnowledgeBundle(
            round=1,
            teacher=TEACHER.address,
            student=STUDENT.address,
            tokenizer=TOKENIZER,
            prompt_ids=tuple(f"p{i}" for i in range(PROMPTS)),
            topk=table,
        )
        envelope = seal_bundle(bundle, teacher_key=TEACHER.key, recipient_public_key=recipient)
        actual_mb = len(envelope) / MB

        def open_and_validate() -> None:
            _, payload = open_envelope(
                envelope,  # noqa: B023
                STUDENT.key,
                expected_teacher=TEACHER.address,
                expected_round=1,
                expected_student=STUDENT.address,
            )
            KnowledgeBundle.from_bytes(payload)

        seal_s = timed(
            lambda: seal_bundle(bundle, teacher_key=TEACHER.key, recipient_public_key=recipient),  # noqa: B023
            repeats,
        )
        open_s = timed(open_and_validate, repeats)
        rows.append(
            {
                "sealed_mb": round(actual_mb, 3),
                "seal_s": seal_s,
                "open_s": open_s,
                "seal_s_per_mb": seal_s / actual_mb,
                "open_s_per_mb": open_s / actual_mb,
            }
        )
    return rows


# --- output -------------------------------------------------------------------------------------


def print_tables(result: dict[str, Any], console: Console) -> None:
    table = Table(title=f"put/get throughput, MB/s ({result['ipfs']['kind']} {result['ipfs']['version']})")
    for column in ("size MB", "CID only", "local put", "local get", "IPFS put", "IPFS get"):
        table.add_column(column, justify="right")
    for row in result["throughput"]:
        table.add_row(
            str(row["size_mb"]),
            *(
                f"{row[key]:.1f}"
                for key in ("cid_mb_s", "local_put_mb_s", "local_get_mb_s", "ipfs_put_mb_s", "ipfs_get_mb_s")
            ),
        )
    console.print(table)
    sizes = Table(title=f"sealed bundle per {TOKENS:,} transfer tokens (vocabulary {VOCAB:,})")
    for column in ("variant", "compression", "payload KB", "sealed KB"):
        sizes.add_column(column, justify="right")
    for row in result["bundle_size_per_1000_tokens"]:
        sizes.add_row(
            row["variant"],
            row["compression"],
            f"{row['payload_bytes'] / 1000:,.1f}",
            f"{row['sealed_bytes'] / 1000:,.1f}",
        )
    console.print(sizes)
    timing = Table(title="seal / open (decrypt + verify signature + validate), top-64 fp16")
    for column in ("sealed MB", "seal s", "open s", "seal s/MB", "open s/MB"):
        timing.add_column(column, justify="right")
    for row in result["seal_open"]:
        timing.add_row(
            f"{row['sealed_mb']:.1f}",
            f"{row['seal_s']:.3f}",
            f"{row['open_s']:.3f}",
            f"{row['seal_s_per_mb']:.4f}",
            f"{row['open_s_per_mb']:.4f}",
        )
    console.print(timing)


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    rows = result["throughput"]
    keys = [
        ("local_put_mb_s", "local put"),
        ("local_get_mb_s", "local get"),
        ("ipfs_put_mb_s", "IPFS put"),
        ("ipfs_get_mb_s", "IPFS get"),
    ]
    width = 0.2
    positions = np.arange(len(rows))
    for index, (key, label) in enumerate(keys):
        left.bar(positions + (index - 1.5) * width, [row[key] for row in rows], width, label=label)
    left.set_xticks(positions, [f"{row['size_mb']} MB" for row in rows])
    left.set_ylabel("MB/s (CID computed / verified)")
    left.set_title("store throughput")
    left.legend()

    sizes = [row for row in result["bundle_size_per_1000_tokens"] if row["compression"] == "none"]
    labels = [row["variant"] for row in sizes]
    right.barh(labels, [row["sealed_bytes"] / 1000 for row in sizes], color="tab:purple")
    right.set_xscale("log")
    right.set_xlim(1, max(row["sealed_bytes"] for row in sizes) / 1000 * 20)  # room for the labels
    right.set_xlabel(f"sealed KB per {TOKENS:,} tokens (log scale)")
    right.set_title("bundle size (no compression)")
    for y, row in enumerate(sizes):
        right.text(row["sealed_bytes"] / 1000, y, f" {row['sealed_bytes'] / 1000:,.0f}", va="center")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 and 10 MB only, one repeat")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (median reported)")
    parser.add_argument("--ipfs-url", help="use this IPFS RPC API instead of starting a node")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for exchange.json and exchange.png")
    args = parser.parse_args()
    sizes = [1, 10] if args.quick else [1, 10, 100]
    repeats = 1 if args.quick else args.repeats
    console = Console()

    load_before = os.getloadavg()
    node = None if args.ipfs_url else IpfsNode().start(timeout_s=120)
    api_url = args.ipfs_url or (node.api_url if node else "")
    try:
        with IpfsStore(api_url, timeout_s=60.0) as ipfs, tempfile.TemporaryDirectory() as workdir:
            version = ipfs.version()
            console.print(f"IPFS node: {version.agent} {version.version} at {api_url}")
            console.print("throughput ...")
            rows = throughput(sizes, repeats, ipfs, Path(workdir))
            ipfs.repo_gc()
    finally:
        if node is not None:
            node.stop()
    console.print("bundle sizes ...")
    size_rows = sealed_sizes()
    console.print("seal / open ...")
    timing_rows = seal_open_times([1, 10] if args.quick else [1, 10, 100], repeats)

    result = {
        "benchmark": "exchange",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            # This machine is shared: the 1-minute load average before and after says how contended it was.
            "load_average_before": round(load_before[0], 2),
            "load_average_after": round(os.getloadavg()[0], 2),
        },
        "ipfs": {"kind": version.agent, "version": version.version},
        "parameters": {
            "mb": MB,
            "tokens": TOKENS,
            "prompts": PROMPTS,
            "vocab": VOCAB,
            "chars_per_token": CHARS_PER_TOKEN,
            "repeats": repeats,
        },
        "throughput": rows,
        "bundle_size_per_1000_tokens": size_rows,
        "seal_open": timing_rows,
    }
    print_tables(result, console)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "exchange.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.out / "exchange.png")
    console.print(f"wrote {args.out / 'exchange.json'} and {args.out / 'exchange.png'}")


if __name__ == "__main__":
    main()
