"""The expression language of DESIGN §4: parsed with lark, then type-checked.

Parsing yields a small tree of `Node`s; `check` gives every node its type and nullability, or
reports problems in sentences the two teams can read.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from streams.core.calendar import MAX_DAY, MAX_OFFSET_YEARS, MIN_DAY, parse_date
from streams.core.definitions.model import MAX_DURATION_DAYS, NUMERIC, TEMPORAL, Duration, Type

GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)+ -> or_
        | and_expr
?and_expr: not_expr (_AND not_expr)+ -> and_
         | not_expr
?not_expr: _NOT not_expr -> not_
         | test
?test: sum (COMPOP sum)+ -> compare
     | sum _NOT _IN items -> not_in
     | sum _IN items -> in_
     | sum _IS _NOT _NONE -> is_not_none
     | sum _IS _NONE -> is_none
     | sum
?sum: sum ADDOP product -> arith
    | product
?product: product MULOP atom -> arith
        | atom
items: "[" [atom ("," atom)*] "]"
?atom: NUMBER UNIT -> duration
     | NUMBER -> number
     | DATE -> date
     | STRING -> text
     | _TRUE -> true
     | _FALSE -> false
     | _NONE -> none
     | _NOW -> now
     | _TODAY -> today
     | NAME -> name
     | "(" or_expr ")"

_OR: "or"
_AND: "and"
_NOT: "not"
_IS: "is"
_NONE: "none"
_NOW: "now"
_TODAY: "today"
_IN: "in"
_TRUE: "true"
_FALSE: "false"
COMPOP: "<=" | ">=" | "==" | "!=" | "<" | ">"
ADDOP: "+" | "-"
MULOP: "*"
STRING: /"[^"\\\n]{0,200}"/
UNIT: /(hour|day|week|month|year)s?\b/
DATE.2: /\d{4}-\d{2}-\d{2}/
NUMBER: /\d+(\.\d+)?/
NAME: /[A-Za-z_][A-Za-z0-9_]*/
%ignore /[ \t\r\n]+/
"""

#: Numbers in rules: at most a thousand trillion (what an amount can be), so every sum and
#: comparison stays exact.
MAX_NUMBER_DIGITS = 15
KEYWORDS = frozenset({"and", "or", "not", "is", "none", "now", "today", "in", "true", "false"})
_PARSER = Lark(GRAMMAR, parser="lalr", propagate_positions=True)


@dataclass(eq=False)
class Node:
    column: int = 0
    type: Type | None = field(default=None, init=False)
    nullable: bool = field(default=False, init=False)


@dataclass(eq=False)
class Name(Node):
    name: str = ""
    is_condition: bool = False
    is_property: bool = False
    #: for a text property: the values it can take
    values: tuple[str, ...] | None = None


@dataclass(eq=False)
class Now(Node):
    pass


@dataclass(eq=False)
class Today(Node):
    pass


@dataclass(eq=False)
class Number(Node):
    value: int | float = 0
    text: str = ""


@dataclass(eq=False)
class DateLit(Node):
    day: int = 0
    text: str = ""


@dataclass(eq=False)
class NoneLit(Node):
    pass


@dataclass(eq=False)
class TextLit(Node):
    value: str = ""


@dataclass(eq=False)
class BoolLit(Node):
    value: bool = False


@dataclass(eq=False)
class DurationLit(Node):
    duration: Duration = field(default_factory=lambda: Duration(0, "days"))


@dataclass(eq=False)
class Arith(Node):
    op: str = "+"
    left: Node = field(default_factory=Node)
    right: Node = field(default_factory=Node)


@dataclass(eq=False)
class Compare(Node):
    operands: list[Node] = field(default_factory=list)
    ops: list[str] = field(default_factory=list)


@dataclass(eq=False)
class InList(Node):
    """`operand in [items]`, or `not in` when negated; false when the operand is none."""

    operand: Node = field(default_factory=Node)
    items: list[Node] = field(default_factory=list)
    negated: bool = False


