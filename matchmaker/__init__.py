"""The matchmaker: profiles, LinUCB over directed pairs, matching, rounds, replay and audit.

Depends on numpy/scipy only; never on torch.
"""
