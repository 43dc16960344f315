"""Tests for engine.feeds."""
