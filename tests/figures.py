"""Figures the reliability tests measure (fuzz cases tried, leak checks), printed in pytest's terminal summary."""
from __future__ import annotations

import threading
from collections import Counter

_lock = threading.Lock()
CASES: Counter[str] = Counter()  # fuzz target -> cases tried in this run
LINES: list[str] = []  # other measured figures, one line each


def count(target: str, cases: int = 1) -> None:
    """Record that `cases` more inputs were tried against `target`."""
    with _lock:
        CASES[target] += cases


def report(line: str) -> None:
    """Record one line of measured figures for the summary."""
    with _lock:
        LINES.append(line)


def export() -> dict:
    """This process's figures, for a pytest-xdist worker to hand to the controller."""
    with _lock:
        return {"cases": dict(CASES), "lines": list(LINES)}


def merge(figures: dict) -> None:
    """Add a worker's exported figures to this (the controller's) process's."""
    with _lock:
        CASES.update(figures.get("cases", {}))
        LINES.extend(figures.get("lines", []))


def summary() -> list[str]:
    """The lines the terminal summary prints: cases per target, a total, then the other figures."""
    with _lock:
        lines = [f"{target}: {cases} cases" for target, cases in sorted(CASES.items())]
        if CASES:
            lines.append(f"total: {sum(CASES.values())} cases")
        return lines + list(LINES)
