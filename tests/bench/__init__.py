"""Tests for engine.bench."""
