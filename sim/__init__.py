"""Simulations: the synthetic federation and learner, the federation experiments, fan-out (Ray)."""
