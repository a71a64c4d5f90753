"""The OpenAPI document describes every operation: what it answers, its errors, its fields.

Walks ``create_app(...).openapi()`` and lists every offender at once: an operation without a
summary or a description; without a success response whose schema is not empty and has an
example; without 401 and 403 when it needs an API key, 404 when its path names a resource, 422
and 503 as application/problem+json (the Problem schema, never FastAPI's
``HTTPValidationError``); a request or response field without a description.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from licensing.api import responses, schemas
from licensing.api.app import create_app
from licensing.db import Database

METHODS = {"get", "post", "put", "patch", "delete"}
PROBLEM = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"
FILES = ("application/pdf", "application/xml", "text/csv", "text/plain")  # documents and exports answered as files, not JSON

# The operations whose body is XML by the contract (API.md), not JSON.
XML_BODIES = {"POST /api/v1/bank-statements"}


@pytest.fixture(scope="module")
def document(tmp_path_factory) -> dict[str, Any]:
    # The document does not depend on the database: a file that is never opened will do.
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('openapi') / 'unused.db'}")
    try:
        yield create_app(database).openapi()
    finally:
        database.dispose()


def _resolve(document: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _operations(document: dict):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", path, operation


def _undescribed(document: dict, schema: dict, where: str, seen: set[str]) -> list[str]:
    """Every property, here and in the schemas it refers to, that lacks a description."""
    offenders = []
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        seen.add(name)
        return _undescribed(document, document["components"]["schemas"][name], name, seen)
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            offenders += _undescribed(document, option, where, seen)
    if "items" in schema:
        offenders += _undescribed(document, schema["items"], where, seen)
    if isinstance(schema.get("additionalProperties"), dict):
        offenders += _undescribed(document, schema["additionalProperties"], where, seen)
    for name, prop in schema.get("properties", {}).items():
        if not prop.get("description"):
            offenders.append(f"{where}.{name}")
        offenders += _undescribed(document, prop, where, seen)
    return offenders


def _success(operation: dict) -> tuple[str, dict] | None:
    for status in ("200", "201", "204"):
        if status in operation["responses"]:
            return status, operation["responses"][status]
    return None


def _has_example(document: dict, media: dict) -> bool:
    if media.get("example") is not None or media.get("examples"):
        return True
    schema = _resolve(document, media.get("schema", {}))
    if schema.get("examples") or schema.get("example") is not None:
        return True
    # An optional body (``Model | None``): the model's example.
    return any(_has_example(document, {"schema": option}) for option in schema.get("anyOf", []) if option.get("type") != "null")


def _problem_offences(label: str, operation: dict, status: str) -> list[str]:
    answer = operation["responses"].get(status)
    if answer is None:
        return [f"{label}: no {status}"]
    content = answer.get("content", {})
    if PROBLEM not in content:
        return [f"{label}: {status} is not {PROBLEM} (has {sorted(content)})"]
    offences = []
    if content[PROBLEM].get("schema", {}).get("$ref") != PROBLEM_REF:
        offences.append(f"{label}: {status} is not the Problem schema")
    if not content[PROBLEM].get("examples"):
        offences.append(f"{label}: {status} names no code (examples)")
    if set(content) - {PROBLEM}:
        offences.append(f"{label}: {status} also documents {sorted(set(content) - {PROBLEM})}")
    return offences


def test_every_operation_is_documented(document):
    offenders: list[str] = []
    operations = list(_operations(document))
    assert len(operations) > 50
    for label, path, operation in operations:
        if not (operation.get("summary") or "").strip():
            offenders.append(f"{label}: no summary")
        if not (operation.get("description") or "").strip():
            offenders.append(f"{label}: no description")

        success = _success(operation)
        if success is None:
            offenders.append(f"{label}: no success response")
        else:
            status, answer = success
            content = answer.get("content", {})
            if not answer.get("description"):
                offenders.append(f"{label}: {status} has no description")
            if any(media_type in content for media_type in FILES):
                pass  # a file: its media type is its documentation
            elif "application/json" not in content:
                offenders.append(f"{label}: {status} has no application/json content")
            else:
                media = content["application/json"]
                schema = media.get("schema", {})
                if not schema or schema == {}:
                    offenders.append(f"{label}: {status} schema is empty")
                else:
                    if not _has_example(document, media):
                        offenders.append(f"{label}: {status} has no example")
                    offenders += [
                        f"{label}: response field {field} has no description" for field in _undescribed(document, schema, "response", set())
                    ]

        required = {"422", "503"}
        if operation.get("security"):
            required |= {"401", "403"}
        if "{" in path:
            required.add("404")
        errors = required | {status for status in operation["responses"] if status[0] in "45"}
        if path == "/health":  # /health answers 503 with its own body, documented as Health
            errors.discard("503")
            if "503" not in operation["responses"]:
                offenders.append(f"{label}: no 503")
        for status in sorted(errors):
            offenders += _problem_offences(label, operation, status)
        offenders += [f"{label}: {status} has no description" for status, answer in operation["responses"].items() if not answer.get("description")]

        body = operation.get("requestBody")
        if body is not None:
            media = body.get("content", {}).get("application/json")
            xml = body.get("content", {}).get("application/xml")
            if label in XML_BODIES:  # API.md: a bank statement is posted as the camt.053 XML itself
                if xml is None or "example" not in xml:
                    offenders.append(f"{label}: request body is not application/xml with an example")
            elif media is None:
                offenders.append(f"{label}: request body is not application/json")
            else:
                if not _has_example(document, media):
                    offenders.append(f"{label}: request body has no example")
                offenders += [
                    f"{label}: request field {field} has no description" for field in _undescribed(document, media["schema"], "request", set())
                ]

    assert not offenders, f"{len(offenders)} gaps in the OpenAPI document:\n" + "\n".join(offenders)


def test_no_operation_documents_fastapi_validation_errors(document):
    text = json.dumps(document)
    assert "HTTPValidationError" not in text
    assert "#/components/schemas/ValidationError" not in text


def test_problem_codes_are_documented_under_their_status(document):
    """Each documented problem example carries the status it is documented under, and that
    status is the one the API answers for its code (``STATUS_BY_CODE``)."""
    offenders = []
    for label, _path, operation in _operations(document):
        for status, answer in operation["responses"].items():
            for name, example in answer.get("content", {}).get(PROBLEM, {}).get("examples", {}).items():
                value = example["value"]
                expected = responses.STATUS_BY_CODE.get(value["code"], 409)
                if value["status"] != int(status) or expected != int(status):
                    offenders.append(f"{label}: {name} under {status} (answers {expected})")
    assert not offenders, offenders


def _models(module, base) -> list[type]:
    return [value for value in vars(module).values() if isinstance(value, type) and issubclass(value, base) and value is not base]


@pytest.mark.parametrize("model", _models(responses, responses.Out), ids=lambda model: model.__name__)
def test_response_examples_fit_their_models(model):
    example = model.__dict__.get("example")
    if example is not None:
        model.model_validate(example)


def test_request_examples_are_valid_requests():
    from licensing.api.routers.webhooks import WebhookIn

    models = {model.__name__: model for model in [*_models(schemas, schemas.Input), WebhookIn]}
    for name, example in schemas.INPUT_EXAMPLES.items():
        models[name].model_validate(example)  # raises on an example the API would refuse
