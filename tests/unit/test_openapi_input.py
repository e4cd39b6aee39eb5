"""Every string the API takes (body fields, query filters, form fields, headers, path segments) is constrained in
the OpenAPI: an enum, a format, or a pattern (control characters and lone surrogates refused: api/fields.py). And
every error answer is documented as the error body."""

from api.main import create_app
from core.config import Settings

SCHEMA = create_app(Settings(database_url="postgresql://nobody@127.0.0.1:1/none", log_json=False)).openapi()


def resolve(node: dict) -> dict:
    while "$ref" in node:
        node = SCHEMA["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def loose_strings(node: dict, where: str, seen: set) -> list[str]:
    """The places under `node` where any string would do."""
    if "$ref" in node:
        name = node["$ref"]
        if name in seen:
            return []
        seen = seen | {name}
        return loose_strings(resolve(node), where, seen)
    found = []
    for key in ("anyOf", "oneOf", "allOf"):
        for option in node.get(key, []):
            found += loose_strings(option, where, seen)
    if node.get("type") == "string" and not ({"enum", "const", "format", "pattern"} & set(node)):
        found.append(where)
    for name, prop in node.get("properties", {}).items():
        found += loose_strings(prop, f"{where}.{name}", seen)
    if isinstance(node.get("items"), dict):
        found += loose_strings(node["items"], f"{where}[]", seen)
    return found


def test_no_request_string_is_unconstrained():
    loose = []
    for path, operations in SCHEMA["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                loose += loose_strings(parameter["schema"], f"{label} {parameter['in']} {parameter['name']}", set())
            for content in operation.get("requestBody", {}).get("content", {}).values():
                loose += loose_strings(content["schema"], f"{label} body", set())
    assert loose == []


def test_every_error_answer_is_the_error_body():
    for path, operations in SCHEMA["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"4XX", "5XX"} <= set(responses), (method, path)
            for status, response in responses.items():
                if status[0] in "45":
                    assert response["content"] == {
                        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
                    }, (method, path, status)
    assert "HTTPValidationError" not in SCHEMA["components"]["schemas"]
