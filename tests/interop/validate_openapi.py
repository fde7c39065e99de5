"""Validates an OpenAPI document with openapi-spec-validator (an implementation we did not
write): exits non-zero, with the validator's message, when the document is not valid OpenAPI 3.

usage: python3 validate_openapi.py FILE.json
"""
import json
import sys

from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

spec, _ = read_from_filename(sys.argv[1])
if not str(spec.get("openapi", "")).startswith("3."):
    sys.exit(f"not an OpenAPI 3 document: openapi = {spec.get('openapi')!r}")
validate(spec)
print(f"valid OpenAPI {spec['openapi']}: {len(spec['paths'])} paths")
