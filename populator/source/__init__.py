"""Where events come from: the archive's run folders and objects, read as lines.

- `archive`: an S3 or local archive, its run folders, `--since`, `ArchiveObject` descriptors.
- `reader`: one object streamed as lines (gzip found by magic bytes, memory bounded).
- `shard`: one machine's share of the archive (`--shard K/N`).
- `estimate`: lines and events of an archive, from the heads of a few objects (for `plan`).

Imports `populator.config`, `populator.events` and `populator.errors`; never a sink.
"""