@dataclass(eq=False)
class IsNone(Node):
    operand: Node = field(default_factory=Node)
    negated: bool = False


@dataclass(eq=False)
class BoolOp(Node):
    op: str = "and"  # and | or
    items: list[Node] = field(default_factory=list)


@dataclass(eq=False)
class Not(Node):
    item: Node = field(default_factory=Node)


class ExpressionError(ValueError):
    """A problem in one expression; `column` is 1-based within the expression text."""

    def __init__(self, message: str, column: int = 0) -> None:
        super().__init__(message)
        self.column = column


def _listed(node: Node) -> list[Node]:
    assert isinstance(node, InList)
    return node.items


def _col(meta_or_token: object) -> int:
    return getattr(meta_or_token, "column", 0) or 0


@v_args(meta=True)
class _Build(Transformer[Token, Node]):
    def or_(self, meta: object, items: list[Node]) -> Node:
        return BoolOp(column=_col(meta), op="or", items=items)

    def and_(self, meta: object, items: list[Node]) -> Node:
        return BoolOp(column=_col(meta), op="and", items=items)

    def not_(self, meta: object, items: list[Node]) -> Node:
        return Not(column=_col(meta), item=items[0])

    def compare(self, meta: object, items: list[object]) -> Node:
        operands = [x for x in items if isinstance(x, Node)]
        ops = [str(x) for x in items if isinstance(x, Token)]
        return Compare(column=_col(meta), operands=operands, ops=ops)

    def in_(self, meta: object, items: list[Node]) -> Node:
        return InList(column=_col(meta), operand=items[0], items=_listed(items[1]))

    def not_in(self, meta: object, items: list[Node]) -> Node:
        return InList(column=_col(meta), operand=items[0], items=_listed(items[1]),
                      negated=True)

    def items(self, meta: object, items: list[Node | None]) -> Node:
        # a bare list, before `in_` or `not_in` gives it its operand
        return InList(column=_col(meta), items=[i for i in items if i is not None])

    def text(self, meta: object, items: list[Token]) -> Node:
        return TextLit(column=_col(meta), value=str(items[0])[1:-1])

    def true(self, meta: object, items: list[object]) -> Node:
        return BoolLit(column=_col(meta), value=True)

    def false(self, meta: object, items: list[object]) -> Node:
        return BoolLit(column=_col(meta), value=False)

    def is_none(self, meta: object, items: list[Node]) -> Node:
        return IsNone(column=_col(meta), operand=items[0], negated=False)

    def is_not_none(self, meta: object, items: list[Node]) -> Node:
        return IsNone(column=_col(meta), operand=items[0], negated=True)

    def arith(self, meta: object, items: list[object]) -> Node:
        left, op, right = items
        assert isinstance(left, Node) and isinstance(right, Node)
        return Arith(column=_col(meta), op=str(op), left=left, right=right)

    def duration(self, meta: object, items: list[Token]) -> Node:
        number, unit = items
        if "." in number:
            raise ExpressionError(f"a duration needs a whole number, not {number}", _col(number))
        plural = str(unit) if str(unit).endswith("s") else f"{unit}s"
        too_long = f"a duration can be at most {MAX_OFFSET_YEARS} years, not {number} {unit}"
        if len(number) > 9:
            raise ExpressionError(too_long, _col(number))
        duration = Duration(int(number), plural)
        if duration.max_days > MAX_DURATION_DAYS:
            raise ExpressionError(too_long, _col(number))
        return DurationLit(column=_col(meta), duration=duration)

    def number(self, meta: object, items: list[Token]) -> Node:
        text = str(items[0])
        if len(text.split(".")[0]) > MAX_NUMBER_DIGITS:
            raise ExpressionError(f"{text[:20]}… is too large a number: at most "
                                  f"{MAX_NUMBER_DIGITS} digits before the point", _col(items[0]))
        value: int | float = float(text[:40]) if "." in text else int(text)
        return Number(column=_col(meta), value=value, text=text)

    def date(self, meta: object, items: list[Token]) -> Node:
        text = str(items[0])
        try:
            day = parse_date(text)
        except ValueError:
            raise ExpressionError(f"{text} is not a real calendar date", _col(items[0])) from None
        if not MIN_DAY <= day <= MAX_DAY:
            raise ExpressionError(f"{text} is outside the dates leadstage works with "
                                  "(1970-01-01 to 2199-12-31)", _col(items[0]))
        return DateLit(column=_col(meta), day=day, text=text)

    def none(self, meta: object, items: list[object]) -> Node:
        return NoneLit(column=_col(meta))

    def now(self, meta: object, items: list[object]) -> Node:
        return Now(column=_col(meta))

    def today(self, meta: object, items: list[object]) -> Node:
        return Today(column=_col(meta))

    def name(self, meta: object, items: list[Token]) -> Node:
        return Name(column=_col(meta), name=str(items[0]))


