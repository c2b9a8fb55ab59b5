"""Parse meta-reward text into a :class:`MetaReward` without ever executing it.

The text goes through cheap scans first (type, length, alphabet, ``**``, parenthesis depth),
then a Lark LALR parser whose inline transformer builds the tree bottom-up and enforces the
primitive, depth and node limits as each node is created. Lark's LALR parser keeps its own
stack, so no input can exhaust Python's recursion limit. No text is ever passed to ``eval``,
``exec`` or ``compile``.
"""

from __future__ import annotations

import functools
import importlib.resources
import math
import re
import unicodedata
from collections.abc import Sequence

from lark import Lark, Token, Transformer
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from derl_bench.meta_reward.compiler import MetaReward, compile_tree
from derl_bench.meta_reward.errors import InvalidMetaReward
from derl_bench.meta_reward.limits import (
    ALPHABET,
    DEFAULT_PRIMITIVES,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_NODES,
    check_primitive_names,
    describe_primitives,
)
from derl_bench.meta_reward.nodes import BinOp, Neg, Node, Num, Prim

__all__ = ["grammar_text", "parse"]

_PRIMITIVE_RULE = re.compile(r"^PRIMITIVE: .*$", flags=re.MULTILINE)
_POWER = re.compile(r"\*\s*\*")
_ALLOWED = frozenset(ALPHABET)
_ALLOWED_SUMMARY = "digits, g (primitives), . e E (numbers), + - * / ( ) and the space"

# Look-alikes that NFKC normalisation does not map to ASCII.
_CONFUSABLES = {
    "\u2212": "-",  # MINUS SIGN
    "\u2010": "-",  # HYPHEN
    "\u2011": "-",  # NON-BREAKING HYPHEN
    "\u2012": "-",  # FIGURE DASH
    "\u2013": "-",  # EN DASH
    "\u2014": "-",  # EM DASH
    "\u00d7": "*",  # MULTIPLICATION SIGN
    "\u2217": "*",  # ASTERISK OPERATOR
    "\u22c5": "*",  # DOT OPERATOR
    "\u00b7": "*",  # MIDDLE DOT
    "\u00f7": "/",  # DIVISION SIGN
    "\u2215": "/",  # DIVISION SLASH
    "\u0435": "e",  # CYRILLIC SMALL LETTER IE
    "\u0415": "E",  # CYRILLIC CAPITAL LETTER IE
    "\u0261": "g",  # LATIN SMALL LETTER SCRIPT G
}

_TERMINAL_WORDS = {
    "NUMBER": "a number",
    "PRIMITIVE": "a primitive",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "LPAR": "'('",
    "RPAR": "')'",
    "$END": "the end of the expression",
}


@functools.cache
def _grammar_template() -> str:
    return (
        importlib.resources.files("derl_bench.meta_reward")
        .joinpath("grammar.lark")
        .read_text(encoding="utf-8")
    )


def grammar_text(primitive_names: Sequence[str] = DEFAULT_PRIMITIVES) -> str:
    """Return the Lark grammar of the language with the domain's primitives filled in.

    Meant for grammar-constrained decoding by LLM agents: ``lark.Lark(grammar_text())`` accepts
    exactly the syntactically valid meta-rewards of the domain. The semantic checks of
    :func:`parse` (a primitive is used, length, depth, node count, finite values) are not
    expressed in the grammar.

    Args:
        primitive_names: The domain's primitives ``g<n>``; defaults to ``("g1", ..., "g4")``.

    Returns:
        The grammar text (Lark EBNF, start rule ``start``), with the ``PRIMITIVE`` terminal
        as an alternation of the quoted names, e.g. ``PRIMITIVE: "g1" | "g2" | "g3" | "g4"``.

    Raises:
        TypeError: If ``primitive_names`` is a string or holds non-strings.
        ValueError: If ``primitive_names`` is empty, has duplicates or a name not ``g<n>``.
    """
    names = check_primitive_names(primitive_names)
    alternatives = " | ".join(f'"{name}"' for name in names)
    text, n_subs = _PRIMITIVE_RULE.subn(f"PRIMITIVE: {alternatives}", _grammar_template(), count=1)
    assert n_subs == 1, "grammar.lark lost its PRIMITIVE terminal"
    return text


