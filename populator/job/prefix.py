"""How far into an object every item is acknowledged: its acknowledged prefix, in lines.

The reader cuts an object's items into batches, numbered in the order they are submitted, and
after each block of lines it marks how far it has read: every item of the lines up to there is
in a batch submitted by now, or buffered for the very next one. Writers acknowledge batches in
any order (many write at once; retries reorder them). The prefix advances over a mark once every
batch up to the one that mark needs is acknowledged: never past a line whose items are not all
stored, and never back.

A read that breaks off loses what its batch cutter buffered: marks that counted on the next
batch are dropped, since that batch will hold the new read's items. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import deque


class AcknowledgedPrefix:
    """One object's acknowledged prefix. Hold one only while the object is in flight."""

    __slots__ = ("_acknowledged", "_contiguous", "_marks", "_submitted", "lines")

    def __init__(self, lines: int = 0) -> None:
        self.lines = lines  # every item of lines 1..lines is acknowledged (or was, in an earlier run)
        self._submitted = 0  # batches submitted so far, numbered 1, 2, ...
        self._contiguous = 0  # every batch numbered up to here is acknowledged
        self._acknowledged: set[int] = set()  # acknowledged batches beyond `_contiguous`
        self._marks: deque[tuple[int, int]] = deque()  # (lines read, batch that covers them)

    def submit(self) -> int:
        """The number of the batch being submitted."""
        self._submitted += 1
        return self._submitted

    def mark(self, lines: int, buffered: bool) -> None:
        """Lines 1..`lines` are read and their items submitted, or (`buffered`) waiting in the
        cutter for the next batch."""
        needs = self._submitted + 1 if buffered else self._submitted
        if needs <= self._contiguous:
            self.lines = max(self.lines, lines)
        else:
            self._marks.append((lines, needs))

    def acknowledge(self, batch: int) -> bool:
        """Batch number `batch` is stored; True when the prefix moved."""
        if batch <= self._contiguous:
            return False
        self._acknowledged.add(batch)
        while self._contiguous + 1 in self._acknowledged:
            self._contiguous += 1
            self._acknowledged.discard(self._contiguous)
        before = self.lines
        marks = self._marks
        while marks and marks[0][1] <= self._contiguous:
            self.lines = max(self.lines, marks.popleft()[0])
        return self.lines != before

    def read_broke_off(self) -> None:
        """The read starts again: what the cutter buffered is gone, and the marks that needed it."""
        self._marks = deque(mark for mark in self._marks if mark[1] <= self._submitted)
