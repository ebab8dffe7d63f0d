"""What msgspec cannot check about a definition: its size, its depth and rules across fields.

Every problem is a ValidationFailed (422) whose ``fields`` name the offending part by its
JSON path (``$.conditions[1].max``), the same way msgspec names a wrong type.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from loyalmail.errors import ValidationFailed, _
from segments.schemas import (
    AgeBetween,
    BoughtBetween,
    CreatedDate,
    CustomFieldIs,
    FirstPurchase,
    Group,
    LastPurchase,
    Node,
    PurchaseCount,
    TotalSpent,
)

#: Nesting deeper than this is no longer a target group anyone can read.
MAX_DEPTH = 6
#: Conditions and groups in one definition, all levels together.
MAX_NODES = 200
#: Listed values (countries, cities, codes …) in one definition, all conditions together: each
#: is a bound parameter, and the engines take some 32,000 parameters per statement at most.
MAX_VALUES_TOTAL = 5_000
#: Largest money amount a condition may name (in major units).
MAX_MONEY = Decimal("1000000000")


def _fail(path: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, fields={path: message})


def decode_definition(raw: object) -> Group:
    """A definition from already-parsed JSON (a page form, a stored row), fully checked."""
    try:
        group = msgspec.convert(raw, Group)
    except msgspec.ValidationError as exc:
        raise ValidationFailed(
            _("The target group definition is not valid: {problem}").format(problem=str(exc)),
            fields={_path_of(str(exc)): str(exc)},
        ) from exc
    check_definition(group)
    return group


def _path_of(message: str) -> str:
    # msgspec ends its messages with "- at `$.path`" when the problem is inside the object.
    marker = "- at `"
    if marker in message:
        return message.rsplit(marker, 1)[1].rstrip("`")
    return "$"


def check_definition(root: Group, currency_exponent: int = 2) -> None:
    """Raise ValidationFailed for the first problem found, walking the tree in order."""
    count = 0
    values = 0

    def walk(node: Node, path: str, depth: int) -> None:
        nonlocal count, values
        count += 1
        if count > MAX_NODES:
            raise _fail(
                path,
                _("A target group may have at most {limit} conditions and groups.").format(
                    limit=MAX_NODES
                ),
            )
        if isinstance(node, Group):
            if depth > MAX_DEPTH:
                raise _fail(
                    path,
                    _("Groups may be nested at most {limit} levels deep.").format(limit=MAX_DEPTH),
                )
            if not node.conditions:
                raise _fail(f"{path}.conditions", _("A group needs at least one condition."))
            for index, child in enumerate(node.conditions):
                walk(child, f"{path}.conditions[{index}]", depth + 1)
            return
        values += len(getattr(node, "values", ()))
        if values > MAX_VALUES_TOTAL:
            raise _fail(
                f"{path}.values",
                _("A target group may list at most {limit} values in all.").format(
                    limit=f"{MAX_VALUES_TOTAL:,}"
                ),
            )
        _check_condition(node, path, currency_exponent)

    walk(root, "$", 1)


def _check_condition(node: Node, path: str, exponent: int) -> None:
    if isinstance(node, AgeBetween | PurchaseCount):
        _check_range(node.min, node.max, path)
    elif isinstance(node, TotalSpent):
        for name, amount in (("min", node.min), ("max", node.max)):
            if amount is None:
                continue
            if not amount.is_finite() or abs(amount) > MAX_MONEY:
                raise _fail(f"{path}.{name}", _("The amount is out of range."))
            if amount != round(amount, exponent):
                raise _fail(f"{path}.{name}", _("The amount has too many decimal places."))
        _check_range(node.min, node.max, path)
    elif isinstance(node, CreatedDate | FirstPurchase | LastPurchase):
        if node.op in ("before", "after"):
            if node.date is None:
                raise _fail(f"{path}.date", _("This comparison needs a date."))
            if node.days is not None:
                raise _fail(f"{path}.days", _("A comparison with a date takes no days."))
        elif node.op in ("within_last_days", "more_than_days_ago"):
            if node.days is None:
                raise _fail(f"{path}.days", _("This comparison needs a number of days."))
            if node.date is not None:
                raise _fail(f"{path}.date", _("A comparison in days takes no date."))
        elif node.date is not None or node.days is not None:  # "never"
            raise _fail(path, _("'never' takes neither a date nor days."))
    elif isinstance(node, BoughtBetween):
        if node.start > node.end:
            raise _fail(f"{path}.end", _("The end date lies before the start date."))
    elif isinstance(node, CustomFieldIs):
        if any(ch in node.key for ch in '"\\\n\r\0'):
            raise _fail(f"{path}.key", _("Custom field names cannot contain quotes or \\."))
        if node.op in ("equals", "not_equals") and node.value == "":
            raise _fail(
                f"{path}.value",
                _("Compare with a value, or use 'is set' / 'is not set' for empty fields."),
            )


def _check_range(low: object, high: object, path: str) -> None:
    if low is None and high is None:
        raise _fail(path, _("Give a minimum, a maximum or both."))
    if low is not None and high is not None and low > high:  # type: ignore[operator]
        raise _fail(f"{path}.max", _("The maximum is smaller than the minimum."))
