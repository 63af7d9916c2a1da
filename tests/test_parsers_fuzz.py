"""Property-based tests of every parser of outside input (tests/support/parser_properties.py
says what each must hold): few examples per parser here, for CI; bench/fuzz_parsers.py runs
the same properties much longer."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.parser_properties import CASES, ParserCase

EXAMPLES = 150
SLOW_EXAMPLES = 4  # a scrypt derivation each


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_parser_raises_only_its_documented_error(case: ParserCase) -> None:
    @settings(
        max_examples=SLOW_EXAMPLES if case.slow else EXAMPLES,
        deadline=None,  # a loaded CI machine must not turn slowness into a failure
        database=None,  # nothing written into the checkout
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=True,  # the same inputs on every run: CI is reproducible
    )
    @given(st.data())
    def run(data: st.DataObject) -> None:
        case.check(data.draw(case.inputs, label=case.name))

    run()


def test_every_parser_of_outside_input_has_a_case() -> None:
    names = {case.name.removesuffix(" (round trip)") for case in CASES}
    assert {
        "image reference",
        "image list file",
        "manifest and index",
        "simple-signing payload",
        ".sig attachment",
        "policy.json",
        "registries.d",
        "registries.conf",
        "auth.json",
        "WWW-Authenticate",
        "key file (PEM/DER)",
        "passphrase file",
    } <= names
