"""The README's two set-up commands are the ones CI and newcomers run."""

from __future__ import annotations

import re

from conftest import REPO


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    command = re.search(r'^TEST_COMMAND="(.*)"$', ci, re.M).group(1)
    blocks = re.findall(r"```bash\n(.*?)\n```", (REPO / "README.md").read_text(), re.S)
    assert blocks[1] == command
    assert blocks[0].endswith("profiler build") and "pip install" in blocks[0]
