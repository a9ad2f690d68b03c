"""A throw-away local chain: Anvil + a fresh deployment + clients for the dev accounts.

Used by the tests, the demo and the benchmarks. Account 0 is the admin, account 1 the matchmaker,
accounts 2.. are organizations.
"""

from __future__ import annotations

from types import TracebackType

from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.accounts import dev_account
from chain.anvil import AnvilNode
from chain.client import DEFAULT_PARAMETERS, MarketClient, MarketParameters, connect, rpc_errors
from chain.deploy import Deployment, deploy_market
from chain.events import EventReader

ADMIN_INDEX = 0
MATCHMAKER_INDEX = 1
FIRST_ORGANIZATION_INDEX = 2


class DevChain:
    """Anvil on a free loopback port with KnexaMarket deployed; stops Anvil on exit."""

    def __init__(
        self, parameters: MarketParameters = DEFAULT_PARAMETERS, node: AnvilNode | None = None
    ) -> None:
        """With `node`, deploy a fresh market on that running node and leave the node running on exit."""
        self.parameters = parameters
        self._owns_node = node is None
        self.node = node or AnvilNode()
        self._w3: Web3 | None = None
        self._deployment: Deployment | None = None

    def start(self) -> DevChain:
        if self._owns_node:
            self.node.start()
        try:
            self._w3 = connect(self.node.rpc_url)
            self._deployment = deploy_market(
                self._w3,
                dev_account(ADMIN_INDEX),
                dev_account(MATCHMAKER_INDEX).address,
                self.parameters,
                rpc_url=self.node.rpc_url,
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._owns_node:
            self.node.stop()

    def __enter__(self) -> DevChain:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def w3(self) -> Web3:
        if self._w3 is None:
            raise RuntimeError("the dev chain is not started")
        return self._w3

    @property
    def deployment(self) -> Deployment:
        if self._deployment is None:
            raise RuntimeError("the dev chain is not started")
        return self._deployment

    def client(self, account: LocalAccount | None = None) -> MarketClient:
        return MarketClient(self.w3, self.deployment.market_address, account)

    def admin(self) -> MarketClient:
        return self.client(dev_account(ADMIN_INDEX))

    def matchmaker(self) -> MarketClient:
        return self.client(dev_account(MATCHMAKER_INDEX))

    def organization(self, number: int) -> MarketClient:
        """Client of the `number`-th organization account (0-based)."""
        return self.client(dev_account(FIRST_ORGANIZATION_INDEX + number))

    def events(self) -> EventReader:
        return EventReader(self.w3, self.client().contract)

    def mine(self, blocks: int = 1) -> int:
        """Mine `blocks` empty blocks (Anvil's `anvil_mine`); returns the new block number."""
        with rpc_errors(self.node.rpc_url):
            self.w3.provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]
            return self.w3.eth.block_number

    def mine_until(self, block: int) -> int:
        current = self.w3.eth.block_number
        if current < block:
            return self.mine(block - current)
        return current
