"""Content addressing: CIDs, content stores (local directory, IPFS), bundle formats, sealing.

Modules, each with one job:

- `unixfs`, `cid`: the CID `ipfs add` gives (Kubo defaults, CIDv0 and CIDv1), and verification;
- `store` (the `ContentStore` interface), `local` (`LocalStore`), `ipfs` (`IpfsStore`, Kubo RPC API),
  `node` (start/stop a real offline IPFS node);
- `canonical`, `schema`, `documents`: canonical JSON and the public `ProfileDoc` / `DecisionRecord`;
- `bundles`: `KnowledgeBundle` and `AdapterBundle` (safetensors, never pickle) with their limits;
- `ecies`, `sealing`: sign with the teacher's Ethereum key, encrypt to the student's public key,
  and `open_sealed`, which checks everything before returning content;
- `errors`: the `ExchangeError` hierarchy; `cli`: `knexa exchange ...`.

Nothing here knows about models or training; tensors are numpy arrays.
"""
