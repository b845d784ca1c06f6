"""The README's two set-up commands are the ones CI and newcomers run; the docs' model map is the SQL's."""

from __future__ import annotations

import re

from conftest import REPO


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    command = re.search(r'^TEST_COMMAND="(.*)"$', ci, re.M).group(1)
    blocks = re.findall(r"```bash\n(.*?)\n```", (REPO / "README.md").read_text(), re.S)
    assert blocks[1] == command
    assert blocks[0].endswith("profiler build") and "pip install" in blocks[0]


def test_the_model_map_in_docs_names_what_each_model_reads() -> None:
    """docs/models.md's map is one line per model of the profile, with everything it reads
    (helper-75: the drawn map had an edge no SQL had and missed one it had)."""
    from profiler.dag import build_dag
    from profiler.project import load_project

    dag = build_dag(load_project(REPO))
    text = (REPO / "docs" / "models.md").read_text()
    block = re.search(r"```\n(.*?)\n```", text, re.S).group(1)
    drawn = {}
    for line in block.splitlines():
        reads, model = line.split(" ──► ")
        assert model not in drawn, line
        drawn[model] = set(reads.split(", "))
    profile = {"user_profile_history", *dag.ancestors("user_profile_history")} & set(dag.models)
    assert set(drawn) == profile
    for model, reads in drawn.items():
        assert reads == set(dag.parents[model]) - {"as_of_time"}, model
