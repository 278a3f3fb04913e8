"""Decode `docker buildx build --progress=rawjson` output into events, from text chunks split anywhere.

buildx writes BuildKit SolveStatus objects as JSON to stderr. buildx 0.13 pretty-prints each object over
many lines (the closing brace alone on its line, at column 0); buildx 0.15+ writes one object per line.
Plain text lines can follow or sit between the objects: the Dockerfile excerpt of a failed step
(``Dockerfile:10`` / ``----`` / ``>>> RUN ...``), ``ERROR: failed to solve: ...``, warnings.
progress.py models the build from the events.
"""

from __future__ import annotations

import json


class RawJsonStream:
    """Incremental decoder: feed() text chunks (any split, even mid-object), get back events.

    An event is a dict (one decoded SolveStatus object) or a str (one plain text line, without its line
    break). Lines that hold only whitespace are dropped. Input is handled line by line: a line that starts
    with ``{`` opens an object and is decoded at once with ``raw_decode`` (one object per line, buildx
    0.15+); if it does not decode yet, the following indented lines are collected and decoding is tried
    again at a line starting with ``}`` (the closing brace of a pretty-printed object, buildx 0.13). A line
    at column 0 that cannot belong to the object ends the attempt: the collected lines become text. Each
    object is decoded about twice at most, so the cost is linear in the stream however it is chunked.
    """

    def __init__(self) -> None:
        self._decoder = json.JSONDecoder()
        self._partial: list[str] = []  # pieces of the current line, not yet ended by "\n"
        self._pending: list[str] = []  # lines of an object that has not decoded yet

    def feed(self, text: str) -> list[dict | str]:
        events: list[dict | str] = []
        if not text:
            return events
        lines = text.split("\n")
        if len(lines) == 1:
            self._partial.append(text)
            return events
        self._partial.append(lines[0])
        lines[0] = "".join(self._partial)
        self._partial = [lines[-1]] if lines[-1] else []
        del lines[-1]
        for line in lines:
            # Fast path: an indented line inside a pretty-printed object.
            if self._pending and line[:1] in _INSIDE_OBJECT:
                self._pending.append(line)
            else:
                self._line(line, events)
        return events

    def close(self) -> list[dict | str]:
        """Flush what is left: a trailing line without a line break, an object that never completed."""
        events: list[dict | str] = []
        if self._partial:
            last = "".join(self._partial)
            self._partial = []
            self._line(last, events)
        if self._pending:
            self._flush_pending(events)
        return events

    # -- internals --------------------------------------------------------------------------------------

    def _line(self, line: str, events: list[dict | str]) -> None:
        if self._pending:
            first = line[:1]
            if first in _INSIDE_OBJECT:
                self._pending.append(line)
                return
            if first == "}":
                self._pending.append(line)
                self._try_decode(events)
                return
            # A line at column 0 that is no part of a pretty-printed object: the object was not JSON.
            self._flush_pending(events)
        if line.startswith("{"):
            self._pending.append(line)
            if line.rstrip() != "{":
                self._try_decode(events)
            return
        line = line.rstrip("\r")
        if line.strip():
            events.append(line)

    def _try_decode(self, events: list[dict | str]) -> None:
        buf = "\n".join(self._pending)
        try:
            obj, end = self._decoder.raw_decode(buf)
        except json.JSONDecodeError as exc:
            if exc.pos >= len(buf.rstrip()) or exc.msg.startswith("Unterminated string"):
                return  # incomplete: wait for more lines
            # Invalid: the first line is text; the others are looked at again on their own.
            pending, self._pending = self._pending, []
            events.append(pending[0].rstrip("\r"))
            for line in pending[1:]:
                self._line(line, events)
            return
        self._pending = []
        self._decoded(obj, buf, end, events)

    def _decoded(self, obj: object, buf: str, end: int, events: list[dict | str]) -> None:
        events.append(obj if isinstance(obj, dict) else buf[:end])
        rest = buf[end:]
        if rest.strip():
            # Something after the object (another object on the same line, or text): look at it again.
            for line in rest.lstrip(" \t").split("\n"):
                self._line(line, events)

    def _flush_pending(self, events: list[dict | str]) -> None:
        """The collected lines did not make an object so far: decode what does, the rest is text."""
        pending, self._pending = self._pending, []
        buf = "\n".join(pending)
        try:
            obj, end = self._decoder.raw_decode(buf)
        except json.JSONDecodeError:
            events.extend(line.rstrip("\r") for line in pending if line.strip())
            return
        self._decoded(obj, buf, end, events)


# First characters of the lines inside a pretty-printed object (and of blank lines).
_INSIDE_OBJECT = frozenset(["", " ", "\t", "\r", "]"])
