"""knexa: a blockchain-audited marketplace for peer-to-peer LLM federation (KNEXA-FL)."""

__version__ = "0.1.0"
