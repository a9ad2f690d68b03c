"""The audit explorer: a server-rendered web page over chain + content store.

Modules: `explorer.data` (chain + store -> typed view models in `explorer.models`, briefly cached),
`explorer.content` (read-only store access: cache, circuit breaker, document decoding),
`explorer.verdicts` (the replay verdicts, recomputed through `matchmaker.audit.verify_rounds`),
`explorer.svg` and `explorer.pictures` (inline SVG pictures, no JavaScript), `explorer.sourcify`
(a Sourcify-format tree of the deployed market for block explorers), `explorer.app` (routes:
pages, `/api/...`, `/sourcify/...`), `explorer.server` (wiring) and `explorer.cli`
(`knexa explorer serve`).
"""
