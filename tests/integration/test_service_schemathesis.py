"""Schemathesis against the running app (in-process ASGI, real model and database): every
operation of the OpenAPI document, with data that fits the schema (positive), data that breaks
it (negative), and with the ids in the path fixed to a known user and item (known), sent with an
API key that has every scope. Checks: no 5xx, every status and content type is documented, every
response body matches its documented schema, and data that breaks the schema is refused with a
4xx. Derandomized, so CI sees the same requests on every run."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from avrec.service.app import create_app
from avrec.service.settings import ServiceSettings
from avrec.storage.db import get_engine
from avrec.storage.keys import SCOPES, create_key
from tests.integration.service_fixtures import build

#: examples per operation and generation mode
EXAMPLES = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: what counts as refusing schema-violating data: a 4xx (a URL or headers made too long by the
#: violation get 414 or 431, a body 413)
REFUSED = [400, 401, 403, 404, 405, 406, 409, 413, 414, 415, 422, 428, 429, 431]
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": REFUSED}}}
)
MODES = {
    "positive": (GenerationMode.POSITIVE, CHECKS),
    "negative": (GenerationMode.NEGATIVE, [*CHECKS, negative_data_rejection]),
    "known": (GenerationMode.POSITIVE, CHECKS),
}
#: "known": path ids fixed to a user and an item of the catalog, so that the successful answers
#: (not only 404s) are generated and checked against their schema
KNOWN = {"user_id": "u1", "item_id": "m0"}


def _operations() -> list[tuple[str, str, str]]:
    """(method, path, mode) for every documented operation; negative data only where there is
    something to break (parameters besides the API key, or a body). The document needs no model
    loaded."""
    paths = create_app(ServiceSettings(model_dir=Path("unused"))).openapi()["paths"]
    out = []
    for path, ops in paths.items():
        for method, op in ops.items():
            out.append((method.upper(), path, "positive"))
            if "{" in path:
                out.append((method.upper(), path, "known"))
            params = [p for p in op.get("parameters", ()) if p["name"].lower() != "x-api-key"]
            if params or op.get("requestBody"):  # the API key is set by the test itself
                out.append((method.upper(), path, "negative"))
    return out


OPERATIONS = _operations()
TALLY: dict[str, int] = {"operations": 0, "examples": 0}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    model_dir, url, _ = build(tmp_path_factory.mktemp("schemathesis"))
    key = create_key(get_engine(url), "schemathesis", list(SCOPES))
    app = create_app(ServiceSettings(model_dir=model_dir, database_url=url, secret="s"))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    yield schema, key
    print(f"\nschemathesis: {TALLY['operations']} operation runs, {TALLY['examples']} examples")


def test_every_operation_is_covered():
    assert len({(m, p) for m, p, _ in OPERATIONS}) >= 12
    assert {
        ("POST", "/api/events", "negative"),
        ("GET", "/api/users/{user_id}/recommendations", "negative"),
        ("DELETE", "/api/users/{user_id}", "negative"),
    } <= set(OPERATIONS)


@pytest.mark.parametrize(
    ("method", "path", "mode"), OPERATIONS, ids=[" ".join(o) for o in OPERATIONS]
)
def test_operation(api, method, path, mode):
    schema, key = api
    generation_mode, checks = MODES[mode]
    operation = schema[path][method]
    fixed = (
        {name: value for name, value in KNOWN.items() if f"{{{name}}}" in path}
        if mode == "known"
        else None
    )
    strategy = operation.as_strategy(
        generation_mode=generation_mode, headers={"x-api-key": key}, path_parameters=fixed
    )
    calls = []

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(case=strategy)
    def run(case):
        # a generous read timeout: the first ingest loads the text encoder, which on a busy
        # 2-core machine can take longer than schemathesis' default of 10 s
        case.call_and_validate(checks=checks, timeout=120)
        calls.append(case)

    run()
    TALLY["operations"] += 1
    TALLY["examples"] += len(calls)
    assert calls, f"no example was generated for {method} {path} ({mode})"
