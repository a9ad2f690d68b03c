"""Simulations: the synthetic federation and learner, the federation experiment, fan-out (Ray)."""
