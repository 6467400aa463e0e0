"""What a person reads of the API's answers: sizes and a vacuum run, in words."""

from __future__ import annotations

from typing import Any


def human_size(n: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} bytes"


def describe_vacuum(result: dict[str, Any]) -> str:
    """One line a person reads for what a vacuum run did."""
    vacuum, sweep = result.get("vacuum") or {}, result.get("sweep") or {}
    return (
        f"{vacuum.get('filesDeleted', 0)} file(s) deleted, {human_size(vacuum.get('bytesFreed', 0))} freed, "
        f"{vacuum.get('markersCleared', 0)} marker(s) cleared, {vacuum.get('candidatesSkipped', 0)} skipped; "
        f"sweep: {sweep.get('repliesResent', 0)} reply job(s) and "
        f"{sweep.get('threadCleanupsResent', 0)} cleanup(s) re-sent"
    )
