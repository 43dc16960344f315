"""Positions and the account: the book kept from fills, marked to market every tick."""