#: Rules are a line or two; these bound what the parser, checker and compiler take on.
MAX_EXPRESSION_CHARS = 2000
MAX_DEPTH = 40


def _depth(node: Node) -> int:
    deepest, stack = 0, [(node, 1)]
    while stack:
        n, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((c, d + 1) for c in children(n))
    return deepest


def parse(text: str) -> Node:
    """Parse an expression, or raise ExpressionError with a readable message and column."""
    if not text.strip():
        raise ExpressionError("the expression is empty", 1)
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"the expression is longer than {MAX_EXPRESSION_CHARS} "
                              "characters: name parts of it as conditions", 1)
    try:
        built = _Build().transform(_PARSER.parse(text))
        assert isinstance(built, Node)
        if _depth(built) > MAX_DEPTH:
            raise ExpressionError(f"the expression is nested more than {MAX_DEPTH} levels "
                                  "deep: name parts of it as conditions", 1)
        return built
    except RecursionError:
        raise ExpressionError(f"the expression is nested more than {MAX_DEPTH} levels deep: "
                              "name parts of it as conditions", 1) from None
    except ExpressionError:
        raise
    except UnexpectedEOF:
        raise ExpressionError("the expression ends too early", len(text)) from None
    except UnexpectedToken as exc:
        if exc.token.type == "$END":
            raise ExpressionError("the expression ends too early", len(text)) from None
        raise ExpressionError(f"`{exc.token}` is not expected here", exc.column) from None
    except UnexpectedCharacters as exc:
        where = exc.pos_in_stream or 0
        raise ExpressionError(f"`{text[where:where + 1]}` is not part of the language",
                              exc.column) from None
    except UnexpectedInput as exc:  # pragma: no cover - other lark input errors
        raise ExpressionError("the expression cannot be read", getattr(exc, "column", 0)) from None
    except Exception as exc:  # lark wraps transformer errors
        inner = getattr(exc, "orig_exc", None)
        if isinstance(inner, ExpressionError):
            raise inner from None
        raise


def names_in(node: Node) -> list[str]:
    """Every name the expression refers to, in order of first appearance."""
    found: list[str] = []

    def visit(n: Node) -> None:
        if isinstance(n, Name) and n.name not in found:
            found.append(n.name)
        for child in children(n):
            visit(child)

    visit(node)
    return found


def children(n: Node) -> list[Node]:
    if isinstance(n, Arith):
        return [n.left, n.right]
    if isinstance(n, Compare):
        return n.operands
    if isinstance(n, IsNone):
        return [n.operand]
    if isinstance(n, InList):
        return [n.operand, *n.items]
    if isinstance(n, BoolOp):
        return n.items
    if isinstance(n, Not):
        return [n.item]
    return []


