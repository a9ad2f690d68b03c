"""Simulations of the market: the federation benchmark's harness (no chain involved)."""
