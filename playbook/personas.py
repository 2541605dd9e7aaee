"""Personas: messy job titles ("Sr. HW Eng.", "Buyer II", "VP Supply Chain") → role and seniority.

Patterns are compiled once per playbook (RE2: time linear in the title, whatever the pattern) and
matched against the normalized title: NFKC (full-width letters and half-width katakana become the
ordinary ones), case-folded, every run of punctuation, symbols and spaces one space. Letters of
every script are kept, so "Einkäufer", "ingénieur" and "하드웨어 엔지니어" reach the patterns as they are
written. The first role whose patterns match wins; a title no role understands is `matched=False` so
the data-quality flow can report it.

RE2's `\b` knows only ASCII word characters: it never matches next to "é" or "엔". Chinese and
Japanese titles have no spaces between words at all ("硬件工程师"), so patterns for them (and for
letters beyond ASCII) are written without `\b`; `playbook.checks` refuses a `\b` next to such a
letter.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

from leadloop.playbook.model import Personas
from leadloop.playbook.patterns import compile_patterns

_SPACES = re.compile(r"\s+")


class TitleMatch(NamedTuple):
    role: str
    seniority: str
    matched: bool


def normalize_title(title: str) -> str:
    """`Principal Engineer – Power` → `principal engineer power`, `Einkäufer/Beschaffung` →
    `einkäufer beschaffung`, `ＨＷエンジニア` → `hwエンジニア`: letters, marks and digits of every
    script kept, everything else (punctuation, symbols, spaces, controls) one space."""
    folded = unicodedata.normalize("NFKC", title).casefold()
    kept = "".join(ch if unicodedata.category(ch)[0] in "LMN" else " " for ch in folded)
    return _SPACES.sub(" ", kept).strip()


class TitleClassifier:
    """A playbook's persona taxonomy, compiled; remembers every title it has classified."""

    def __init__(self, personas: Personas) -> None:
        self.roles = [(r.role, compile_patterns(r.patterns)) for r in personas.roles]
        self.levels = [(s.level, compile_patterns(s.patterns)) for s in personas.seniority]
        self.role_weight = {r.role: r.weight for r in personas.roles}
        self.role_weight.setdefault(personas.unknown_role, personas.unknown_role_weight)
        self.role_why = {r.role: r.why for r in personas.roles}
        self.level_weight = {s.level: s.weight for s in personas.seniority}
        self.unknown_role = personas.unknown_role
        self.default_seniority = personas.default_seniority
        self._seen: dict[str | None, TitleMatch] = {}

    def __call__(self, title: str | None) -> TitleMatch:
        found = self._seen.get(title)
        if found is None:
            found = self._seen[title] = self._classify(title)
        return found

    def _classify(self, title: str | None) -> TitleMatch:
        if not title:
            return TitleMatch(self.unknown_role, self.default_seniority, False)
        text = normalize_title(title)
        role = next((name for name, pattern in self.roles if pattern.search(text)), None)
        level = next((name for name, pattern in self.levels if pattern.search(text)), self.default_seniority)
        return TitleMatch(role or self.unknown_role, level, role is not None)
