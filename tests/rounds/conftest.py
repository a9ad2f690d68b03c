"""A small federation on a real Anvil chain with a local content store, played by scripted agents."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from chain.client import MarketClient
from chain.devchain import DevChain
from chain.units import ether, to_wad
from exchange.cid import cid_binary
from exchange.local import LocalStore
from market.documents import PeftSummary, ProfileDoc
from matchmaker.policies import PolicyParams
from matchmaker.service import Matchmaker, RoundPlan
from tests.chain.helpers import account_of, public_key

CATEGORIES = PolicyParams().categories


def profile(index: int, count: int) -> ProfileDoc:
    """Organization `index` is a specialist in two categories (distinct per organization)."""
    histogram = [0.02] * len(CATEGORIES)
    histogram[(2 * index) % len(CATEGORIES)] = 0.52  # sums to 1 over 8 categories
    histogram[(2 * index + 1) % len(CATEGORIES)] = 0.36
    return ProfileDoc(
        model_family=["llama", "gpt2", "neox"][index % 3],
        size_bucket=str(index % 3),
        peft=PeftSummary(rank=4 * (1 + index % 2), target_modules=("q_proj", "v_proj")),
        pass_at_1=0.1 + 0.6 * index / max(1, count - 1),
        pass_at_1_delta=0.0,
        categories=CATEGORIES,
        histogram=tuple(histogram),
        epsilon=1.0,
        budget_spent=1.0,
    )


@dataclass
class Federation:
    chain: DevChain
    store: LocalStore
    orgs: dict[str, MarketClient]

    def matchmaker(
        self,
        params: PolicyParams | None = None,
        seed: int = 7,
        plan_hook: Callable[[RoundPlan], None] | None = None,
        accept_mismatches: bool = False,
    ) -> Matchmaker:
        return Matchmaker(
            self.chain.matchmaker(),
            self.store,
            params or PolicyParams(),
            seed=seed,
            from_block=self.chain.deployment.deploy_block,
            round_blocks=12,
            plan_hook=plan_hook,
            accept_mismatches=accept_mismatches,
        )

    def play_open_round(self, silent_students: frozenset[str] = frozenset()) -> int:
        """Every teacher publishes; every student not in `silent_students` reports a gain that
        depends on the pair (a hidden, deterministic ground truth)."""
        reader = self.chain.client()
        round_id = reader.open_round_id()
        assert round_id != 0
        addresses = list(self.orgs)
        pairs = reader.pairs(round_id)
        for pair in pairs:
            bundle = self.store.put(f"bundle {round_id} {pair.teacher} {pair.student}".encode())
            self.orgs[pair.teacher].publish_bundle(round_id, pair.student, cid_binary(bundle))
        for pair in pairs:
            if pair.student in silent_students:
                continue
            gain = 0.05 * ((addresses.index(pair.teacher) - addresses.index(pair.student)) % len(addresses))
            adapter = self.store.put(f"adapter {round_id} {pair.student}".encode())
            self.orgs[pair.student].report_gain(round_id, pair.teacher, to_wad(gain), cid_binary(adapter))
        deadline = reader.round(round_id).deadline_block
        self.chain.mine_until(deadline + 1)
        return round_id


@pytest.fixture
def federation(dev_chain: DevChain, tmp_path: Path) -> Federation:
    store = LocalStore(tmp_path / "store")
    count = 4
    orgs: dict[str, MarketClient] = {}
    for index in range(count):
        client = dev_chain.organization(index)
        cid = store.put(profile(index, count).to_bytes())
        client.register(f"org-{index}", cid_binary(cid), public_key(index + 1), ether(2))
        orgs[account_of(client).address] = client
    return Federation(dev_chain, store, orgs)
