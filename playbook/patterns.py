"""Playbook patterns: compiled for RE2, which matches in time linear in the text whatever the
pattern, and checked so that a pattern RE2 cannot run is refused with what to write instead."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

import re2


class Matcher(Protocol):
    """A compiled playbook pattern: all scoring asks of it is whether it occurs in a text."""

    def search(self, text: str) -> object | None: ...


def _pattern_options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # a refused pattern is a playbook problem, not a line on stderr
    return options


_PATTERN_OPTIONS = _pattern_options()


def compile_patterns(patterns: Iterable[str]) -> Matcher:
    """Any of `patterns`, ignoring case, as one RE2 regex; raises re2.error when RE2 refuses it.

    Playbook patterns meet text that visitors choose (page URLs) and that records carry, so they are
    matched by RE2, which takes time linear in the text whatever the pattern: a pattern like `(a+)+$`
    cannot make scoring backtrack for minutes as it would with Python's `re`."""
    return re2.compile("|".join(f"(?:{p})" for p in patterns), _PATTERN_OPTIONS)


# Group syntax Python's `re` accepts and RE2 refuses (RE2's error names the opening): what it is
# and how to do without it.
_UNSUPPORTED_GROUPS = {
    "(?P": ("named backreference (?P=...)", "rewrite it without backreferences"),
    "(?=": ("lookahead (?=...)", "rewrite it without lookarounds"),
    "(?!": ("negative lookahead (?!...)", "rewrite it without lookarounds"),
    "(?<=": ("lookbehind (?<=...)", "rewrite it without lookarounds"),
    "(?<!": ("negative lookbehind (?<!...)", "rewrite it without lookarounds"),
    "(?>": ("atomic group (?>...)", "use a plain group (?:...): the matcher never backtracks"),
    "(?(": ("conditional group (?(...)", "rewrite it as an alternation"),
    "(?#": ("comment (?#...)", "use a YAML # comment instead"),
}


def _unsupported_pattern(pattern: str, error: re2.error) -> str:
    """The problem message for a pattern RE2 refuses (Python's `re` has accepted it)."""
    detail = error.args[0] if error.args else ""
    detail = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
    if detail.startswith("pattern too large"):
        return f"/{pattern}/ is too large for the linear-time matcher; split it into smaller patterns"
    kind, _, token = detail.partition(": ")
    if kind == "invalid escape sequence" and token[1:2].isdigit():
        feature, advice = f"backreference {token}", "rewrite it without backreferences"
    elif kind == "invalid escape sequence" and token == "\\Z":
        feature, advice = "\\Z", "write $ instead (without the m flag it matches only at the very end)"
    elif kind == "invalid escape sequence":
        feature, advice = f"escape {token}", "write the character itself instead"
    elif kind == "invalid perl operator":
        feature, advice = _UNSUPPORTED_GROUPS.get(
            token, (f"inline flag {token})", "use only the flags i, m and s")
        )
    elif kind == "bad repetition operator":
        feature, advice = f"possessive quantifier {token}", "drop the extra +: the matcher never backtracks"
    elif kind == "invalid repetition size":
        feature, advice = f"repeat count {token}", "keep counts (multiplied when nested) at most 1000"
    else:
        feature, advice = detail, "rewrite it without that"
    return f"/{pattern}/ uses a feature the linear-time matcher does not support ({feature}); {advice}"


def check_regex(pattern: str) -> str:
    """Python's `re` checks the syntax (its messages say where); RE2, the matcher, must accept it too."""
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"not a valid regular expression ({error})") from None
    try:
        compile_patterns([pattern])
    except re2.error as error:
        raise ValueError(_unsupported_pattern(pattern, error)) from None
    return pattern
