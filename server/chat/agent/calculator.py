"""Arithmetic for the agent's calculator tool: a small expression language over Python's parser, never `eval`.

Numbers, + - * / // % **, parentheses, a few math functions and constants. Bounded: the expression's length, the
size of exponents and of results, so a model cannot make the server compute forever.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from server.errors import InvalidInput

MAX_EXPRESSION_CHARS = 500
MAX_EXPONENT = 1000
MAX_MAGNITUDE = 1e300

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt,
    "log": math.log,
    "log10": math.log10,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "abs": abs,
    "round": round,
    "floor": math.floor,
    "ceil": math.ceil,
}
CONSTANTS = {"pi": math.pi, "e": math.e}


def calculate(expression: str) -> str:
    """The value of `expression` as text; raises InvalidInput saying what is wrong with it."""
    text = expression.strip().replace("×", "*").replace("÷", "/").replace("^", "**")
    if not text or len(text) > MAX_EXPRESSION_CHARS:
        raise InvalidInput(f"give an arithmetic expression of 1 to {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
        value = _value(tree.body)
    except (SyntaxError, RecursionError):
        raise InvalidInput(f"{expression!r} is not an arithmetic expression (or is nested too deeply)") from None
    except (ArithmeticError, ValueError, TypeError) as error:
        raise InvalidInput(f"{expression!r} cannot be computed: {error}") from None
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _value(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name) and node.id in CONSTANTS:
        return CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ValueError(f"exponents above {MAX_EXPONENT} are not computed")
        return _bounded(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS:
        if node.keywords:
            raise ValueError("functions take positional arguments only")
        return _bounded(FUNCTIONS[node.func.id](*(_value(arg) for arg in node.args)))
    raise ValueError(f"{ast.unparse(node)!r} is not allowed (numbers, + - * / // % **, {', '.join(FUNCTIONS)})")


def _bounded(value: Any) -> Any:
    if isinstance(value, complex) or abs(value) > MAX_MAGNITUDE:
        raise ValueError("the result is too large (or not a real number)")
    return value
