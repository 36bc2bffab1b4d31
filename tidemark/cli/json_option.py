"""The `--json` option of the listing commands (`volume list`, `rp list`): output for scripts."""

from __future__ import annotations

from typing import Annotated

import typer

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON for scripts instead of a table")]
