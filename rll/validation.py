"""Validated parameter models: pydantic checks the fields, this module words the refusal.

A model here (:class:`ValidatedModel`) declares each field once — its type, range and choices —
and pydantic does the checking.  The refusal a user sees is one line in this project's style,
built from the same declaration: the field's name, what it must be, the value given, and for a
choice every valid value::

    unknown fidelity 'exact'; valid choices: paper, released
    epochs must be an integer >= 1 (got 0)
    train_with_test must be True or False (got 'yes')

Checks that involve several fields are field validators that raise ``ValueError`` with their own
message, which is passed through unchanged.  Only the first error is reported (fields are
checked in declaration order, so a model declares what others derive from first), as the
hand-written checks before it did.  The command line (:mod:`rll.cli`) generates its flags from
the same declarations (:func:`field_type`, :func:`field_choices`, each field's description).
"""
from __future__ import annotations

import types
import typing
from typing import Any, Literal

import annotated_types as at
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.types import Strict

#: Field types of the validated models: an int (not a bool, not 2.0), and an int or a float
#: (not a bool, not a string) stored as a float.
Integer = typing.Annotated[int, Strict()]
Number = typing.Annotated[float, Strict()]


class ValidatedModel(BaseModel):
    """A frozen pydantic model whose invalid input raises ``ValueError`` with one readable line
    (:func:`readable_error`) instead of pydantic's report."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=False)

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise ValueError(readable_error(err, type(self))) from None


def field_type(annotation: Any) -> tuple[Any, bool]:
    """``(annotation without None, whether None is allowed)``, with ``Annotated`` unwrapped."""
    optional = False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        annotation = args[0] if len(args) == 1 else annotation
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation, optional


def field_choices(model: type[BaseModel], name: str) -> tuple | None:
    """The valid values of a ``Literal`` field, or None for a field that is not a choice."""
    annotation, _ = field_type(model.model_fields[name].annotation)
    return typing.get_args(annotation) if typing.get_origin(annotation) is Literal else None


def requirement(model: type[BaseModel], name: str) -> str:
    """What field ``name`` must be, in words, from its type and bounds: ``an integer >= 1``,
    ``a finite number in [0, 1)``, ``a positive finite number``, ``True or False``, ``… or None``."""
    info = model.model_fields[name]
    annotation, optional = field_type(info.annotation)
    lower = next((("(" if isinstance(m, at.Gt) else "[", getattr(m, "gt", getattr(m, "ge", None)))
                  for m in info.metadata if isinstance(m, (at.Gt, at.Ge))), None)
    upper = next(((")" if isinstance(m, at.Lt) else "]", getattr(m, "lt", getattr(m, "le", None)))
                  for m in info.metadata if isinstance(m, (at.Lt, at.Le))), None)
    integer = annotation is int
    noun = "an integer" if integer else "a finite number"
    shown = str if integer else (lambda v: f"{v:g}")
    if annotation is bool:
        text = "True or False"
    elif typing.get_origin(annotation) is tuple:
        text = "a sequence of integers" if typing.get_args(annotation)[0] is not str else "a list of names"
    elif lower and upper:
        text = f"{noun} in {lower[0]}{shown(lower[1])}, {shown(upper[1])}{upper[0]}"
    elif lower == ("(", 0):
        text = "a positive integer" if integer else "a positive finite number"
    elif lower == ("[", 0):
        text = "a non-negative integer" if integer else "a finite number >= 0"
    elif lower:
        text = f"{noun} {'>' if lower[0] == '(' else '>='} {shown(lower[1])}"
    else:
        text = noun
    return text + (" or None" if optional else "")


def readable_error(err: ValidationError, model: type[BaseModel]) -> str:
    """The first error of ``err`` as one line naming the field, the rule and the value."""
    first = err.errors(include_url=False)[0]
    loc = first["loc"]
    name = str(loc[0]) if loc else ""
    value = first.get("input")
    kind = first["type"]
    if kind == "value_error":
        return str(first["ctx"]["error"])
    if kind == "extra_forbidden":
        unknown = [repr(e["loc"][0]) for e in err.errors(include_url=False) if e["type"] == "extra_forbidden"]
        return f"unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(model.model_fields)}"
    if kind == "missing":
        return f"{name} is required"
    if name in model.model_fields:
        choices = field_choices(model, name)
        if choices is not None and len(loc) == 1:
            return f"unknown {name} {value!r}; valid choices: {', '.join(map(str, choices))}"
        return f"{name} must be {requirement(model, name)} (got {value!r})"
    return f"{'.'.join(map(str, loc))}: {first['msg']}"   # pragma: no cover — a nested field


__all__ = ["ValidatedModel", "Integer", "Number", "field_type", "field_choices", "requirement", "readable_error"]
