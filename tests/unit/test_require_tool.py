"""``require_tool``: a missing program skips with its package named, or fails when CI says so."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ..conftest import require_tool  # type: ignore[import-not-found]

ENV = "RELAYGATE_REQUIRE_TEST_TOOL"
MISSING = "relaygate-no-such-program"


def test_missing_tool_skips_naming_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(
        pytest.skip.Exception, match=rf"{MISSING} is not installed \(Debian package: pkg\)"
    ):
        require_tool(MISSING, ENV, package="pkg")


def test_missing_tool_fails_when_the_run_requires_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=rf"{ENV}=1"):
        require_tool(MISSING, ENV, package="pkg")


def test_found_on_path_or_in_a_search_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, "1")
    assert require_tool("sh", ENV, package="dash").endswith("/sh")
    for version in ("9", "15"):
        bindir = tmp_path / "pg" / version / "bin"
        bindir.mkdir(parents=True)
        tool = bindir / MISSING
        tool.write_text("#!/bin/sh\n")
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    found = require_tool(MISSING, ENV, package="pkg", search=[str(tmp_path / "pg" / "*" / "bin")])
    assert found == str(tmp_path / "pg" / "15" / "bin" / MISSING)  # the newest version