def render(n: Node) -> str:
    """The expression as text (for error messages)."""
    if isinstance(n, Name):
        return n.name
    if isinstance(n, Now):
        return "now"
    if isinstance(n, Today):
        return "today"
    if isinstance(n, Number):
        return n.text
    if isinstance(n, DateLit):
        return n.text
    if isinstance(n, NoneLit):
        return "none"
    if isinstance(n, TextLit):
        return f'"{n.value}"'
    if isinstance(n, BoolLit):
        return "true" if n.value else "false"
    if isinstance(n, InList):
        listed = ", ".join(render(i) for i in n.items)
        return f"{render(n.operand)} {'not in' if n.negated else 'in'} [{listed}]"
    if isinstance(n, DurationLit):
        return str(n.duration)
    if isinstance(n, Arith):
        return f"{render(n.left)} {n.op} {render(n.right)}"
    if isinstance(n, Compare):
        parts = [render(n.operands[0])]
        for op, operand in zip(n.ops, n.operands[1:], strict=True):
            parts += [op, render(operand)]
        return " ".join(parts)
    if isinstance(n, IsNone):
        return f"{render(n.operand)} is {'not ' if n.negated else ''}none"
    if isinstance(n, BoolOp):
        return f" {n.op} ".join(_paren(i) for i in n.items)
    if isinstance(n, Not):
        return f"not {_paren(n.item)}"
    return "?"


def _paren(n: Node) -> str:
    return f"({render(n)})" if isinstance(n, BoolOp) else render(n)


@dataclass(frozen=True)
class NameInfo:
    type: Type
    nullable: bool
    is_condition: bool = False
    is_property: bool = False
    values: tuple[str, ...] | None = None


