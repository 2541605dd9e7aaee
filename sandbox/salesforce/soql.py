"""A parser for the subset of SOQL the sandbox serves, into a small syntax tree.

https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select.htm
Supported: `SELECT` field paths (`Id`, `Account.Name`, `Owner.Email`) or `COUNT()`, `FROM`, `WHERE`
with `= != <> < > <= >= IN NOT IN LIKE`, `AND OR NOT`, parentheses, `NULL TRUE FALSE`, quoted strings
with escapes, date and dateTime literals, date literals (`TODAY`, `LAST_N_DAYS:n`, ...), `ORDER BY`
(fields, `ASC/DESC`, `NULLS FIRST/LAST`), `LIMIT`, `OFFSET`. Anything else (subqueries, aggregates,
`GROUP BY`, `WITH`, `FOR`, `TYPEOF`, `INCLUDES`...) is refused with Salesforce's `MALFORMED_QUERY`,
never answered wrongly. Field and object names are resolved later, against a schema (`query.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

LiteralKind = Literal["string", "number", "boolean", "null", "date", "datetime", "date_literal"]


class SoqlError(Exception):
    """A query Salesforce would refuse: `code` is MALFORMED_QUERY, INVALID_FIELD or INVALID_TYPE."""

    def __init__(self, code: str, detail: str, text: str, pos: int | None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.text = text
        self.pos = pos

    @property
    def message(self) -> str:
        """Salesforce's message: the query line, a caret under the culprit, its row and column."""
        if self.pos is None:
            return self.detail
        before = self.text[: self.pos]
        row = before.count("\n") + 1
        line_start = before.rfind("\n") + 1
        column = self.pos - line_start + 1
        line_end = self.text.find("\n", self.pos)
        line = self.text[line_start : None if line_end < 0 else line_end]
        return f"\n{line}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n{self.detail}"


@dataclass(slots=True)
class Token:
    kind: str  # ident, string, number, date, datetime, op, punct, eof
    text: str
    pos: int
    value: Any = None


@dataclass(slots=True)
class FieldPath:
    parts: list[str]
    pos: int

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@dataclass(slots=True)
class Value:
    kind: LiteralKind
    value: Any
    pos: int
    text: str


@dataclass(slots=True)
class Compare:
    path: FieldPath
    op: str  # = != < > <= >= LIKE
    value: Value


@dataclass(slots=True)
class InList:
    path: FieldPath
    values: list[Value]
    negated: bool


@dataclass(slots=True)
class BoolOp:
    op: Literal["AND", "OR"]
    items: list[Condition]


@dataclass(slots=True)
class Not:
    item: Condition


Condition = Compare | InList | BoolOp | Not


@dataclass(slots=True)
class OrderItem:
    path: FieldPath
    descending: bool = False
    nulls_first: bool | None = None  # None: Salesforce's default (first when ascending, last when descending)


@dataclass(slots=True)
class Query:
    text: str
    object_name: str
    object_pos: int
    fields: list[FieldPath] = field(default_factory=list)
    count_only: bool = False
    where: Condition | None = None
    order_by: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})(?![\dT])
  | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),:])
