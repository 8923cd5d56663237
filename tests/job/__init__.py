"""Tests of populator.job."""
