"""OpenAPI additions: the shared error component on every operation."""

ERROR_COMPONENT = {
    "type": "object",
    "description": "The error body every endpoint returns.",
    "properties": {
        "code": {"type": "string", "example": "validation_error"},
        "detail": {"type": "string", "example": "Some fields are not valid."},
        "fields": {
            "type": "object",
            "description": "Field path (dotted for nested fields) to its messages.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["code", "detail"],
}

_ERROR_STATUSES = {
    "400": "Invalid input; `fields` says which and why.",
    "401": "Not authenticated, or the token is invalid or expired.",
    "403": "Authenticated but not allowed to do this.",
    "404": "Not found, or outside the caller's scope.",
    "405": "Method not allowed.",
    "406": "Not acceptable.",
    "409": "Conflict with the current state.",
    "412": "Precondition failed (the object changed since it was read).",
    "413": "Request body too large.",
    "415": "Unsupported media type.",
    "429": "Too many requests; retry later.",
}


def add_error_responses(result: dict, generator, request, public) -> dict:
    """drf-spectacular post-processing hook: document the error shape on every operation."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_COMPONENT
    ref = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for code, description in _ERROR_STATUSES.items():
                responses.setdefault(
                    code,
                    {"description": description, "content": {"application/json": {"schema": ref}}},
                )
    return result