""",
    re.VERBOSE,
)

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
# \% and \_ keep their backslash: they only mean something inside a LIKE pattern.
_LIKE_ESCAPES = {"%": "\\%", "_": "\\_"}

RESERVED = {
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "LIKE",
    "NULL",
    "TRUE",
    "FALSE",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "NULLS",
    "FIRST",
    "LAST",
    "LIMIT",
    "OFFSET",
    "GROUP",
    "HAVING",
    "WITH",
    "FOR",
    "TYPEOF",
    "USING",
    "INCLUDES",
    "EXCLUDES",
    "ROLLUP",
    "CUBE",
    "UPDATE",
    "VIEW",
    "REFERENCE",
    "END",
    "WHEN",
    "THEN",
    "ELSE",
}

DATE_LITERALS = {
    "TODAY",
    "YESTERDAY",
    "TOMORROW",
    "LAST_WEEK",
    "THIS_WEEK",
    "NEXT_WEEK",
    "LAST_MONTH",
    "THIS_MONTH",
    "NEXT_MONTH",
    "LAST_90_DAYS",
    "NEXT_90_DAYS",
    "THIS_YEAR",
    "LAST_YEAR",
    "NEXT_YEAR",
}
DATE_LITERALS_N = {
    "LAST_N_DAYS",
    "NEXT_N_DAYS",
    "N_DAYS_AGO",
    "LAST_N_WEEKS",
    "NEXT_N_WEEKS",
    "LAST_N_MONTHS",
    "NEXT_N_MONTHS",
    "LAST_N_YEARS",
    "NEXT_N_YEARS",
}


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == "'":
            tokens.append(_string_token(text, pos))
            pos = tokens[-1].value[1]
            tokens[-1].value = tokens[-1].value[0]
            continue
        match = _TOKEN.match(text, pos)
        if match is None:
            raise SoqlError(
                "MALFORMED_QUERY", f"line 1:{pos} no viable alternative at character '{char}'", text, pos
            )
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(Token("eof", "<EOF>", len(text)))
    return tokens


def _string_token(text: str, start: int) -> Token:
    out: list[str] = []
    pos = start + 1
    while pos < len(text):
        char = text[pos]
        if char == "\\":
            if pos + 1 >= len(text):
                break
            escaped = text[pos + 1]
            if escaped in _ESCAPES:
                out.append(_ESCAPES[escaped])
            elif escaped in _LIKE_ESCAPES:
                out.append(_LIKE_ESCAPES[escaped])
            else:
                raise SoqlError(
                    "MALFORMED_QUERY",
                    f"Invalid string literal '{text[start : pos + 2]}'. "
                    "Illegal character sequence '\\" + escaped + "' in string literal.",
                    text,
                    start,
                )
            pos += 2
            continue
        if char == "'":
            return Token("string", text[start : pos + 1], start, ("".join(out), pos + 1))
        out.append(char)
        pos += 1
    raise SoqlError(
        "MALFORMED_QUERY", f"line 1:{start} mismatched character '<EOF>' expecting '''", text, start
    )


def parse(text: str) -> Query:
    """The syntax tree of a SOQL query, or a SoqlError saying where it went wrong."""
    if not text or not text.strip():
        raise SoqlError("MALFORMED_QUERY", "SOQL statements cannot be empty or null", text, None)
    return _Parser(text).query()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    # -- token helpers ---------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def keyword(self, word: str) -> bool:
        return self.tok.kind == "ident" and self.tok.text.upper() == word

    def accept(self, word: str) -> bool:
        if self.keyword(word):
            self.i += 1
            return True
        return False

    def expect_keyword(self, word: str) -> Token:
        if not self.keyword(word):
            self.unexpected()
        token = self.tok
        self.i += 1
        return token

    def accept_punct(self, char: str) -> bool:
        if self.tok.kind == "punct" and self.tok.text == char:
            self.i += 1
            return True
        return False

    def expect_punct(self, char: str) -> None:
        if not self.accept_punct(char):
            self.unexpected()

    def unexpected(self, token: Token | None = None) -> None:
        token = token or self.tok
        raise SoqlError(
            "MALFORMED_QUERY",
            f"unexpected token: '{token.text}'" if token.kind == "eof" else f"unexpected token: {token.text}",
            self.text,
            token.pos,
        )

    def unsupported(self, token: Token, what: str) -> None:
        raise SoqlError(
            "MALFORMED_QUERY",
            f"unexpected token: {token.text} ({what} is not supported by this server)",
            self.text,
            token.pos,
        )

    # -- grammar ---------------------------------------------------------------------------------
    def query(self) -> Query:
        self.expect_keyword("SELECT")
        fields: list[FieldPath] = []
        count_only = False
        if self.keyword("COUNT") and self.tokens[self.i + 1].text == "(":
            count_token = self.tok
            self.i += 2
            if not self.accept_punct(")"):
                self.unsupported(count_token, "COUNT(field)")
            count_only = True
        else:
            fields.append(self.select_item())
            while self.accept_punct(","):
                fields.append(self.select_item())
        self.expect_keyword("FROM")
        # `Group` is an object (public groups, queues) as well as a keyword: after FROM it names the object.
        group_object = self.tok.text.upper() == "GROUP" and self.tokens[self.i + 1].text.upper() != "BY"
        if self.tok.kind != "ident" or (self.tok.text.upper() in RESERVED and not group_object) or (
            "." in self.tok.text
        ):
            self.unexpected()
        object_token = self.tok
        self.i += 1
        query = Query(self.text, object_token.text, object_token.pos, fields, count_only)
        if self.tok.kind == "ident" and self.tok.text.upper() not in RESERVED:
            self.unsupported(self.tok, "an object alias")
        for word, what in (("USING", "USING SCOPE"),):
            if self.keyword(word):
                self.unsupported(self.tok, what)
        if self.accept("WHERE"):
            query.where = self.condition()
        for word in ("WITH", "GROUP", "HAVING"):
            if self.keyword(word):
                self.unsupported(self.tok, word)
        if self.accept("ORDER"):
            self.expect_keyword("BY")
            query.order_by.append(self.order_item())
            while self.accept_punct(","):
                query.order_by.append(self.order_item())
        if self.accept("LIMIT"):
            query.limit = self.integer()
        if self.accept("OFFSET"):
            query.offset = self.integer()
        if self.keyword("FOR") or self.keyword("UPDATE"):
            self.unsupported(self.tok, "FOR VIEW/REFERENCE/UPDATE")
        if self.tok.kind != "eof":
            self.unexpected()
        return query

    def select_item(self) -> FieldPath:
        token = self.tok
        if token.kind == "punct" and token.text == "(":
            self.unsupported(token, "a relationship subquery")
        if token.kind != "ident" or token.text.upper() in RESERVED:
            if token.kind == "ident" and token.text.upper() == "TYPEOF":
                self.unsupported(token, "TYPEOF")
            self.unexpected()
        self.i += 1
        if self.tok.kind == "punct" and self.tok.text == "(":
            self.unsupported(token, f"the function {token.text}()")
        if self.tok.kind == "ident" and self.tok.text.upper() not in RESERVED:
            self.unsupported(self.tok, "a field alias")
        return FieldPath(token.text.split("."), token.pos)

    def field_path(self) -> FieldPath:
        token = self.tok
        if token.kind != "ident" or token.text.upper() in RESERVED:
            self.unexpected()
        self.i += 1
        if self.tok.kind == "punct" and self.tok.text == "(":
            self.unsupported(token, f"the function {token.text}()")
        return FieldPath(token.text.split("."), token.pos)

    def integer(self) -> int:
        token = self.tok
        if token.kind != "number" or not token.text.isdigit():
            self.unexpected()
        self.i += 1
        return int(token.text)

    def order_item(self) -> OrderItem:
        item = OrderItem(self.field_path())
        if self.accept("DESC"):
            item.descending = True
        else:
            self.accept("ASC")
        if self.accept("NULLS"):
            if self.accept("FIRST"):
                item.nulls_first = True
            else:
                self.expect_keyword("LAST")
                item.nulls_first = False
        return item

    def condition(self) -> Condition:
        first = self.unary()
        op: str | None = None
        items = [first]
        while self.keyword("AND") or self.keyword("OR"):
            word = self.tok.text.upper()
            if op is not None and word != op:
                # SOQL refuses to guess the precedence of mixed AND/OR: parentheses are required.
                self.unexpected()
            op = word
            self.i += 1
            items.append(self.unary())
        if op is None:
            return first
        return BoolOp(op, items)  # type: ignore[arg-type]

    def unary(self) -> Condition:
        if self.accept("NOT"):
            return Not(self.unary())
        if self.accept_punct("("):
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Condition:
        path = self.field_path()
        if self.accept("IN"):
            return InList(path, self.value_list(), negated=False)
        if self.keyword("NOT"):
            self.i += 1
            self.expect_keyword("IN")
            return InList(path, self.value_list(), negated=True)
        if self.keyword("LIKE"):
            self.i += 1
            return Compare(path, "LIKE", self.value())
        if self.keyword("INCLUDES") or self.keyword("EXCLUDES"):
            self.unsupported(self.tok, self.tok.text.upper())
        if self.tok.kind != "op":
            self.unexpected()
        op = self.tok.text
        self.i += 1
        return Compare(path, "!=" if op == "<>" else op, self.value())

    def value_list(self) -> list[Value]:
        if self.keyword("SELECT") or not self.accept_punct("("):
            self.unexpected()
        if self.keyword("SELECT"):
            self.unsupported(self.tok, "a semi-join subquery")
        values = [self.value()]
        while self.accept_punct(","):
            values.append(self.value())
        self.expect_punct(")")
        return values

    def value(self) -> Value:
        token = self.tok
        self.i += 1
        if token.kind == "string":
            return Value("string", token.value, token.pos, token.text)
        if token.kind == "number":
            number: float | int = float(token.text) if "." in token.text else int(token.text)
            return Value("number", number, token.pos, token.text)
        if token.kind in ("date", "datetime"):
            return Value(token.kind, token.text, token.pos, token.text)  # type: ignore[arg-type]
        if token.kind == "ident":
            word = token.text.upper()
            if word == "NULL":
                return Value("null", None, token.pos, token.text)
            if word in ("TRUE", "FALSE"):
                return Value("boolean", word == "TRUE", token.pos, token.text)
            if word in DATE_LITERALS:
                return Value("date_literal", (word, None), token.pos, token.text)
            if word in DATE_LITERALS_N:
                self.expect_punct(":")
                count = self.integer()
                return Value("date_literal", (word, count), token.pos, f"{token.text}:{count}")
            if token.text.startswith(":"):
                self.unsupported(token, "a bind variable")
        self.i -= 1
        self.unexpected()
        raise AssertionError("unreachable")
