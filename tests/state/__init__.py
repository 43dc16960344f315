"""Tests for engine.state."""
