"""The `units` server's tools: unit conversion, arithmetic and the unit table. No state at all."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from examples.servers.common import ServerSpec

# Factors to each dimension's base unit (metre, kilogram, second, byte, litre). Temperatures are affine and
# handled apart.
LINEAR_UNITS: dict[str, dict[str, float]] = {
    "length": {
        "mm": 0.001,
        "cm": 0.01,
        "m": 1.0,
        "km": 1000.0,
        "in": 0.0254,
        "ft": 0.3048,
        "yd": 0.9144,
        "mi": 1609.344,
        "nmi": 1852.0,
    },
    "mass": {
        "mg": 1e-6,
        "g": 0.001,
        "kg": 1.0,
        "t": 1000.0,
        "oz": 0.028349523125,
        "lb": 0.45359237,
        "st": 6.35029318,
    },
    "time": {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "wk": 604800.0},
    "data": {
        "bit": 0.125,
        "B": 1.0,
        "KB": 1e3,
        "MB": 1e6,
        "GB": 1e9,
        "TB": 1e12,
        "KiB": 1024.0,
        "MiB": 1024.0**2,
        "GiB": 1024.0**3,
        "TiB": 1024.0**4,
    },
    "volume": {
        "ml": 0.001,
        "l": 1.0,
        "m3": 1000.0,
        "floz": 0.0295735295625,
        "pt": 0.473176473,
        "qt": 0.946352946,
        "gal": 3.785411784,
    },
}
TEMPERATURE_UNITS = ("C", "F", "K")
MAX_EXPRESSION_LENGTH = 500

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt,
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "log": math.log,
    "log10": math.log10,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}


def dimension_of(unit: str) -> str:
    if unit in TEMPERATURE_UNITS:
        return "temperature"
    for dimension, units in LINEAR_UNITS.items():
        if unit in units:
            return dimension
    raise ToolError(f"unknown unit {unit!r}; list_units names the known ones")


def to_kelvin(value: float, unit: str) -> float:
    if unit == "C":
        return value + 273.15
    if unit == "F":
        return (value - 32.0) * 5.0 / 9.0 + 273.15
    return value


def from_kelvin(value: float, unit: str) -> float:
    if unit == "C":
        return value - 273.15
    if unit == "F":
        return (value - 273.15) * 9.0 / 5.0 + 32.0
    return value


def convert_value(value: float, from_unit: str, to_unit: str) -> float:
    source, target = dimension_of(from_unit), dimension_of(to_unit)
    if source != target:
        raise ToolError(f"cannot convert {source} ({from_unit}) to {target} ({to_unit})")
    if source == "temperature":
        return from_kelvin(to_kelvin(value, from_unit), to_unit)
    units = LINEAR_UNITS[source]
    return value * units[from_unit] / units[to_unit]


def evaluate(expression: str) -> float:
    """Arithmetic over floats only: a parsed tree of numbers, operators and a few math functions, no eval."""
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ToolError(f"expression longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"not an arithmetic expression: {exc.msg}") from None

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        # bool is an int subclass; `True + 1` is not arithmetic anyone means.
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, int | float)
            and type(node.value) is not bool
        ):
            # Floats, never Python's unbounded ints: 9**9**9 overflows at once instead of running for hours.
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](walk(node.operand))
        if isinstance(node, ast.Name) and node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS
            and not node.keywords
        ):
            return float(_FUNCTIONS[node.func.id](*(walk(arg) for arg in node.args)))
        raise ToolError(f"unsupported syntax at column {getattr(node, 'col_offset', 0) + 1}")

    try:
        result = walk(tree)
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except OverflowError:
        raise ToolError("the result is too large") from None
    except (ValueError, TypeError) as exc:
        raise ToolError(f"cannot evaluate: {exc}") from None
    if not math.isfinite(result):
        raise ToolError("the result is not a finite number")
    return result


Value = Annotated[float, Field(description="The quantity to convert.")]
FromUnit = Annotated[str, Field(description="Unit of the value, e.g. km, lb, F, GiB.")]
ToUnit = Annotated[str, Field(description="Unit to convert to; same dimension as from_unit.")]


def build(drift: bool = False) -> MCPServer:
    server = MCPServer("units", version="0.1.0", description="Unit conversion and arithmetic.")

    if drift:
        # The drifted schema: a new required argument, as a careless release might add.
        @server.tool(name="convert")
        def convert_rounded(
            value: Value,
            from_unit: FromUnit,
            to_unit: ToUnit,
            precision: Annotated[int, Field(ge=0, le=15, description="Decimal places to round to.")],
        ) -> float:
            """Convert a value between units of length, mass, time, data, volume or temperature."""
            return round(convert_value(value, from_unit, to_unit), precision)

    else:

        @server.tool()
        def convert(value: Value, from_unit: FromUnit, to_unit: ToUnit) -> float:
            """Convert a value between units of length, mass, time, data, volume or temperature."""
            return convert_value(value, from_unit, to_unit)

    @server.tool(
        description=(
            "Evaluate an arithmetic expression: + - * / // % **, parentheses, pi, e, and sqrt, abs, round,"
            " min, max, log, log10, exp, sin, cos, tan."
        )
    )
    def calculate(
        expression: Annotated[
            str, Field(description="Arithmetic such as `2 * (3 + 4) ** 2` or `sqrt(2) * pi`.")
        ],
    ) -> float:
        return evaluate(expression)

    @server.tool()
    def list_units(
        dimension: Annotated[
            str | None, Field(description="Only this dimension (length, mass, ...); all when omitted.")
        ] = None,
    ) -> dict[str, list[str]]:
        """List the units convert knows, by dimension."""
        table = {name: list(units) for name, units in LINEAR_UNITS.items()}
        table["temperature"] = list(TEMPERATURE_UNITS)
        if dimension is None:
            return table
        if dimension not in table:
            raise ToolError(f"unknown dimension {dimension!r}; one of {', '.join(table)}")
        return {dimension: table[dimension]}

    return server


SPEC = ServerSpec(name="units", stateless=True, build=build)
