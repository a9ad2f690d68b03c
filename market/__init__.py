"""The public protocol every participant shares: the event-log fold, documents, bundles, categories,
the client-side DP release, the contract's parameters, errors, defaults and the CLI toolkit.

Organizations, the matchmaker and auditors all build on this package and never on each other.
"""