class _TreeBuilder(Transformer):
    """Inline LALR callbacks: build nodes bottom-up and enforce the per-node limits."""

    def __init__(self, primitive_names: tuple[str, ...]) -> None:
        super().__init__(visit_tokens=False)
        self._names = primitive_names
        self._index = {name: i for i, name in enumerate(primitive_names)}

    @staticmethod
    def _checked(node: Node) -> Node:
        if node.depth > MAX_DEPTH:
            raise InvalidMetaReward(
                "too_deep",
                f"the expression nests more than {MAX_DEPTH} levels deep (operators, unary "
                "minus and operands counted); flatten it, e.g. drop repeated unary minus or "
                "split long chains into parenthesised groups such as (g1 + g2) + (g3 + g4)",
            )
        if node.n_nodes > MAX_NODES:
            raise InvalidMetaReward(
                "too_many_nodes",
                f"the expression has more than {MAX_NODES} numbers, primitives and operators; "
                "simplify it, e.g. combine constants such as 0.5 * 0.5 into 0.25",
            )
        return node

    def number(self, children: list[Token]) -> Node:
        token = children[0]
        value = float(token)
        if not math.isfinite(value):
            raise InvalidMetaReward(
                "non_finite",
                f"number '{token}' at column {token.column} overflows float64 to inf "
                "(largest finite value is about 1.8e308); use a smaller constant",
            )
        return Num(value=value)

    def primitive(self, children: list[Token]) -> Node:
        token = children[0]
        name = str(token)
        if name not in self._index:
            raise InvalidMetaReward(
                "unknown_primitive",
                f"unknown primitive '{name}' at column {token.column}: this domain has "
                f"{describe_primitives(self._names)}; use only those",
            )
        return Prim(name=name, index=self._index[name])

    def neg(self, children: list[Node]) -> Node:
        return self._checked(Neg(operand=children[0]))

    def _binary(self, op: str, children: list[Node]) -> Node:
        return self._checked(BinOp(op=op, left=children[0], right=children[1]))

    def add(self, children: list[Node]) -> Node:
        return self._binary("+", children)

    def sub(self, children: list[Node]) -> Node:
        return self._binary("-", children)

    def mul(self, children: list[Node]) -> Node:
        return self._binary("*", children)

    def div(self, children: list[Node]) -> Node:
        return self._binary("/", children)


@functools.lru_cache(maxsize=32)
def _parser(primitive_names: tuple[str, ...]) -> Lark:
    return Lark(
        _grammar_template(),
        parser="lalr",
        lexer="contextual",
        transformer=_TreeBuilder(primitive_names),
        start="start",
    )


def _character_hint(char: str) -> str:
    if char in _CONFUSABLES:
        return f"it looks like ASCII '{_CONFUSABLES[char]}'; type that instead"
    normalised = unicodedata.normalize("NFKC", char)
    if len(normalised) == 1 and normalised in _ALLOWED and normalised != " ":
        return f"it looks like ASCII '{normalised}'; type that instead"
    if char.isspace():
        return "separate tokens with plain spaces only (no tabs or newlines)"
    if char == "^":
        return "there is no power operator; multiply repeatedly, e.g. g1 * g1"
    if char.isalpha() or char == "_":
        return (
            "there are no variables, names or functions besides the primitives g<n>; "
            "numbers use only e/E for exponents, e.g. 1e-3"
        )
    return "it is not part of the meta-reward language"


def _check_characters(text: str) -> None:
    for position, char in enumerate(text):
        if char not in _ALLOWED:
            name = unicodedata.name(char, "")
            described = f"U+{ord(char):04X}" + (f" {name}" if name else "")
            raise InvalidMetaReward(
                "bad_character",
                f"character {char!r} ({described}) at column {position + 1} is not allowed: "
                f"{_character_hint(char)}. Allowed: {_ALLOWED_SUMMARY}",
            )


def _check_paren_depth(text: str) -> None:
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
            if depth > MAX_DEPTH:
                raise InvalidMetaReward(
                    "too_deep",
                    f"parentheses nest more than {MAX_DEPTH} levels deep; remove redundant "
                    "parentheses or flatten the expression",
                )
        elif char == ")":
            depth -= 1


