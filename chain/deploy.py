"""Deploy the market and describe the deployment in a manifest others can check."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3

from chain.client import DEFAULT_PARAMETERS, MarketClient, MarketParameters, parameter_components, rpc_errors
from chain.compiler import Artifact, load_artifact
from chain.errors import DeploymentError

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class Deployment:
    """Where the market lives and what was deployed there."""

    chain_id: int
    rpc_url: str
    market_address: str
    deploy_block: int
    deploy_transaction: str
    admin: str
    matchmaker: str
    compiler_version: str
    bytecode_sha256: str
    source_digests: dict[str, str]
    parameters: dict[str, int]
    manifest_version: int = MANIFEST_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Deployment:
        if data.get("manifest_version") != MANIFEST_VERSION:
            raise DeploymentError(f"unsupported manifest version {data.get('manifest_version')!r}")
        try:
            return cls(**data)
        except TypeError as error:
            raise DeploymentError(f"malformed deployment manifest: {error}") from error

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Deployment:
        if not path.exists():
            raise DeploymentError(
                f"no deployment manifest at {path}: run `knexa chain up` or `knexa chain deploy`"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DeploymentError(f"{path} is not JSON: {error}") from error
        return cls.from_json(data)


def deploy_market(
    w3: Web3,
    deployer: LocalAccount,
    matchmaker: str,
    parameters: MarketParameters = DEFAULT_PARAMETERS,
    rpc_url: str = "",
    artifact: Artifact | None = None,
) -> Deployment:
    """Deploy KnexaMarket with `deployer` as admin and `matchmaker` holding MATCHMAKER_ROLE."""
    artifact = artifact or load_artifact("KnexaMarket")
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    with rpc_errors(rpc_url or "the JSON-RPC node"):
        chain_id = w3.eth.chain_id
        transaction = factory.constructor(
            deployer.address,
            Web3.to_checksum_address(matchmaker),
            parameters.as_abi(parameter_components(artifact.abi)),
        ).build_transaction(
            {
                "from": deployer.address,
                "nonce": w3.eth.get_transaction_count(deployer.address, "pending"),
                "chainId": chain_id,
            }
        )
        signed = deployer.sign_transaction(transaction)
        transaction_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(transaction_hash, timeout=120)
    if receipt["status"] != 1 or receipt["contractAddress"] is None:
        raise DeploymentError(f"deployment transaction {HexBytes(transaction_hash).to_0x_hex()} failed")
    deployment = Deployment(
        chain_id=chain_id,
        rpc_url=rpc_url,
        market_address=str(receipt["contractAddress"]),
        deploy_block=int(receipt["blockNumber"]),
        deploy_transaction=HexBytes(transaction_hash).to_0x_hex(),
        admin=deployer.address,
        matchmaker=Web3.to_checksum_address(matchmaker),
        compiler_version=artifact.compiler_version,
        bytecode_sha256=artifact.bytecode_digest,
        source_digests=artifact.source_digests,
        parameters=asdict(parameters),
    )
    verify_deployment(w3, deployment, artifact)
    return deployment


def verify_deployment(w3: Web3, deployment: Deployment, artifact: Artifact | None = None) -> MarketClient:
    """Check that the manifest's address holds exactly the committed contract on the same chain."""
    artifact = artifact or load_artifact("KnexaMarket")
    with rpc_errors(deployment.rpc_url or "the JSON-RPC node"):
        chain_id = w3.eth.chain_id
        code = bytes(w3.eth.get_code(Web3.to_checksum_address(deployment.market_address)))
    if chain_id != deployment.chain_id:
        raise DeploymentError(f"manifest is for chain {deployment.chain_id}, node is chain {chain_id}")
    if not code:
        raise DeploymentError(
            f"no contract at {deployment.market_address} "
            "(was the chain reset? redeploy with `knexa chain up`)"
        )
    if code != bytes.fromhex(artifact.deployed_bytecode.removeprefix("0x")):
        raise DeploymentError(f"the code at {deployment.market_address} is not the committed KnexaMarket")
    return MarketClient(w3, deployment.market_address, artifact=artifact)
