"""Tests of populator.commands."""
