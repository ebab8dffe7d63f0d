"""What the OpenAPI schema says of the types Litestar describes less exactly than we decode."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from litestar.openapi.spec import OpenAPIType, Schema
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

#: What msgspec decodes into a Decimal from a string; services refuse what is not finite.
DECIMAL_TEXT = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"


class DecimalSchema(OpenAPISchemaPlugin):
    """A decimal (an amount of money) is answered as a string, ``"12.50"``, and accepted as a
    string or a JSON number: msgspec decodes both exactly. Litestar documented a bare string,
    so a client following the schema could not know a number is fine, and a checker saw every
    accepted number as invalid input let through (found by the fuzzer)."""

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return value is Decimal

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        return Schema(
            one_of=[
                Schema(type=OpenAPIType.STRING, pattern=DECIMAL_TEXT),
                Schema(type=OpenAPIType.NUMBER),
            ],
            description='A decimal number: a string such as "12.50" or a JSON number',
        )
