"""A logging filter that lets a repeated line through once per window, with a count of the repeats.

librdkafka logs a failed connection once per client, broker thread and attempt: a tracker that
starts while Kafka is down wrote 194 identical ERROR lines in its first seconds, and a daemon
waiting through an hour-long outage would fill its log with them. Lines are the same when their
level, logger and message are; for librdkafka's lines (`"%s [%s] %s"`: facility, client name,
text) the client names, the milliseconds a connection attempt took and librdkafka's own count of
"identical error(s) suppressed" are left out, so the same failure of several clients or attempts
counts as one.

The first line of a kind passes; the same line within `window_s` after that is dropped and
counted; the first one after the window passes with "(N more like it in the W s after the one at
HH:MM:SS)" appended and starts a new window. The count of a window no line follows is never told,
so a line that ends an outage may stand for more. At most `kinds` kinds are remembered (the one
seen longest ago forgotten first, with its count), so memory stays bounded whatever is logged.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict

LIBRDKAFKA_FORMAT = "%s [%s] %s"
_VARYING = (
    (re.compile(r"\(after \d+ms in state"), "(after ms in state"),
    (re.compile(r", \d+ identical error\(s\) suppressed"), ""),
    (re.compile(r"rdkafka#(\w+)-\d+"), r"rdkafka#\1"),
)


class RepeatFilter(logging.Filter):
    def __init__(self, window_s: float = 60.0, kinds: int = 256) -> None:
        super().__init__()
        self.window_s = window_s
        self.kinds = kinds
        # kind -> (monotonic start of its window, wall time of the line that passed, lines dropped since)
        self._seen: OrderedDict[tuple[object, ...], tuple[float, float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = _kind(record)
        now = time.monotonic()
        with self._lock:
            found = self._seen.get(key)
            if found is not None:
                self._seen.move_to_end(key)
                if now - found[0] < self.window_s:
                    self._seen[key] = (found[0], found[1], found[2] + 1)
                    return False
            self._seen[key] = (now, record.created, 0)
            while len(self._seen) > self.kinds:
                self._seen.popitem(last=False)
        if found is not None and found[2]:
            at = time.strftime("%H:%M:%S", time.localtime(found[1]))
            record.msg = (
                f"{record.getMessage()} ({found[2]} more like it in the {self.window_s:.0f} s after the one at {at})"
            )
            record.args = ()
        return True


def _args(record: logging.LogRecord) -> tuple[object, ...]:
    args = record.args
    if args is None:
        return ()
    return args if isinstance(args, tuple) else (args,)


def _kind(record: logging.LogRecord) -> tuple[object, ...]:
    args = _args(record)
    if record.msg == LIBRDKAFKA_FORMAT and len(args) == 3:
        text = str(args[2])
        for pattern, replacement in _VARYING:
            text = pattern.sub(replacement, text)
        return (record.levelno, record.name, args[0], text)  # facility and text, not the client
    return (record.levelno, record.name, str(record.msg), *map(str, args))
