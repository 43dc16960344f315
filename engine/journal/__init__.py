"""The journal: Delta Lake tables every stage of a tick appends to (snapshots, decisions, ...)."""