def closest(name: str, known: list[str] | tuple[str, ...]) -> str | None:
    """The known name a typo most likely meant, if any is close."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return close[0] if close else None


def _suggest(name: str, known: list[str]) -> str:
    close = closest(name, known)
    return f" (did you mean `{close}`?)" if close else ""


def check(node: Node, lookup: Callable[[str], NameInfo | None], known: list[str]) -> list[str]:
    """Type-check `node` in place; return problems (empty when it is a valid true/false rule)."""
    problems: list[str] = []
    _check(node, lookup, known, problems)
    if not problems and node.type is not Type.BOOLEAN:
        problems.append(
            f"`{render(node)}` is {node.type.article if node.type else 'unknown'}, "
            "but a rule must be true or false (compare it with something)"
        )
    return problems


def _check(n: Node, lookup: Callable[[str], NameInfo | None], known: list[str],
           problems: list[str]) -> None:
    for child in children(n):
        _check(child, lookup, known, problems)
    if any(c.type is None for c in children(n)):
        return  # a problem below was reported already
    if isinstance(n, Name):
        if n.name in KEYWORDS:
            problems.append(f"`{n.name}` is a word of the language and cannot be a name")
            return
        info = lookup(n.name)
        if info is None:
            problems.append(f"`{n.name}` is not a fact or condition{_suggest(n.name, known)}")
            return
        n.type, n.nullable, n.is_condition = info.type, info.nullable, info.is_condition
        n.is_property, n.values = info.is_property, info.values
    elif isinstance(n, Now):
        n.type = Type.TIMESTAMP
    elif isinstance(n, Today):
        n.type = Type.DATE
    elif isinstance(n, Number):
        n.type = Type.DECIMAL if isinstance(n.value, float) else Type.COUNT
    elif isinstance(n, DateLit):
        n.type = Type.DATE
    elif isinstance(n, NoneLit):
        n.type, n.nullable = Type.NONE, True
    elif isinstance(n, TextLit):
        n.type = Type.TEXT
    elif isinstance(n, BoolLit):
        n.type = Type.BOOLEAN
    elif isinstance(n, InList):
        _check_in(n, problems)
    elif isinstance(n, DurationLit):
        n.type = Type.DURATION
    elif isinstance(n, Arith):
        _check_arith(n, problems)
    elif isinstance(n, Compare):
        _check_compare(n, problems)
    elif isinstance(n, IsNone):
        op = n.operand
        if op.type in (Type.BOOLEAN, Type.DURATION, Type.NONE):
            problems.append(f"`{render(n)}`: only facts and dates can be none")
            return
        if not op.nullable:
            problems.append(
                f"`{render(n)}` can never be {'false' if n.negated else 'true'}: "
                f"`{render(op)}` is {op.type.article if op.type else '?'} and always has a value"
            )
            return
        n.type = Type.BOOLEAN
    elif isinstance(n, BoolOp | Not):
        items = n.items if isinstance(n, BoolOp) else [n.item]
        word = n.op if isinstance(n, BoolOp) else "not"
        bad = [i for i in items if i.type is not Type.BOOLEAN]
        for item in bad:
            problems.append(
                f"`{render(item)}` is {item.type.article if item.type else '?'}, not a true/false "
                f"condition, so it cannot be used with `{word}`"
                + (f" (compare it, e.g. `{render(item)} >= 1`)" if item.type in NUMERIC else "")
            )
        if not bad:
            n.type = Type.BOOLEAN


def _check_arith(n: Arith, problems: list[str]) -> None:
    left, right = n.left, n.right
    text = f"`{render(n)}`"
    if n.op == "*":
        if left.type not in NUMERIC or right.type not in NUMERIC:
            problems.append(f"{text}: only numbers can be multiplied")
        elif not (isinstance(left, Number) or isinstance(right, Number)):
            problems.append(f"{text} multiplies two values that both vary: multiply a fact or "
                            "property only by a number written in the rule, e.g. `2 * meetings`")
        else:
            _numeric_result(n)
        return
    if (left.type in NUMERIC or right.type in NUMERIC) and right.type is not Type.DURATION:
        if left.type in NUMERIC and right.type in NUMERIC:
            _numeric_result(n)
        else:
            problems.append(f"{text} {'adds' if n.op == '+' else 'subtracts'} "
                            f"{right.type.article if right.type else '?'} "
                            f"{'to' if n.op == '+' else 'from'} "
                            f"{left.type.article if left.type else '?'}: numbers combine only "
                            "with numbers, and durations only with dates and timestamps")
        return
    if left.type is Type.DURATION and right.type in TEMPORAL:
        problems.append(f"{text}: write the date or timestamp first, e.g. "
                        f"`{render(right)} {n.op} {render(left)}`")
        return
    if right.type is not Type.DURATION:
        verb, prep = ("adds", "to") if n.op == "+" else ("subtracts", "from")
        right_kind = right.type.article if right.type else "?"
        left_kind = left.type.article if left.type else "?"
        problems.append(
            f"{text} {verb} {right_kind} {prep} {left_kind}: only a duration such as `6 months` "
            "can be added to or subtracted from a date or timestamp"
        )
        return
    if left.type not in TEMPORAL:
        problems.append(
            f"{text} {'adds a duration to' if n.op == '+' else 'subtracts a duration from'} "
            f"{left.type.article if left.type else '?'}: durations only apply to dates and "
            "timestamps"
        )
        return
    duration = right.duration if isinstance(right, DurationLit) else None
    if _offset_days(n) > MAX_DURATION_DAYS:
        problems.append(f"{text} moves a date by more than {MAX_OFFSET_YEARS} years in total")
        return
    hours = duration is not None and duration.unit == "hours"
    n.type = Type.TIMESTAMP if left.type is Type.TIMESTAMP or hours else Type.DATE
    n.nullable = left.nullable


def _numeric_result(n: Arith) -> None:
    both_counts = n.left.type is Type.COUNT and n.right.type is Type.COUNT
    n.type = Type.COUNT if both_counts else Type.DECIMAL
    n.nullable = n.left.nullable or n.right.nullable


def _values_problem(named: Node, literal: Node) -> str | None:
    """A text literal compared with a text property must be one of the property's values."""
    if not (isinstance(named, Name) and named.values is not None and isinstance(literal,
                                                                                TextLit)):
        return None
    if literal.value in named.values:
        return None
    close = closest(literal.value, named.values)
    hint = f' (did you mean "{close}"?)' if close else ""
    return (f'`{named.name}` is never "{literal.value}": its values are '
            f"{', '.join(named.values)}{hint}")


