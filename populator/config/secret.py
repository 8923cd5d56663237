"""`Secret`: a string from a config file that must never reach output, logs, reports or checkpoints.

Its own module so that `iglu` (a repository's apikey) and `storage` (the AWS secret key) can both
use it without importing each other; `storage` re-exports it.
"""

from __future__ import annotations


class Secret:
    """A string that must never be printed: `repr`/`str` show only that it is set."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)
