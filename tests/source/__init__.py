"""Tests of populator.source."""
