"""The REST responses are read through pydantic models at the client's edge (app.github_client).

Each model is checked against GitHub's OpenAPI description (../shared/github/openapi, loaded the way the
fake GitHub loads it to validate request bodies): every field it reads is in the operation's response
schema, a field it requires is one GitHub always sends (required there, never null), its enums cover
GitHub's, and both the fullest and the sparsest responses GitHub may send (built from the schema) are
read. On the wire, a response without a field the review needs is a GitHubError naming the field.
"""

# ruff: noqa: F811  -- pytest fixtures are imported from tests.app.github_env and requested as arguments
from __future__ import annotations

import asyncio
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from app.github_client import RESPONSE_MODELS, GitHubError, GitHubResponseError
from tests.app.fake_github import OPENAPI_URI, FakeGitHub, load_openapi
from tests.app.github_env import (  # noqa: F401 - fixtures
    app_clients,
    app_key_pair,
    fake_github,
    read_diff,
    sleeper,
)

OPENAPI = Path(__file__).resolve().parents[2].parent / "shared" / "github" / "openapi" / "api.github.com.json"
HEAD = "a" * 40
ABSENT = "not in GitHub's schema"


class Schemas:
    """GitHub's response schemas by operation id, with `$ref`s and `allOf`s resolved."""

    def __init__(self) -> None:
        self.spec, _operations, registry = load_openapi(str(OPENAPI))
        self.resolver = registry.resolver()

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            ref = schema["$ref"]
            schema = self.resolver.lookup(OPENAPI_URI + ref if ref.startswith("#") else ref).contents
        if "allOf" in schema:
            merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
            for part in map(self.resolve, schema["allOf"]):
                merged["properties"].update(part.get("properties", {}))
                merged["required"] += part.get("required", [])
            return merged
        return schema

    def responses(self, operation_id: str) -> list[dict[str, Any]]:
        """The object schemas a 2xx JSON response of the operation may take: each `oneOf` variant, and a
        list's item (a list operation's, or a folder's in repos/get-content)."""
        for item in self.spec["paths"].values():
            for operation in item.values():
                if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                    for status, response in sorted(operation["responses"].items()):
                        content = self.resolve(response).get("content", {}).get("application/json")
                        if status.startswith("2") and content:
                            schema = self.resolve(content["schema"])
                            variants = [self.resolve(v) for v in schema.get("oneOf", [schema])]
                            return [self.resolve(v["items"]) if v.get("type") == "array" else v for v in variants]
        raise AssertionError(f"no JSON response for {operation_id} in GitHub's OpenAPI description")

    def response(self, operation_id: str) -> dict[str, Any]:
        (schema,) = self.responses(operation_id)
        return schema


@pytest.fixture(scope="module")
def schemas() -> Schemas:
    return Schemas()


def nested(annotation: Any) -> tuple[type[BaseModel] | None, bool, tuple[Any, ...]]:
    """(the model inside an annotation, whether it is a list of it, the Literal values it allows)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return None, False, args
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False, ()
    if typing.get_origin(annotation) is list:
        model, _, literals = nested(args[0])
        return model, True, literals
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in args:
            model, many, literals = nested(arg)
            if model is not None or literals:
                return model, many, literals
    return None, False, ()


def disagreements(model: type[BaseModel], schema: dict[str, Any], schemas: Schemas, where: str) -> list[str]:
    """Where `model` reads what GitHub's `schema` does not promise."""
    problems = []
    properties, required = schema.get("properties", {}), set(schema.get("required", []))
    for name, field in model.model_fields.items():
        at = f"{where}.{name}"
        if name not in properties:
            problems.append(f"{at}: {ABSENT}")
            continue
        sub = schemas.resolve(properties[name])
        if field.is_required() and (name not in required or sub.get("nullable")):
            problems.append(f"{at}: required here, but GitHub may {'send null' if sub.get('nullable') else 'omit it'}")
        inner, many, literals = nested(field.annotation)
        if many:
            sub = schemas.resolve(sub["items"])
        if literals and set(sub.get("enum", [])) - set(literals):
            problems.append(f"{at}: GitHub may send {sorted(set(sub['enum']) - set(literals))}")
        if inner is not None:
            problems += disagreements(inner, sub, schemas, at)
    return problems


def example(model: type[BaseModel], schema: dict[str, Any], schemas: Schemas, sparse: bool) -> dict[str, Any]:
    """A response GitHub may send, for the fields `model` reads: all of them, or (`sparse`) only those
    GitHub always sends, null where it may."""
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if name not in schema.get("properties", {}):
            continue  # this kind of response does not have it (the schema test says whether that is fine)
        sub = schemas.resolve(schema["properties"][name])
        if sparse and name not in schema.get("required", []):
            continue
        if sparse and sub.get("nullable"):
            out[name] = None
            continue
        inner, _many, _literals = nested(field.annotation)
        out[name] = value(sub, inner, schemas, sparse)
    return out


