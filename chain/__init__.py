"""The chain side of knexa: compile, deploy and talk to the marketplace contracts (web3.py).

Knows nothing of ML or IPFS: CIDs are opaque bytes here.
"""
