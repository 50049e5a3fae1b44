"""The calculator tool: arithmetic on a parsed AST, never eval."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from appliance.tools.base import Tool, ToolError

# Short on purpose: the grammar bounds the model's string by it, so a small model
# cannot ramble inside the expression until the token budget runs out.
MAX_EXPRESSION_CHARS = 120
# Digits, operators, brackets and names: keeps a grammar-constrained model on arithmetic.
EXPRESSION_PATTERN = "^[0-9a-z+*/%^(). ,-]+$"
#: Largest exponent and operand magnitude, so "9**9**9" cannot eat the CPU or memory.
MAX_EXPONENT = 10000
MAX_MAGNITUDE = 10**300

_BINARY: dict[type, Callable[..., Any]] = {
           ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
           ast.Pow: operator.pow}
_UNARY: dict[type, Callable[..., Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
              "sqrt": math.sqrt, "abs": abs, "round": round, "floor": math.floor,
              "ceil": math.ceil, "sin": math.sin, "cos": math.cos, "tan": math.tan,
              "log": math.log, "log10": math.log10, "exp": math.exp, "min": min, "max": max}
_CONSTANTS = {"pi": math.pi, "e": math.e}


class Calculator(Tool):
    name = "calculator"
    description = ("Evaluate an arithmetic expression, e.g. '(2+3)*4' or 'sqrt(2)'. "
                   "Supports + - * / // % ** and sqrt, abs, round, floor, ceil, sin, cos, "
                   "tan, log, log10, exp, min, max, pi, e.")
    parameters = {"type": "object",
                  "properties": {"expression": {"type": "string", "minLength": 1,
                                                "maxLength": MAX_EXPRESSION_CHARS,
                                                "pattern": EXPRESSION_PATTERN}},
                  "required": ["expression"], "additionalProperties": False}

    async def call(self, args: dict[str, Any]) -> Any:
        return {"expression": args["expression"], "value": evaluate(args["expression"])}


def evaluate(expression: str) -> int | float:
    """The value of ``expression``; ToolError naming what is not allowed or wrong."""
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"not an arithmetic expression: {exc.msg}") from None
    try:
        value = _eval(tree.body)
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except ValueError as exc:
        # math's own words ("math domain error") say nothing to a listener.
        raise ToolError("the result is not a real number" if "domain" in str(exc)
                        else f"cannot compute: {exc}") from None
    except (OverflowError, TypeError) as exc:
        raise ToolError(f"cannot compute: {exc}") from None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _eval(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) \
            and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ToolError(f"exponent larger than {MAX_EXPONENT}")
        return _bounded(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id in _FUNCTIONS and not node.keywords:
        return _bounded(_FUNCTIONS[node.func.id](*(_eval(a) for a in node.args)))
    what = node.id if isinstance(node, ast.Name) else type(node).__name__
    raise ToolError(f"not allowed in an expression: {what}")


def _bounded(value: Any) -> Any:
    if isinstance(value, int) and abs(value) > MAX_MAGNITUDE:
        raise ToolError("result too large")
    if isinstance(value, complex):
        raise ToolError("complex result")
    return value
