"""The procedurally generated code-problem suite: templates, problems, non-IID splits, public corpus."""

from agent.data.problems import Problem, instantiate, prompt_key
from agent.data.splits import (
    OrgData,
    Suite,
    TransferItem,
    build_suite,
    check_disjoint,
    pretraining_corpus,
    split_rows,
)
from agent.data.templates import CATEGORIES, TEMPLATES, Role, Template

__all__ = [
    "CATEGORIES",
    "TEMPLATES",
    "OrgData",
    "Problem",
    "Role",
    "Suite",
    "Template",
    "TransferItem",
    "build_suite",
    "check_disjoint",
    "instantiate",
    "pretraining_corpus",
    "prompt_key",
    "split_rows",
]
