"""Tests of populator.observe."""
