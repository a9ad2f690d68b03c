"""Content addressing: CIDs, content stores (local directory, IPFS), bundle formats, sealing."""
