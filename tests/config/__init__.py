"""Tests of populator.config."""
