"""Tests of populator.sink."""