def _check_in(n: InList, problems: list[str]) -> None:
    operand = n.operand
    if not n.items:
        problems.append(f"`{render(n)}` lists nothing")
        return
    if operand.type not in (Type.TEXT, Type.COUNT, Type.DECIMAL, Type.DATE):
        problems.append(f"`{render(n)}`: only texts, numbers and dates can be looked up in a "
                        "list")
        return
    ok = True
    for item in n.items:
        literal = isinstance(item, TextLit | Number | DateLit)
        if not literal:
            problems.append(f"`{render(n)}`: a list holds values written in the rule, not "
                            f"`{render(item)}`")
            ok = False
        elif item.type is None or not _comparable(operand.type, item.type, "=="):
            problems.append(f"`{render(n)}` compares {operand.type.article} with "
                            f"{item.type.article if item.type else '?'}")
            ok = False
        else:
            problem = _values_problem(operand, item)
            if problem:
                problems.append(problem)
                ok = False
    if ok:
        n.type = Type.BOOLEAN


def _offset_days(n: Node) -> float:
    """How far a chain of `+`/`-` durations can move its date, in days at most."""
    if isinstance(n, Arith) and isinstance(n.right, DurationLit):
        return _offset_days(n.left) + n.right.duration.max_days
    return 0.0


def _comparable(a: Type, b: Type, op: str) -> bool:
    if a is Type.BOOLEAN and b is Type.BOOLEAN:
        return op in ("==", "!=")
    if a in NUMERIC and b in NUMERIC:
        return True
    if a in TEMPORAL and b in TEMPORAL:
        return True
    return a is Type.TEXT and b is Type.TEXT and op in ("==", "!=")


def _check_compare(n: Compare, problems: list[str]) -> None:
    ok = True
    for op, a, b in zip(n.ops, n.operands, n.operands[1:], strict=False):
        if Type.NONE in (a.type, b.type):
            other = b if a.type is Type.NONE else a
            problems.append(
                f"`{render(a)} {op} {render(b)}` is never true, because any comparison with none "
                f"is false: write `{render(other)} is {'not ' if op == '!=' else ''}none`"
            )
            ok = False
        elif a.type is Type.DURATION or b.type is Type.DURATION:
            problems.append(
                f"`{render(a)} {op} {render(b)}` compares a duration: add it to a date instead, "
                "e.g. `decision_date <= today + 6 months`"
            )
            ok = False
        elif (a.type is Type.BOOLEAN or b.type is Type.BOOLEAN) and not (
                isinstance(a, BoolLit) or isinstance(b, BoolLit)):
            problems.append(
                f"`{render(a)} {op} {render(b)}` compares true/false conditions: combine them "
                "with `and`, `or` and `not` instead"
            )
            ok = False
        elif a.type is None or b.type is None:  # a problem below was reported already
            ok = False
        elif (problem := _values_problem(a, b) or _values_problem(b, a)) is not None:
            problems.append(problem)
            ok = False
        elif not _comparable(a.type, b.type, op):
            problems.append(
                f"`{render(a)} {op} {render(b)}` compares {a.type.article} with "
                f"{b.type.article}"
                + (", and texts can only be tested with == and !=" if Type.TEXT in (a.type, b.type)
                   and a.type is b.type else "")
            )
            ok = False
    if ok:
        n.type = Type.BOOLEAN