def _syntax_message(error: UnexpectedInput, text: str, names: tuple[str, ...]) -> str:
    operand = f"an operand (a number, a primitive {describe_primitives(names)}, '(' or unary '-')"
    if isinstance(error, UnexpectedCharacters):
        char = text[error.pos_in_stream] if 0 <= error.pos_in_stream < len(text) else ""
        hint = {
            "e": "an exponent must follow the digits of a number, e.g. 1e-3",
            "E": "an exponent must follow the digits of a number, e.g. 2.5E+2",
            "g": "a primitive is g followed by its number, e.g. g1",
            ".": "a number needs a digit next to its '.', e.g. 0.5 or 5.",
        }.get(char, "check the expression around it")
        return f"syntax error at column {error.column}: unexpected {char!r}; {hint}"
    token = error.token if isinstance(error, UnexpectedToken) else None
    if token is None or token.type == "$END":
        if text.count("(") > text.count(")"):
            return "syntax error: the expression ends before every '(' is closed; add ')'"
        return (
            "syntax error: the expression ends too early; an operator must be followed by "
            f"{operand}, e.g. 'g1 + g2'"
        )
    expected = set(error.expected or ())
    where = f"syntax error at column {token.column}: unexpected '{token}'"
    if expected & {"NUMBER", "PRIMITIVE", "LPAR"}:
        return f"{where}; expected {operand} here"
    if token.type == "RPAR":
        return f"{where}: it closes no '('; remove it or add the matching '('"
    return (
        f"{where}; expected an operator (+ - * /), ')' or the end; two operands need an "
        "explicit operator between them, e.g. 'g1 * g2'"
    )


def _parse_tree(text: str, names: tuple[str, ...]) -> Node:
    try:
        return _parser(names).parse(text)
    except InvalidMetaReward:
        raise
    except UnexpectedInput as error:
        raise InvalidMetaReward("syntax", _syntax_message(error, text, names)) from None
    except LarkError as error:  # pragma: no cover - no known input reaches this
        raise InvalidMetaReward("syntax", f"syntax error: {error}") from None
    except RecursionError:  # pragma: no cover - the LALR parser does not recurse
        raise InvalidMetaReward(
            "too_deep", f"the expression nests too deeply (limit {MAX_DEPTH}); flatten it"
        ) from None


def parse(text: object, primitive_names: Sequence[str] = DEFAULT_PRIMITIVES) -> MetaReward:
    """Parse, validate and compile a meta-reward; the only way text becomes a reward.

    The language: primitives ``g1..gK``, numbers (``2``, ``.5``, ``5.``, ``0.25``, ``1e-3``,
    ``2.5E+2``), ``+ - * /`` with the usual precedence and left associativity, unary ``-`` and
    ``+``, parentheses, spaces. See :func:`grammar_text`. Checks, in order: type, emptiness,
    length (``MAX_LENGTH``) and alphabet (``ALPHABET``) on the raw text; ``**`` and parenthesis
    depth by a scan; then syntax, primitive names, overflowing literals, depth and node limits
    while parsing; then the use of a primitive, constant folding and the probe rows (see
    :func:`derl_bench.meta_reward.compiler.probe_values`). Nothing but
    :class:`InvalidMetaReward` escapes for any ``str`` input.

    Args:
        text: The meta-reward, e.g. ``"g1 + 0.5 * (g2 + g3) / 2"``; at most 512 characters.
        primitive_names: The domain's primitives, ``g<n>`` each; column ``i`` of the values
            matrix passed to the result is ``primitive_names[i]``.

    Returns:
        The compiled, validated meta-reward.

    Raises:
        InvalidMetaReward: With ``reason`` one of ``"not_a_string"``, ``"empty"``,
            ``"too_long"``, ``"bad_character"``, ``"too_deep"``, ``"syntax"``,
            ``"unknown_primitive"``, ``"too_many_nodes"``, ``"no_primitive"``,
            ``"non_finite"``, ``"constant"``; the message names the problem and the fix.
        TypeError: If ``primitive_names`` is malformed (a caller bug, not a text problem).
        ValueError: If ``primitive_names`` is empty, has duplicates or a name not ``g<n>``.
    """
    names = check_primitive_names(primitive_names)
    if not isinstance(text, str):
        raise InvalidMetaReward(
            "not_a_string",
            f"a meta-reward must be a str, got {type(text).__name__}; pass text such as "
            "'g1 + 0.5 * g2' (decode bytes first)",
        )
    if not text.strip():
        raise InvalidMetaReward(
            "empty",
            f"the meta-reward is empty; write an expression over {describe_primitives(names)}, "
            "e.g. 'g1 + 0.5 * g2'",
        )
    if len(text) > MAX_LENGTH:
        raise InvalidMetaReward(
            "too_long",
            f"the meta-reward has {len(text)} characters (limit {MAX_LENGTH}); "
            "write a shorter expression",
        )
    _check_characters(text)
    if _POWER.search(text):
        raise InvalidMetaReward(
            "syntax",
            "'**' is not an operator here: use * repeatedly (g1 * g1); ** is not part of the "
            "language",
        )
    _check_paren_depth(text)
    tree = _parse_tree(text, names)
    return compile_tree(tree, source=text, primitive_names=names)
