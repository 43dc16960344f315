"""Tests for engine.journal."""
