"""Names that become folder names and topic keys: what is accepted and what is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidemark.core.exceptions import InvalidNameError
from tidemark.core.names import validate_name

ALLOWED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"


@pytest.mark.parametrize("name", ["vm1", "a", "db-0.disk_1", "9" * 128])
def test_plain_names_are_accepted(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["vm1\n", "vm1\r\n", "\nvm1", "vm 1", "", "-vm", ".hidden", "a..b", "site/vm", "x" * 129, "vm1\x00"],
)
def test_unsafe_names_are_refused_and_named(name: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid site name"):
        validate_name(name, "site")


@given(st.text(alphabet=ALLOWED, min_size=1, max_size=128), st.sampled_from(["\n", "\r", "/", " ", "\t"]))
def test_any_name_with_a_character_outside_the_set_is_refused(name: str, bad: str) -> None:
    with pytest.raises(InvalidNameError):
        validate_name(name + bad)
