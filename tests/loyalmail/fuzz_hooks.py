"""Schemathesis hooks for the API fuzz (loaded by its process through ``SCHEMATHESIS_HOOKS``).

Schemathesis 4.32 builds some negative bodies by breaking one branch of a ``oneOf`` of a
recursive union (a segment's conditions) and can end up with a body that another branch
accepts: valid input, which the API rightly accepts and the check reports as "invalid data
accepted". Such a report is dropped only after the body has been validated against the whole
schema of the operation; every other failure stands.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jsonschema_rs
import schemathesis

_SCHEMA: dict[str, Any] = {}


@schemathesis.hook
def before_load_schema(context: Any, raw_schema: dict[str, Any]) -> None:
    _SCHEMA.clear()
    _SCHEMA.update(raw_schema)


def _body_is_valid(case: Any) -> bool:
    operation = _SCHEMA["paths"][case.operation.path][case.method.lower()]
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" not in content or not isinstance(case.body, dict | list):
        return False
    schema = {**content["application/json"]["schema"], "components": _SCHEMA["components"]}
    return bool(jsonschema_rs.validator_for(schema).is_valid(case.body))


def _log(variable: str, record: list[Any]) -> None:
    """One JSON line to the file the environment variable names (nothing when it is unset)."""
    path = os.environ.get(variable)
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str) + "\n")


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep a failure unless it is an accepted "negative" body that the schema accepts.

    A kept failure is also logged at once (``LOYALMAIL_FUZZ_FAILURES``): a long run shows its
    failures while it goes, not only in the report at its end."""
    if failure.code == "ST201" and "Invalid component: in body" in failure.message:
        if _body_is_valid(case):
            return False
    found = [case.operation.label, response.status_code, failure.title, case.as_curl_command()]
    _log("LOYALMAIL_FUZZ_FAILURES", found)
    return True


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """Log each answer's operation, status and path parameters (``LOYALMAIL_FUZZ_ANSWERS``):
    the test tells from it which operations reached the code behind their ids, not only the
    404 of an unknown id or the 400 of a malformed one."""
    answer = [
        case.operation.label,
        response.status_code,
        case.path_parameters or {},
        round(response.elapsed, 3),
    ]
    _log("LOYALMAIL_FUZZ_ANSWERS", answer)
