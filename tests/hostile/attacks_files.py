"""Round-three attacks of mechanism files: see attacks.py for what an attack is."""

from __future__ import annotations

from attacks import Attack

ATTACKS: list[Attack] = []
