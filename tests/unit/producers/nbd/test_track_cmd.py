"""`tidemark track nbd` argument handling (serving itself is tested through `run_nbd`)."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from tidemark.cli.main import app
from tidemark.cli.nbd_server_options import parse_listen


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:10809", ("127.0.0.1", 10809)), ("[::1]:0", ("::1", 0)), ("localhost:1", ("localhost", 1))],
)
def test_listen_addresses_parse(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["10809", ":10809", "host:", "host:port", "host:70000"])
def test_bad_listen_addresses_are_refused(text: str) -> None:
    with pytest.raises(typer.BadParameter, match="host:port"):
        parse_listen(text)


def test_track_nbd_is_registered() -> None:
    result = CliRunner().invoke(app, ["track", "nbd", "--help"])
    assert result.exit_code == 0, result.output
    assert "--volume" in result.output and "--listen" in result.output