def value(schema: dict[str, Any], model: type[BaseModel] | None, schemas: Schemas, sparse: bool) -> Any:
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "array":
        return [value(schemas.resolve(schema["items"]), model, schemas, sparse)]
    if kind == "object" or model is not None:
        return example(model, schema, schemas, sparse) if model is not None else {}
    return {"string": "x", "integer": 7, "number": 1.5, "boolean": True}[kind]


@pytest.mark.parametrize("operation_id", sorted(RESPONSE_MODELS))
def test_each_response_model_reads_only_what_githubs_schema_promises(operation_id: str, schemas: Schemas) -> None:
    model = RESPONSE_MODELS[operation_id]
    found = [disagreements(model, schema, schemas, model.__name__) for schema in schemas.responses(operation_id)]
    absent_everywhere = set.intersection(*({p for p in problems if p.endswith(ABSENT)} for problems in found))
    # A field one kind of response lacks (a folder entry has no `encoding`) is fine if optional: read as None.
    assert [p for problems in found for p in problems if not p.endswith(ABSENT) or p in absent_everywhere] == []


@pytest.mark.parametrize("operation_id", sorted(RESPONSE_MODELS))
def test_each_response_model_reads_the_fullest_and_the_sparsest_response_github_may_send(
    operation_id: str, schemas: Schemas
) -> None:
    model = RESPONSE_MODELS[operation_id]
    for schema in schemas.responses(operation_id):
        for sparse in (False, True):
            sent = example(model, schema, schemas, sparse)
            read = model.model_validate(sent)  # a GitHub response the model refused would raise here
            assert sent, f"{model.__name__}: the example holds no field the model reads"
            # every field GitHub sent is read as sent: a value stays a value, a null stays None
            assert {name: getattr(read, name) is None for name in sent} == {name: v is None for name, v in sent.items()}
            if not sparse:
                assert set(sent) == {n for n in model.model_fields if n in schema.get("properties", {})}


def test_the_schema_check_catches_a_field_github_may_omit_or_send_null(schemas: Schemas) -> None:
    class TooStrict(BaseModel):
        number: int
        draft: bool  # optional in GitHub's pull-request
        body: str  # nullable there
        merged_by_robot: str = ""  # not in the schema at all

    assert disagreements(TooStrict, schemas.response("pulls/get"), schemas, "TooStrict") == [
        "TooStrict.draft: required here, but GitHub may omit it",
        "TooStrict.body: required here, but GitHub may send null",
        "TooStrict.merged_by_robot: not in GitHub's schema",
    ]


def test_a_pull_request_without_its_head_sha_is_a_github_error_naming_the_field(
    fake_github: FakeGitHub, app_clients, shared_dir: Path
) -> None:
    fake_github.add_pull("acme", "web", 7, read_diff(shared_dir, "011-"), head_sha=HEAD)
    broken = {"number": 7, "title": "t", "body": None, "state": "open", "head": {"ref": "feature"},
              "base": {"sha": "b" * 40, "ref": "main"}}
    fake_github.add_fault("GET", r"/repos/acme/web/pulls/7$", 200, body=broken)
    pull = app_clients.for_installation(1).pull("acme", "web", 7)
    with pytest.raises(GitHubError) as err:
        asyncio.run(pull.get())
    assert isinstance(err.value, GitHubResponseError) and err.value.fields == ["missing field head.sha"]
    assert err.value.operation == "pulls/get" and "head.sha" in str(err.value)
    assert asyncio.run(pull.get()).head_sha == HEAD  # the next answer is whole again


def test_a_check_run_list_item_without_an_id_is_a_github_error_naming_the_item(
    fake_github: FakeGitHub, app_clients
) -> None:
    listed = {"total_count": 1, "check_runs": [{"head_sha": HEAD, "status": "completed"}]}
    fake_github.add_fault("GET", r"/commits/.*/check-runs$", 200, body=listed)
    with pytest.raises(GitHubResponseError, match=r"missing field check_runs\.0\.id"):
        asyncio.run(app_clients.for_installation(1).pull("acme", "web", 7).check_runs(HEAD, name="x"))


def test_a_page_of_files_that_is_not_a_list_is_a_github_error(fake_github: FakeGitHub, app_clients) -> None:
    fake_github.add_fault("GET", r"/pulls/7/files$", 200, body={"message": "moved"})
    with pytest.raises(GitHubResponseError, match="pulls/list-files"):
        asyncio.run(app_clients.for_installation(1).pull("acme", "web", 7).files())
