"""The explorer and the matchmaker service under a client we did not write: Schemathesis.

Schemathesis generates requests from each service's own OpenAPI document, valid ones and invalid
ones, and checks every answer: no server error, a status code and a body the document declares,
valid input accepted, invalid input refused. Both services run over a live market on a real Anvil
(with `--prune-history`): a thread mines blocks the whole time, so reads race with new blocks as
they do in production, and an open round is under way. Examples are bounded and derandomized, so
the run is reproducible and takes about a minute.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.generation.modes import GenerationMode

from chain.devchain import DevChain
from chain.errors import ChainError
from exchange.local import LocalStore
from explorer.server import build_app
from matchmaker.api import create_app
from matchmaker.policies import PolicyParams
from matchmaker.service import Matchmaker
from tests.explorer.scenario import Scenario

Round = tuple[DevChain, Scenario]
EXAMPLES = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 15}


@pytest.fixture(scope="module")
def live_market(round_chain: Round) -> Iterator[tuple[DevChain, Scenario, Matchmaker]]:
    """The finished rounds, a third round opened, and blocks mined every few milliseconds."""
    chain, scenario = round_chain
    matchmaker = Matchmaker(
        chain.matchmaker(),
        LocalStore(scenario.store_dir),
        PolicyParams(),
        seed=7,
        from_block=chain.deployment.deploy_block,
        round_blocks=10_000,  # stays open while the blocks go by
    )
    assert matchmaker.step().action == "opened"
    stop = threading.Event()

    def mine() -> None:
        while not stop.wait(0.005):
            try:
                chain.mine(1)
            except ChainError:  # the node is being stopped at the end of the module
                return

    miner = threading.Thread(target=mine, daemon=True)
    miner.start()
    yield chain, scenario, matchmaker
    stop.set()
    miner.join(timeout=10)


def _fuzz(
    app: FastAPI, excluded_prefixes: tuple[str, ...] = (), *, server_errors: bool = False
) -> dict[str, int]:
    """Every operation of `app`'s OpenAPI document, in both modes; returns the status codes seen.

    With `server_errors`, a 5xx is not a failure by itself (the chain is down on purpose); it must
    still be a status code and a body the document declares."""
    excluded = [not_a_server_error] if server_errors else None
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    seen: dict[str, int] = {}
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the document itself is invalid
        if not result.ok().path.startswith(excluded_prefixes):
            operations.append(result.ok())
    assert operations
    for operation in operations:
        for mode, examples in EXAMPLES.items():
            strategy = operation.as_strategy(generation_mode=mode)

            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def check(case: Any) -> None:
                response = case.call_and_validate(excluded_checks=excluded)
                key = f"{case.operation.method.upper()} {case.operation.path} {response.status_code}"
                seen[key] = seen.get(key, 0) + 1

            try:
                check()
            except Unsatisfiable:
                if mode is GenerationMode.POSITIVE:
                    raise
                # nothing can be made invalid: no parameters, or only free-form strings
    return seen


def test_the_explorer_api_holds_its_openapi_document(
    live_market: tuple[DevChain, Scenario, Matchmaker],
) -> None:
    _, scenario, _ = live_market
    app = build_app(manifest=scenario.manifest, store=str(scenario.store_dir), ttl_s=0.05)
    seen = _fuzz(app)
    assert not [key for key in seen if key.endswith((" 500", " 502", " 503", " 504"))], seen
    assert any(key.startswith("GET /api/organizations ") and key.endswith(" 200") for key in seen)
    assert any(key.endswith(" 404") for key in seen), seen  # unknown rounds and organizations were asked
    assert any(key.endswith(" 422") for key in seen), seen  # and invalid parameters refused


def test_the_matchmaker_api_holds_its_openapi_document(
    live_market: tuple[DevChain, Scenario, Matchmaker],
) -> None:
    _, _, matchmaker = live_market
    seen = _fuzz(create_app(matchmaker))
    assert not [key for key in seen if key.endswith((" 500", " 502", " 503", " 504"))], seen
    assert any(key.startswith("GET /rounds/current 200") for key in seen), seen


def test_a_market_that_cannot_be_read_answers_only_documented_503s(
    live_market: tuple[DevChain, Scenario, Matchmaker], tmp_path: Any
) -> None:
    """The explorer pointed at a closed port: every API answer is a documented 503 (or 422/404)."""
    _, scenario, _ = live_market
    app = build_app(manifest=scenario.manifest, rpc_url="http://127.0.0.1:9", ttl_s=0.05)
    seen = _fuzz(app, excluded_prefixes=("/sourcify",), server_errors=True)
    assert any(key.endswith(" 503") for key in seen), seen
    assert not [key for key in seen if key.endswith(" 500")], seen


@settings(max_examples=50, deadline=None, database=None, derandomize=True)
@given(
    value=st.floats(allow_nan=False, allow_infinity=False) | st.from_regex(r"\A[ +-]?[0-9]+(\.0*|e[0-9])\Z")
)
def test_no_lax_integer_spelling_is_accepted(value: object) -> None:
    """`?block=0.0`, `1e3`, `+1`, ` 1` are not integers (pure parsing, no chain needed)."""
    from pydantic import TypeAdapter, ValidationError

    from clikit.http import StrictNonNegativeInt

    with pytest.raises(ValidationError):
        TypeAdapter(StrictNonNegativeInt).validate_python(str(value) if not isinstance(value, str) else value)
