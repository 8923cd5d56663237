"""Tests of populator.samples."""
