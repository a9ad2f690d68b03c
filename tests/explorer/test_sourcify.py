"""The Sourcify-format tree the explorer serves for block explorers (Otterscan) is the deployed code's."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from multiformats import CID
from web3 import Web3

from chain.devchain import DevChain
from exchange.cid import cid_of
from explorer.server import build_app
from explorer.sourcify import metadata_hash_from_code, v1_name, v2_name


def test_metadata_is_the_one_whose_hash_the_deployed_code_carries(
    dev_chain: DevChain, tmp_path: Path
) -> None:
    manifest = tmp_path / "deployment.json"
    dev_chain.deployment.save(manifest)
    client = TestClient(build_app(manifest=manifest, ttl_s=0))
    address = dev_chain.deployment.market_address
    root = f"/sourcify/contracts/full_match/31337/{address}"

    response = client.get(f"{root}/metadata.json")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"  # Otterscan fetches from another origin
    code = bytes(dev_chain.w3.eth.get_code(Web3.to_checksum_address(address)))
    embedded = metadata_hash_from_code(code)
    assert embedded is not None
    assert embedded[:2] == b"\x12\x20"
    # solc embeds the IPFS (CIDv0, UnixFS) hash of the metadata file: recompute it from the served bytes
    assert CID.decode(cid_of(response.content, 0)).digest == embedded

    metadata = json.loads(response.content)
    assert metadata["settings"]["compilationTarget"] == {"src/KnexaMarket.sol": "KnexaMarket"}
    for unit, entry in metadata["sources"].items():
        for name in (v1_name(unit), v2_name(unit)):  # RepositoryV1 and RepositoryV2 file names
            source = client.get(f"{root}/sources/{name}")
            assert source.status_code == 200, (unit, name)
            assert Web3.keccak(source.content).to_0x_hex() == entry["keccak256"], unit
    assert any(v1_name(unit).startswith("_openzeppelin/") for unit in metadata["sources"])

    assert client.get(f"/sourcify/contracts/full_match/1/{address}/metadata.json").status_code == 404
    other = "0x000000000000000000000000000000000000dEaD"
    assert client.get(f"/sourcify/contracts/full_match/31337/{other}/metadata.json").status_code == 404
    assert client.get(f"/sourcify/contracts/partial_match/31337/{address}/metadata.json").status_code == 404
    assert client.get(f"{root}/sources/src/Nope.sol").status_code == 404
