"""Congestion controllers by name: ``create(name, mss=..., window=...)``.

The interface and its contract are in :mod:`common.congestion.base`; one
module per algorithm, and one line per algorithm in ``ALGORITHMS``."""

from __future__ import annotations

from .base import CongestionControl
from .cubic import Cubic
from .fixed import FixedWindow
from .newreno import NewReno

ALGORITHMS: dict[str, type[CongestionControl]] = {
    "none": FixedWindow,
    "newreno": NewReno,
    "cubic": Cubic,
}


def names() -> list[str]:
    """The registered algorithms' names, sorted."""
    return sorted(ALGORITHMS)


def create(name: str, *, mss: int, window: int) -> CongestionControl:
    """A new controller of algorithm ``name`` for a sender of this MSS, whose
    window (the user's WINDOW) bounds what it may ever allow."""
    try:
        cls = ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"unknown congestion control {name!r}; known: "
                         f"{', '.join(names())}") from None
    return cls(mss=mss, window=window)


__all__ = ["ALGORITHMS", "CongestionControl", "Cubic", "FixedWindow", "NewReno", "create", "names"]
