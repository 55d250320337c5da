"""Noise levels on the command line: percentages, never a fraction taken for a percentage.

The Python API takes fractions (``induce_noise(level=0.25)``), the commands take percentages
(``--level 25``), so ``--level 0.25`` is an easy slip that would noise a quarter of a percent.
The rule, shared by ``trainstats noise --level`` and ``trainstats demo --levels``:

* ``25``, ``25.5``, ``0``, ``100``, ``1``: percentages;
* a value in (0, 1] written with a decimal point (``0.25``, ``.5``, ``1.0``) looks like a fraction
  and is refused with a message saying what to write instead;
* a trailing ``%`` makes any value an explicit percentage: ``0.5%`` is half a percent.
"""
from __future__ import annotations

__all__ = ["parse_percentages"]


def parse_percentages(text: str, *, flag: str) -> list[float]:
    """Comma-separated percentages -> fractions in [0, 1] (``"25,0.5%"`` -> ``[0.25, 0.005]``).

    Raises:
        ValueError: not a number, outside [0, 100], or a bare value that looks like a fraction.
    """
    items = [item.strip() for item in str(text).split(",")]
    if not any(items):
        raise ValueError(f"{flag} expects percentages such as 25 or 0,25,50; received {text!r}")
    out = []
    for item in items:
        explicit = item.endswith("%")
        number = item[:-1].strip() if explicit else item
        try:
            value = float(number)
        except ValueError:
            raise ValueError(f"{flag} expects percentages such as 25 or 0,25,50; received {text!r}") from None
        if not 0.0 <= value <= 100.0:
            raise ValueError(f"{flag} is a percent in [0, 100], received {item}")
        if not explicit and "." in number and 0.0 < value <= 1.0:
            raise ValueError(
                f"{flag} {item} looks like a fraction, but levels are percentages: write "
                f"{value * 100:g} for {value * 100:g} %, or {item}% for {item} percent")
        out.append(value / 100.0)
    return out
