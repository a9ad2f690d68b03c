"""Routes: server-rendered pages, the JSON API under `/api`, and the Sourcify tree for block explorers.

Every page has a JSON twin (`/rounds/3` <-> `/api/rounds/3`); FastAPI publishes the OpenAPI document
at `/openapi.json` (interactive docs at `/docs`), with every status code a route can answer. Every
list is paged (`explorer.paging`: `cursor` + `limit`, oldest first). When the chain cannot be read
(no manifest, node down, chain reset) pages answer 503 with an explanation page and the API answers 503 with
`{"error", "title", "detail"}`; nothing here answers 500 for a state of the world.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from web3 import Web3

from explorer import pictures
from explorer.data import ExplorerData, short_address
from explorer.models import (
    DisputeView,
    EventView,
    History,
    OrganizationView,
    RoundView,
    Snapshot,
    Summary,
    Unavailable,
    VerdictView,
)
from explorer.paging import (
    CHAIN_UNAVAILABLE,
    DEFAULT_LIMIT,
    NOT_FOUND,
    CursorQuery,
    LimitQuery,
    Page,
    StrictNonNegativeInt,
    page_of,
)
from explorer.redact import redact_url
from explorer.sourcify import market_tree

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
EVENT_PAGE_LIMIT = 500


class ChainUnavailableError(Exception):
    def __init__(self, reason: Unavailable) -> None:
        super().__init__(reason.detail)
        self.reason = reason


def _eth(wei: int) -> str:
    return f"{wei / 10**18:,.4f} ETH"


def create_app(data: ExplorerData) -> FastAPI:
    """The explorer as an ASGI app over `data` (which knows the chain, store and verifier)."""
    app = FastAPI(
        title="knexa audit explorer",
        description=(
            "Public audit view of a knexa marketplace: organizations, rounds, pairs, gains, rewards, "
            "slashes, reputation and the explorer's own replay verdicts. Reads only public data."
        ),
        version="1",
    )
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    bx = redact_url((data.settings.block_explorer_url or "").rstrip("/")) or None
    templates.env.globals.update(
        bx=bx,
        short=short_address,
        eth=_eth,
    )

    def snapshot() -> Snapshot:
        result = data.snapshot()
        if isinstance(result, Unavailable):
            raise ChainUnavailableError(result)
        return result

    def page(request: Request, template: str, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, template, context)

    @app.exception_handler(ChainUnavailableError)
    async def unavailable_handler(request: Request, error: ChainUnavailableError) -> Response:
        reason = error.reason
        if request.url.path.startswith("/api/"):
            return JSONResponse(
                {"error": reason.kind, "title": reason.title, "detail": reason.detail}, status_code=503
            )
        return templates.TemplateResponse(
            request, "unavailable.html", {"reason": reason, "nav": ""}, status_code=503
        )

    # ------------------------------------------------------------------ pages

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request) -> HTMLResponse:
        snap = snapshot()
        latest = snap.rounds[-1] if snap.rounds else None
        return page(
            request,
            "home.html",
            nav="home",
            s=snap,
            latest=latest,
            latest_graph=Markup(pictures.round_graph(latest, snap.organizations)) if latest else None,
            heatmap=Markup(pictures.heatmap(snap.history, snap.organizations)),
            reputation_chart=Markup(pictures.reputation_chart(snap.history)),
            gain_chart=Markup(pictures.gain_chart(snap.history)),
        )

    @app.get("/organizations", response_class=HTMLResponse, include_in_schema=False)
    def organizations_page(request: Request) -> HTMLResponse:
        snap = snapshot()
        return page(
            request,
            "organizations.html",
            nav="organizations",
            s=snap,
            reputation_chart=Markup(pictures.reputation_chart(snap.history)),
            gain_chart=Markup(pictures.gain_chart(snap.history)),
        )

    @app.get("/organizations/{address}", response_class=HTMLResponse, include_in_schema=False)
    def organization_page(request: Request, address: str) -> HTMLResponse:
        snap = snapshot()
        org = _find_organization(snap, address)
        pairs = [
            (item, pair)
            for item in snap.rounds
            for pair in item.pairs
            if org.address in (pair.teacher, pair.student)
        ]
        history = History(
            rounds=snap.history.rounds,
            organizations=[s for s in snap.history.organizations if s.address == org.address],
            pair_counts=[],
        )
        return page(
            request,
            "organization.html",
            nav="organizations",
            s=snap,
            org=org,
            pairs=pairs,
            reputation_chart=Markup(pictures.reputation_chart(history)),
            gain_chart=Markup(pictures.gain_chart(history)),
        )

    @app.get("/rounds", response_class=HTMLResponse, include_in_schema=False)
    def rounds_page(request: Request) -> HTMLResponse:
        snap = snapshot()
        return page(
            request,
            "rounds.html",
            nav="rounds",
            s=snap,
            heatmap=Markup(pictures.heatmap(snap.history, snap.organizations)),
        )

    @app.get("/rounds/{round_id}", response_class=HTMLResponse, include_in_schema=False)
    def round_page(request: Request, round_id: StrictNonNegativeInt) -> HTMLResponse:
        snap = snapshot()
        item = _find_round(snap, round_id)
        return page(
            request,
            "round.html",
            nav="rounds",
            s=snap,
            r=item,
            graph=Markup(pictures.round_graph(item, snap.organizations)),
            names={org.address: org.name for org in snap.organizations},
            dispute_limit=DEFAULT_LIMIT,
        )

    @app.get("/events", response_class=HTMLResponse, include_in_schema=False)
    def events_page(
        request: Request,
        name: str | None = None,
        tx: str | None = None,
        block: str | None = None,
    ) -> HTMLResponse:
        snap = snapshot()
        name, tx = name or None, tx or None  # the HTML form sends empty fields
        block_number = int(block) if block and block.strip().isdigit() else None
        events = _filter_events(snap.events, name, tx, block_number)
        return page(
            request,
            "events.html",
            nav="events",
            s=snap,
            events=events[-EVENT_PAGE_LIMIT:],
            total=len(events),
            name=name,
            tx=tx,
            block=block_number,
            names=sorted({event.name for event in snap.events}),
        )

    # ------------------------------------------------------------------ JSON API

    @app.get("/api/summary", tags=["api"], responses=CHAIN_UNAVAILABLE)
    def api_summary() -> Summary:
        """Chain, market, parameters, counts, content store state and notices."""
        return snapshot().summary

    @app.get("/api/organizations", tags=["api"], responses=CHAIN_UNAVAILABLE)
    def api_organizations(
        cursor: CursorQuery = None, limit: LimitQuery = DEFAULT_LIMIT
    ) -> Page[OrganizationView]:
        """Registered organizations in registration order, with their state and decoded profile."""
        return page_of(snapshot().organizations, cursor, limit)

    @app.get("/api/organizations/{address}", tags=["api"], responses={**NOT_FOUND, **CHAIN_UNAVAILABLE})
    def api_organization(address: str) -> OrganizationView:
        return _find_organization(snapshot(), address)

    @app.get("/api/rounds", tags=["api"], responses=CHAIN_UNAVAILABLE)
    def api_rounds(cursor: CursorQuery = None, limit: LimitQuery = DEFAULT_LIMIT) -> Page[RoundView]:
        """Rounds, oldest first, with their pairs, scores, bundles, gains, rewards, slashes and verdict."""
        return page_of(snapshot().rounds, cursor, limit)

    @app.get("/api/rounds/{round_id}", tags=["api"], responses={**NOT_FOUND, **CHAIN_UNAVAILABLE})
    def api_round(round_id: StrictNonNegativeInt) -> RoundView:
        return _find_round(snapshot(), round_id)

    @app.get("/api/rounds/{round_id}/disputes", tags=["api"], responses={**NOT_FOUND, **CHAIN_UNAVAILABLE})
    def api_round_disputes(
        round_id: StrictNonNegativeInt, cursor: CursorQuery = None, limit: LimitQuery = DEFAULT_LIMIT
    ) -> Page[DisputeView]:
        """The round's disputes in pair order: evidence, ruling on chain, and the replay's judgement."""
        return page_of(_find_round(snapshot(), round_id).disputes, cursor, limit)

    @app.get("/api/disputes", tags=["api"], responses=CHAIN_UNAVAILABLE)
    def api_disputes(cursor: CursorQuery = None, limit: LimitQuery = DEFAULT_LIMIT) -> Page[DisputeView]:
        """Every dispute, oldest round first, with its evidence, ruling and the replay's judgement."""
        return page_of([dispute for item in snapshot().rounds for dispute in item.disputes], cursor, limit)

    @app.get("/api/verdicts", tags=["api"], responses=CHAIN_UNAVAILABLE)
    def api_verdicts(cursor: CursorQuery = None, limit: LimitQuery = DEFAULT_LIMIT) -> Page[VerdictView]:
        """The replay verdict of every round, recomputed by this explorer, oldest round first."""
        return page_of([item.verdict for item in snapshot().rounds], cursor, limit)

    @app.get("/api/events", tags=["api"], responses=CHAIN_UNAVAILABLE)
    def api_events(
        name: str | None = Query(None, description="only events with this name"),
        tx: str | None = Query(None, description="only events of this transaction hash"),
        block: StrictNonNegativeInt | None = Query(None, description="only events of this block"),
        cursor: CursorQuery = None,
        limit: LimitQuery = DEFAULT_LIMIT,
    ) -> Page[EventView]:
        """The market's decoded events in chain order."""
        return page_of(_filter_events(snapshot().events, name, tx, block), cursor, limit)

    @app.get("/api/history", tags=["api"], responses=CHAIN_UNAVAILABLE)
    def api_history() -> History:
        """Reputation and gains per organization over rounds, and how often each pair was chosen."""
        return snapshot().history

    @app.get("/healthz", tags=["ops"])
    def health() -> dict[str, str]:
        """The explorer answers; `chain` says whether the market can be read right now."""
        result = data.snapshot()
        return {"explorer": "up", "chain": result.kind if isinstance(result, Unavailable) else "ok"}

    # ------------------------------------------------------------------ Sourcify tree

    cors = {"Access-Control-Allow-Origin": "*"}

    def _check_market(chain_id: int, address: str) -> None:
        market = data.market
        if data.market is None:
            data.snapshot()
            market = data.market
        if market is None or chain_id != market.chain_id or not Web3.is_address(address):
            raise HTTPException(404, "not a contract this explorer knows", headers=cors)
        if Web3.to_checksum_address(address) != market.address:
            raise HTTPException(404, "not a contract this explorer knows", headers=cors)

    metadata_responses: dict[int | str, dict[str, Any]] = {
        200: {"content": {"application/json": {}}, "description": "the metadata JSON"},
        **NOT_FOUND,
    }
    source_responses: dict[int | str, dict[str, Any]] = {
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "the source"},
        **NOT_FOUND,
    }

    @app.get(
        "/sourcify/contracts/full_match/{chain_id}/{address}/metadata.json",
        tags=["sourcify"],
        response_class=Response,
        responses=metadata_responses,
    )
    def sourcify_metadata(chain_id: StrictNonNegativeInt, address: str) -> Response:
        """The compiler metadata of the deployed market, byte for byte (Sourcify repository layout)."""
        _check_market(chain_id, address)
        return Response(market_tree().metadata, media_type="application/json", headers=cors)

    @app.get(
        "/sourcify/contracts/full_match/{chain_id}/{address}/sources/{path:path}",
        tags=["sourcify"],
        response_class=Response,
        responses=source_responses,
    )
    def sourcify_source(chain_id: StrictNonNegativeInt, address: str, path: str) -> Response:
        """A source unit, by its path (RepositoryV1, `@`/`:` as `_`) or the keccak256 of it (V2)."""
        _check_market(chain_id, address)
        text = market_tree().source(path)
        if text is None:
            raise HTTPException(404, f"no source {path!r}", headers=cors)
        return Response(text, media_type="text/plain; charset=utf-8", headers=cors)

    return app


def _find_organization(snap: Snapshot, address: str) -> OrganizationView:
    for org in snap.organizations:
        if org.address.lower() == address.lower():
            return org
    raise HTTPException(404, f"no organization {address} is registered")


def _find_round(snap: Snapshot, round_id: int) -> RoundView:
    for item in snap.rounds:
        if item.round_id == round_id:
            return item
    raise HTTPException(404, f"round {round_id} was never opened")


def _filter_events(
    events: list[EventView], name: str | None, tx: str | None, block: int | None
) -> list[EventView]:
    return [
        event
        for event in events
        if (name is None or event.name == name)
        and (tx is None or event.transaction_hash.lower() == tx.lower())
        and (block is None or event.block_number == block)
    ]
