"""Market data: the history store (Delta Lake), synthetic option chains and the synthetic market."""
