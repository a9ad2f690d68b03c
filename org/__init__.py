"""An organization as a user runs it: identity, configuration, the agent runtime and `knexa org`."""
