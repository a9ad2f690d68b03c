"""The matchmaker: profiles, LinUCB over directed pairs, matching, rounds, replay and audit.

Depends on numpy/scipy only; never on torch.

Modules (each with one job):

* `matchmaker.profiles`: `OrgFeatures` (what the matchmaker may learn), DP release of the
  category histogram, privacy accounting, profile documents.
* `matchmaker.context`: directed-pair contexts ``x(teacher, student)`` and the canonical arm order.
* `matchmaker.linucb`: the LinUCB bandit, bit-reproducible, with `LinUCB.state_digest`.
* `matchmaker.matching`: the per-round assignment (student once, teacher <= capacity).
* `matchmaker.policies`: `Policy` (`linucb`, `random`, `heuristic`, `oracle`), `Decision`, `PolicyParams`.
* `sim.synthetic`: a synthetic federation with hidden skills, churn and missing reports.
* `matchmaker.cli`: the `knexa matchmaker` commands.
"""
