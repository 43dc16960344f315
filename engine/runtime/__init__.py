"""The engine loop: snapshot in, decisions, orders and journal rows out."""
