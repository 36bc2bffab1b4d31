"""The SCRAM users file of the test SASL_SSL listener: private, `name:password` per line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tidemark.core.exceptions import LocalBrokerError
from tidemark.localkafka.sasl import read_users


def test_users_are_read_with_colons_in_passwords(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.write_text("alice:a:b c\n\nbob:pw\n")
    secrets.chmod(0o600)
    assert read_users(secrets) == [("alice", "a:b c"), ("bob", "pw")]


def test_a_file_others_may_read_is_refused(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.write_text("alice:pw\n")
    secrets.chmod(0o644)
    with pytest.raises(LocalBrokerError, match="chmod 600"):
        read_users(secrets)


@pytest.mark.parametrize("line", ["alice", ":pw", "alice:"])
def test_a_malformed_line_names_file_and_line(tmp_path: Path, line: str) -> None:
    secrets = tmp_path / "secrets"
    secrets.write_text(f"ok:pw\n{line}\n")
    secrets.chmod(0o600)
    with pytest.raises(LocalBrokerError, match=f"{secrets}:2: expected"):
        read_users(secrets)
