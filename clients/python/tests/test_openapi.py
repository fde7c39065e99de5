"""The client and api/openapi.json must agree: every field the client reads or writes exists
in the document's schema with a compatible type, every required field of an answer is read,
and every path, method and query parameter the client uses is in the document."""

import dataclasses
import json
import typing
from pathlib import Path

import pytest

import keyquorum
from keyquorum import client as client_mod
from keyquorum import types as T

DOC = json.loads((Path(__file__).resolve().parents[3] / "api" / "openapi.json").read_text())
SCHEMAS = DOC["components"]["schemas"]
# Types the client only writes (request bodies): the document's required fields are written.
REQUESTS = {"CreateKeyRequest", "SignRequest", "SignItem", "VerifyRequest", "DecryptRequest",
            "CiphertextItem", "UnsealRequest", "KeyPolicy", "ClientInfo", "DecryptReport"}


def json_types(prop):
    """The JSON types a schema property allows."""
    if "$ref" in prop:
        target = SCHEMAS[prop["$ref"].rsplit("/", 1)[1]]
        return {"string"} if "enum" in target else {"object"}
    out = set()
    for alt in prop.get("oneOf", []) + prop.get("anyOf", []) + prop.get("allOf", []):
        out |= json_types(alt)
    t = prop.get("type")
    if isinstance(t, list):
        out |= set(t)
    elif t:
        out.add(t)
    return out


def python_types(annotation):
    origin = typing.get_origin(annotation)
    if origin is typing.Union:
        out = set()
        for a in typing.get_args(annotation):
            out |= python_types(a)
        return out
    if annotation is type(None):
        return {"null"}
    if origin in (list, typing.List) or annotation is list:
        return {"array"}
    if origin in (dict, typing.Dict) or annotation is dict:
        return {"object"}
    return {str: {"string"}, int: {"integer"}, bool: {"boolean"}, float: {"number"}}.get(
        annotation, {"object"})


@pytest.mark.parametrize("cls", T.wire_types(), ids=lambda c: c.SCHEMA)
def test_wire_type_fields_exist_in_the_schema(cls):
    assert cls.SCHEMA in SCHEMAS, f"no schema {cls.SCHEMA} in api/openapi.json"
    schema = SCHEMAS[cls.SCHEMA]
    props = schema.get("properties", {})
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls) if f.name != "raw"]
    for name in fields:
        assert name in props, f"{cls.SCHEMA}.{name} is not in the document"
        allowed = json_types(props[name]) | {"null"}  # a default of None is never sent
        got = python_types(hints[name]) - {"null"}
        if "number" in allowed:
            allowed.add("integer")
        assert got <= allowed or "object" in got, f"{cls.SCHEMA}.{name}: client {got}, document {allowed}"
    required = set(schema.get("required", []))
    missing = required - set(fields)
    assert not missing, f"{cls.SCHEMA}: the client ignores required fields {missing}"


def test_enumerations_match():
    assert set(SCHEMAS["Algorithm"]["enum"]) == {"frost-ed25519", "frost-secp256k1", "hpke-x25519", "ecies-secp256k1"}
    assert keyquorum.records.HPKE in SCHEMAS["Algorithm"]["enum"]
    assert keyquorum.records.ECIES in SCHEMAS["Algorithm"]["enum"]


@pytest.mark.parametrize("method,path", client_mod.PATHS)
def test_paths_exist(method, path):
    assert path in DOC["paths"], f"{path} is not in the document"
    assert method in DOC["paths"][path], f"{method.upper()} {path} is not in the document"


def test_query_parameters_exist():
    for path, names in client_mod.QUERY.items():
        params = {p["name"] for p in DOC["paths"][path]["get"].get("parameters", []) if p.get("in") == "query"}
        assert set(names) <= params, f"{path}: {set(names) - params} not in the document"


def test_the_checks_can_fail():
    """A field the document lacks is caught."""
    @dataclasses.dataclass
    class Drifted(T.Wire):
        SCHEMA: typing.ClassVar[str] = "KeyList"
        keys: typing.List[T.KeyInfo] = dataclasses.field(default_factory=list)
        cursor: typing.Optional[str] = None

    with pytest.raises(AssertionError, match="cursor"):
        test_wire_type_fields_exist_in_the_schema(Drifted)
    with pytest.raises(AssertionError):
        test_paths_exist("patch", "/v1/keys")
