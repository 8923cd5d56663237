"""The acknowledged prefix under any order of acknowledgements, broken reads and retries.

A model object: lines, each with 0-3 items; a reader that cuts items into batches of a few and
marks after each block; writers that acknowledge batches in any order or fail some. The prefix
must never cover a line with an item not acknowledged, and must reach the end when everything is.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from populator.job.prefix import AcknowledgedPrefix


class Model:
    """What the reader submitted: which lines' items each batch holds."""

    def __init__(self, items_per_line: list[int], batch_size: int, block: int, start: int = 0) -> None:
        self.items_per_line = items_per_line
        self.batch_size = batch_size
        self.block = block
        self.prefix = AcknowledgedPrefix(start)
        self.batches: dict[int, list[int]] = {}  # batch → the line of each of its items
        self.stored: set[int] = set()  # batches acknowledged
        self.buffer: list[int] = []

    def read(self, stop_after_line: int | None = None) -> None:
        """One read from the start (lines before the prefix are not submitted again)."""
        self.buffer = []
        lines = len(self.items_per_line)
        for first in range(0, lines, self.block):
            last = min(first + self.block, lines)
            for line in range(first + 1, last + 1):
                if line <= self.prefix.lines:
                    continue
                for _ in range(self.items_per_line[line - 1]):
                    self.buffer.append(line)
                    if len(self.buffer) == self.batch_size:
                        self.batches[self.prefix.submit()] = self.buffer
                        self.buffer = []
            if stop_after_line is not None and last >= stop_after_line:
                self.prefix.read_broke_off()
                self.buffer = []
                return
            self.prefix.mark(last, bool(self.buffer))
        if self.buffer:
            self.batches[self.prefix.submit()] = self.buffer
            self.buffer = []

    def acknowledge(self, batch: int) -> None:
        self.stored.add(batch)
        self.prefix.acknowledge(batch)

    def line_is_stored(self, line: int) -> bool:
        """Every item of `line` is in some acknowledged batch (a later read may store it again)."""
        wanted = self.items_per_line[line - 1]
        found = sum(
            batch_lines.count(line) for number, batch_lines in self.batches.items() if number in self.stored
        )
        return found >= wanted

    def check(self) -> None:
        for line in range(1, self.prefix.lines + 1):
            assert self.line_is_stored(line) or line <= self.start_prefix, (line, self.prefix.lines)

    start_prefix = 0


objects = st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(
    items=objects,
    batch_size=st.integers(min_value=1, max_value=7),
    block=st.integers(min_value=1, max_value=9),
    data=st.data(),
)
def test_the_prefix_never_covers_an_unacknowledged_line(
    items: list[int], batch_size: int, block: int, data: st.DataObject
) -> None:
    model = Model(items, batch_size, block)
    broken = data.draw(st.none() | st.integers(min_value=1, max_value=len(items)), label="break after line")
    if broken is not None:
        model.read(stop_after_line=broken)
        order = data.draw(st.permutations(sorted(model.batches)), label="first acks")
        for batch in order[: data.draw(st.integers(0, len(order)))]:
            model.acknowledge(batch)
            model.check()
    model.read()
    pending = [number for number in sorted(model.batches) if number not in model.stored]
    order = data.draw(st.permutations(pending), label="acks")
    failed = set(data.draw(st.lists(st.sampled_from(order), unique=True), label="failed")) if order else set()
    for batch in order:
        before = model.prefix.lines
        if batch not in failed:
            model.acknowledge(batch)
        assert model.prefix.lines >= before  # never back
        model.check()
    if not failed:
        assert model.prefix.lines == len(items)  # everything acknowledged: the whole object


@settings(max_examples=200, deadline=None)
@given(items=objects, batch_size=st.integers(1, 7), block=st.integers(1, 9), data=st.data())
def test_a_resumed_object_submits_nothing_of_its_prefix(
    items: list[int], batch_size: int, block: int, data: st.DataObject
) -> None:
    first = Model(items, batch_size, block)
    first.read()
    order = data.draw(st.permutations(sorted(first.batches)))
    for batch in order[: data.draw(st.integers(0, len(order)))]:
        first.acknowledge(batch)
    kept = first.prefix.lines  # committed, then reloaded by the next run
    second = Model(items, batch_size, block, start=kept)
    second.start_prefix = kept
    second.read()
    submitted_lines = {line for lines in second.batches.values() for line in lines}
    assert all(line > kept for line in submitted_lines)
    for batch in sorted(second.batches):
        second.acknowledge(batch)
    assert second.prefix.lines == len(items)
