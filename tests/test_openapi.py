"""The committed OpenAPI document is the code's: regenerate with `python -m app openapi`."""

import json
from pathlib import Path

from app.cli import openapi_document

SPEC = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_code() -> None:
    generated = openapi_document()
    assert SPEC.read_text(encoding="utf-8") == generated, (
        "openapi/openapi.json is stale: run `python -m app openapi`"
    )


def test_every_operation_documents_its_purpose_and_errors_are_problems() -> None:
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert operation.get("description") or operation.get("summary"), (method, path)
