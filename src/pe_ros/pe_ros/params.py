"""Declaring node parameters: a default, a description, a valid range and a check.

Every parameter of the pursuit-evasion nodes is declared here with a
``ParameterDescriptor`` (so ``ros2 param describe`` explains it); startup
values (defaults, params files, ``-p`` overrides) that are out of range, of the
wrong type or fail a check make the node refuse to start with a
:class:`ParameterError` that names the node, the parameter and the reason.
Parameters are read-only after startup unless declared ``read_only=False``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.parameter import Parameter

_ARRAY_TYPES = {str: Parameter.Type.STRING_ARRAY, int: Parameter.Type.INTEGER_ARRAY,
                float: Parameter.Type.DOUBLE_ARRAY, bool: Parameter.Type.BOOL_ARRAY}


class ParameterError(ValueError):
    """A parameter value that the node refuses; the message names it."""


def declare(
    node: Node,
    name: str,
    default: Any,
    description: str,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: Sequence[Any] | None = None,
    check: Callable[[Any], str | None] | None = None,
    read_only: bool = True,
    array_of: type | None = None,
) -> Any:
    """Declare ``name`` and return its startup value, validated.

    ``low``/``high`` become the descriptor's inclusive range (integer or floating
    point, after the default's type); ``choices`` and ``check`` (returns an error
    text or None) are enforced here and listed in ``additional_constraints``.
    An empty-list default needs ``array_of`` (str, int, float or bool): ROS cannot
    type an empty list, so such a parameter is declared typed but unset, and an
    unset (or ``[]`` in YAML) value reads as the empty list."""
    constraints = []
    descriptor = ParameterDescriptor(description=description, read_only=read_only)
    if low is not None or high is not None:
        if isinstance(default, bool) or not isinstance(default, int | float):
            raise TypeError(f"range given for non-numeric parameter {name}")
        if isinstance(default, int):
            descriptor.integer_range = [IntegerRange(
                from_value=int(low if low is not None else -(2**62)),
                to_value=int(high if high is not None else 2**62), step=0)]
        else:
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=float(low if low is not None else -1e300),
                to_value=float(high if high is not None else 1e300), step=0.0)]
        constraints.append(f"in [{low}, {high}]")
    if choices is not None:
        constraints.append("one of " + ", ".join(map(str, choices)))
    descriptor.additional_constraints = "; ".join(constraints)
    where = f"{node.get_fully_qualified_name()}: parameter '{name}'"
    initial = default
    if isinstance(default, list) and not default:
        if array_of is None:
            raise TypeError(f"empty-list default of {name} needs array_of")
        initial = _ARRAY_TYPES[array_of]
    try:
        declared = node.declare_parameter(name, initial, descriptor)
        value = default if declared.type_ == Parameter.Type.NOT_SET else declared.value
    except ParameterException as exc:
        raise ParameterError(f"{where}: {exc}") from None
    if isinstance(value, list | tuple):
        value = list(value)
    if choices is not None and value not in choices:
        raise ParameterError(f"{where} = {value!r}: must be one of {list(choices)}")
    if check is not None:
        problem = check(value)
        if problem:
            raise ParameterError(f"{where} = {value!r}: {problem}")
    return value


def robot_index(node, scenario, robot: str) -> int:
    """Index in ``scenario`` of the robot named by the ``robot`` parameter (empty: the
    last part of the node's namespace); an unknown name is a :class:`ParameterError`."""
    robot = robot or node.get_namespace().rstrip("/").rsplit("/", 1)[-1]
    try:
        return scenario.robot_index(robot)
    except KeyError as exc:
        raise ParameterError(f"{node.get_fully_qualified_name()}: parameter 'robot' = {robot!r}: "
                             f"{exc.args[0]}") from None


def positive(value: float) -> str | None:
    return None if value > 0 else "must be > 0"


def non_negative(value: float) -> str | None:
    return None if value >= 0 else "must be >= 0"
