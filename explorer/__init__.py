"""The audit explorer: a server-rendered web page over chain + content store."""
