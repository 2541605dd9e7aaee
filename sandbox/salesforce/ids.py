"""Salesforce record ids: 15-character case-sensitive ids and their 18-character case-insensitive form.

https://help.salesforce.com/s/articleView?id=000385008&type=1 (18-character ids and their checksum)
The first three characters are the object's key prefix (`00Q` Lead, `003` Contact, ...); the API
always returns the 18-character form, whose last three characters encode which of the first fifteen
are upper-case letters.
"""

from __future__ import annotations

import re

_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_SHAPE = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-5]{3})?$")
# Characters 4-5 are the instance ("pod") and 6 is reserved; the sandbox's org lives on pod "Dn".
_POD = "Dn0"
_UPPER_AS_BITS = str.maketrans({char: "1" if "A" <= char <= "Z" else "0" for char in _BASE62})
_TWO_DIGITS = [a + b for a in _BASE62 for b in _BASE62]


def checksum(id15: str) -> str:
    """The three-character suffix that turns a 15-character id into its 18-character form."""
    bits = id15.translate(_UPPER_AS_BITS)  # "1" where upper-case, "0" elsewhere
    return (
        _CHECKSUM_ALPHABET[int(bits[4::-1], 2)]
        + _CHECKSUM_ALPHABET[int(bits[9:4:-1], 2)]
        + _CHECKSUM_ALPHABET[int(bits[14:9:-1], 2)]
    )


def make_id(prefix: str, number: int) -> str:
    """The 18-character id of the `number`-th record with key prefix `prefix`."""
    high, low = divmod(number, 62**4)
    middle, last = divmod(low, 62**2)
    id15 = prefix + _POD + _base62(high, 5) + _TWO_DIGITS[middle] + _TWO_DIGITS[last]
    return id15 + checksum(id15)


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rest = divmod(number, 62)
        digits.append(_BASE62[rest])
    return "".join(reversed(digits))


def normalize_id(value: str) -> str | None:
    """The 18-character form of a 15- or 18-character id, or None when `value` is not shaped like one."""
    if not isinstance(value, str) or not _ID_SHAPE.match(value):
        return None
    id15 = value[:15]
    return id15 + checksum(id15)


def id_number(value: str) -> int:
    """The sequence number encoded in an id made by `make_id` (used to restore counters)."""
    number = 0
    for char in value[6:15]:
        number = number * 62 + _BASE62.index(char)
    return number
