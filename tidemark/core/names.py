"""Validation of names that become folder names and topic keys (volumes, sites, groups)."""

from __future__ import annotations

import re

from .exceptions import InvalidNameError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def validate_name(name: str, what: str = "volume") -> str:
    """Refuse names that could escape a state folder (`..`, `/`) or confuse a key (`site/volume`).

    The whole name must match (`fullmatch`): `re.match` with `$` would accept a trailing newline.
    """
    if not _NAME.fullmatch(name) or ".." in name:
        raise InvalidNameError(
            f"invalid {what} name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, and no '..'"
        )
    return name
