"""The matchmaker's HTTP service: health, policy, rounds, and its own replay verdicts (FastAPI).

The service shows only public data (chain + store) and what the matchmaker derives from it, so an
auditor can check every answer with `knexa audit replay`. OpenAPI: `/openapi.json`, docs: `/docs`.
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from chain.errors import ChainError
from chain.units import from_wad
from exchange.cid import cid_text
from exchange.errors import ExchangeError
from market.errors import MarketError
from market.ledger import LedgerRound
from matchmaker.driver import Driver
from matchmaker.service import Matchmaker


class DriverView(BaseModel):
    """The round driver's real state: `ok`, `retrying` (a transient failure) or `stopped` (halted)."""

    status: str
    last_success: str | None
    last_success_at: float | None
    error: str | None
    error_since: float | None
    failures: int


class Health(BaseModel):
    status: str
    chain_id: int
    block: int | None
    market: str
    matchmaker: str
    driver: DriverView | None = None


class PolicyView(BaseModel):
    name: str
    params: dict[str, Any]
    seed: int
    commitment: str
    state_digest: str
    observed_rounds: int


class PairView(BaseModel):
    index: int
    teacher: str
    student: str
    bundle_cid: str | None
    gain: float | None
    adapter_cid: str | None


class RoundView(BaseModel):
    round: int
    status: str
    opened_block: int
    deadline_block: int
    decision_cid: str
    policy_digest: str
    pairs: list[PairView]
    verdict: str | None
    first_difference: str | None


def _cid(value: bytes | None) -> str | None:
    if value is None:
        return None
    try:
        return cid_text(value)
    except ValueError:
        return "0x" + value.hex()


def round_view(record: LedgerRound, verdict: tuple[str, str | None] | None) -> RoundView:
    return RoundView(
        round=record.round_id,
        status="finalized" if record.finalized else "open",
        opened_block=record.opened_block,
        deadline_block=record.deadline_block,
        decision_cid=_cid(record.decision_cid) or "",
        policy_digest=record.policy_digest.hex(),
        pairs=[
            PairView(
                index=pair.index,
                teacher=pair.teacher,
                student=pair.student,
                bundle_cid=_cid(pair.bundle_cid),
                gain=None if pair.gain is None else from_wad(pair.gain),
                adapter_cid=_cid(pair.adapter_cid),
            )
            for pair in record.pairs
        ],
        verdict=verdict[0] if verdict else None,
        first_difference=verdict[1] if verdict else None,
    )


def create_app(matchmaker: Matchmaker, driver: Driver | None = None) -> FastAPI:
    """The HTTP API over one `Matchmaker` (which may be driven by `driver` in another thread)."""
    app = FastAPI(
        title="knexa matchmaker",
        version="1",
        description="LinUCB matchmaker of the knexa marketplace: its policy, rounds and replay verdicts.",
    )
    lock = threading.Lock()  # the matchmaker is not thread-safe; the loop thread shares it

    def rounds() -> tuple[dict[int, LedgerRound], dict[int, tuple[str, str | None]]]:
        with lock:
            try:
                ledger, _ = matchmaker.sync()
                history = matchmaker.judge_history()
            except (ChainError, MarketError) as error:
                raise HTTPException(503, f"chain unavailable: {error}") from error
            except ExchangeError as error:  # the live replayer retries store outages (no verdict yet)
                raise HTTPException(503, f"store unavailable: {error}") from error
            verdicts = {verdict.round_id: (verdict.verdict, verdict.first_difference) for verdict in history}
            return ledger.rounds, verdicts

    @app.get(
        "/health",
        response_model=Health,
        summary="Is the chain reachable, is the round driver working, and where is the market",
        responses={503: {"model": Health, "description": "the chain is down, or the driver is not ok"}},
    )
    def health() -> Health | JSONResponse:
        view = None
        if driver is not None:
            state = driver.state
            view = DriverView(
                status=state.status,
                last_success=state.last_success,
                last_success_at=state.last_success_at,
                error=state.stopped or state.error,
                error_since=state.error_since,
                failures=state.failures,
            )
        try:
            block: int | None = matchmaker.market.block_number()
            status = "ok" if view is None or view.status == "ok" else view.status
        except ChainError:
            block, status = None, "chain unavailable"
        account = matchmaker.market.account
        answer = Health(
            status=status,
            chain_id=matchmaker.market.chain_id,
            block=block,
            market=matchmaker.market.address,
            matchmaker=account.address if account is not None else "",
            driver=view,
        )
        if status != "ok":
            return JSONResponse(answer.model_dump(), status_code=503)
        return answer

    @app.get("/policy", response_model=PolicyView, summary="The declared policy and the learnt state")
    def policy() -> PolicyView:
        runner = matchmaker.replayer.runner
        assert runner is not None
        return PolicyView(
            name=runner.params.name,
            params=runner.params.to_dict(),
            seed=runner.seed,
            commitment=runner.commitment,
            state_digest=runner.policy.state_digest(),
            observed_rounds=runner.observed_rounds,
        )

    @app.get("/rounds", response_model=list[RoundView], summary="Every round, oldest first")
    def all_rounds() -> list[RoundView]:
        records, verdicts = rounds()
        return [round_view(records[key], verdicts.get(key)) for key in sorted(records)]

    @app.get("/rounds/current", response_model=RoundView, summary="The open round, else the latest one")
    def current_round() -> RoundView:
        records, verdicts = rounds()
        if not records:
            raise HTTPException(404, "no round has been opened yet")
        open_ids = [key for key, record in records.items() if not record.finalized]
        key = open_ids[0] if open_ids else max(records)
        return round_view(records[key], verdicts.get(key))

    @app.get("/rounds/{round_id}", response_model=RoundView, summary="One round's pairs, gains and verdict")
    def one_round(round_id: int) -> RoundView:
        records, verdicts = rounds()
        if round_id not in records:
            raise HTTPException(404, f"round {round_id} does not exist")
        return round_view(records[round_id], verdicts.get(round_id))

    app.state.lock = lock
    return app
