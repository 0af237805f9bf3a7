"""Progress bars on stderr (tqdm) for every long loop: calibration, the executors over the
inputs, sweeps over design points, vector layers.

Bars go to **stderr only**, never stdout. Whether they are shown:

- an explicit ``enabled=True`` / ``False`` argument wins;
- otherwise the current setting of :func:`progress_scope` (the CLI opens one per command:
  on with ``--progress``, off with ``--no-progress``; by default on only when stderr is a
  terminal and ``--json`` was not given, see :func:`auto_enabled`);
- outside any scope (the Python API) bars are off unless :func:`set_enabled` turned them on.

:func:`progress` wraps an iterable (one tick per item, e.g. design points or layers);
:func:`bar` is a counter for streamed loops that advance by a batch of images at a time
(``bar.update(n)``) and name the executor running (``bar.stage(name)``). Both return the
same kind of object when disabled, so callers never branch. :func:`message` prints a status
line on stderr without tearing an active bar.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("hwsim_progress", default=False)


def set_enabled(enabled: bool) -> None:
    """Turn bars on or off for the rest of this context (Python API default: off)."""
    _ENABLED.set(bool(enabled))


def is_enabled(enabled: bool | None = None) -> bool:
    """``enabled`` if given, else the current setting."""
    return _ENABLED.get() if enabled is None else bool(enabled)


@contextlib.contextmanager
def progress_scope(enabled: bool) -> Iterator[None]:
    """Bars on (``True``) or off inside the ``with`` block, restored afterwards."""
    token = _ENABLED.set(bool(enabled))
    try:
        yield
    finally:
        _ENABLED.reset(token)


def auto_enabled(flag: bool | None, json_output: bool = False) -> bool:
    """The CLI rule: ``flag`` (``--progress`` True / ``--no-progress`` False) if given;
    otherwise on only when stderr is a terminal and the command does not print JSON."""
    if flag is not None:
        return bool(flag)
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty()) and not json_output


class Bar:
    """A tqdm bar on stderr, or a silent stand-in with the same methods when disabled."""

    def __init__(self, total: int | None, desc: str, unit: str, enabled: bool,
                 leave: bool = True) -> None:
        self._bar: Any = None
        self._stage: str | None = None
        self._since = 0.0
        self.stage_seconds: dict[str, float] = {}
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr,
                             dynamic_ncols=True, leave=leave, mininterval=0.2)

    @property
    def enabled(self) -> bool:
        """True when a real bar is drawn."""
        return self._bar is not None

    def update(self, n: int = 1) -> None:
        """Advance by ``n`` (images, items)."""
        if self._bar is not None:
            self._bar.update(n)

    def _lap(self) -> None:
        now = time.perf_counter()
        if self._stage is not None:
            self.stage_seconds[self._stage] = (self.stage_seconds.get(self._stage, 0.0)
                                               + now - self._since)
        self._since = now

    def stage(self, name: str) -> None:
        """Show what runs now (e.g. the executor) after the counter; the time until the
        next stage is added to ``stage_seconds[name]``, shown when the bar closes."""
        if self._bar is not None:
            self._lap()
            self._stage = name
            self._bar.set_postfix_str(name, refresh=False)

    def close(self) -> None:
        """Finish the bar (idempotent), with the seconds spent in each stage."""
        if self._bar is not None:
            self._lap()
            self._stage = None
            if self.stage_seconds:
                self._bar.set_postfix_str(", ".join(
                    f"{k} {v:.1f}s" for k, v in self.stage_seconds.items()), refresh=False)
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bar(total: int | None, desc: str, *, unit: str = "img",
        enabled: bool | None = None) -> Bar:
    """A :class:`Bar` counting ``unit`` up to ``total`` (use as a context manager)."""
    return Bar(total, desc, unit, is_enabled(enabled))


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "",
             unit: str = "it", enabled: bool | None = None) -> Iterator[T]:
    """Iterate ``iterable`` with a bar ticking once per item (``total`` defaults to
    ``len(iterable)`` when it has one). A plain iteration when disabled."""
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    with bar(total, desc, unit=unit, enabled=enabled) as b:
        for item in iterable:
            yield item
            b.update(1)


def message(text: str) -> None:
    """Print ``text`` as one line on stderr, above any active bar."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stderr)
