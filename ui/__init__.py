"""The Panel dashboard: run overview, rule trace explorer, positions and risk (next issues)."""
