"""Schemathesis generates requests from the OpenAPI schema, valid and invalid: none may get a 5xx.

Hypothesis drives schemathesis' strategies directly: its pytest plugin does not run on pytest 9.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from server_helpers import SMALL

from videogen.request import Request
from videogen.server import create_app

EXAMPLES_PER_OPERATION = 25


@pytest.fixture
def fuzz_settings(settings):
    """API only (generated jobs stay queued), with a small queue so that 429 is reached too."""
    return replace(settings, max_queue=20)


@pytest.fixture
def api_schema(fuzz_settings):
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(fuzz_settings))


@pytest.fixture
def fuzz_client(make_client, fuzz_settings):
    return make_client(fuzz_settings)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_no_generated_request_gets_a_server_error(api_schema, mode) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 13
    fuzzed = set()
    for operation in operations:

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        try:
            no_server_error()
        except Unsatisfiable:  # an operation none of whose inputs can be made invalid
            continue
        fuzzed.add(operation.label)
    assert {"POST /v1/uploads", "POST /v1/jobs", "GET /v1/jobs"} <= fuzzed


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
#: values near the edges of what the fields take, so more requests get past the schema
PLAUSIBLE = st.sampled_from([0, 1, 7, 8, 64, 65, 257, 2**63, -1, 0.5, 1.0, "", "tiny-unet3d", "svd", "mp4"])


@given(
    changes=st.dictionaries(
        st.sampled_from(sorted(Request.model_fields)), PLAUSIBLE | JSON_VALUES, max_size=3
    )
)
@settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_variations_of_a_valid_request_never_get_a_server_error(fuzz_client, changes) -> None:
    """Schemathesis rarely finds a valid model name; here each request starts from a valid one."""
    response = fuzz_client.post("/v1/jobs", json={**SMALL, **changes})
    assert response.status_code in (202, 409, 422, 429), response.text
    if response.status_code != 202:
        assert response.json()["error"]
