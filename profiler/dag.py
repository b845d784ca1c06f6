"""The model graph: edges from each model's SQL, build order, cycles, and dbt-style selectors."""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass, replace
from graphlib import CycleError, TopologicalSorter

from profiler.errors import ProfilerError
from profiler.lineage import cross_key, output_columns, upstream_tables
from profiler.project import Kind, Model
from profiler.sources import SOURCES

BUILTINS = ("as_of_time",)
SOURCE_TABLES = tuple(s.table for s in SOURCES.values())


@dataclass(frozen=True)
class Dag:
    models: dict[str, Model]
    parents: dict[str, tuple[str, ...]]  # model -> upstream models, raw tables and builtins

    def model_parents(self, name: str) -> tuple[str, ...]:
        return tuple(p for p in self.parents[name] if p in self.models)

    def children(self, name: str) -> tuple[str, ...]:
        return tuple(m for m, ps in self.parents.items() if name in ps)

    def order(self) -> list[str]:
        """Models in build order; ties broken by name so the order is stable."""
        sorter = TopologicalSorter({m: self.model_parents(m) for m in self.models})
        sorter.prepare()
        ready: list[str] = []
        out: list[str] = []
        while sorter.is_active():
            for name in sorter.get_ready():
                heapq.heappush(ready, name)
            name = heapq.heappop(ready)  # the first by name of those whose parents are built
            out.append(name)
            sorter.done(name)
        return out

    def ancestors(self, name: str) -> set[str]:
        seen: set[str] = set()
        stack = list(self.parents[name])
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(self.parents.get(node, ()))
        return seen

    def descendants(self, name: str) -> set[str]:
        seen: set[str] = set()
        stack = list(self.children(name))
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(self.children(node))
        return seen

    def built_parents(self, name: str) -> tuple[str, ...]:
        """Parent models with a table and state; an ephemeral parent stands for the ones it reads."""
        out: list[str] = []
        for p in self.model_parents(name):
            out.extend((p,) if self.models[p].kind.is_built else self.built_parents(p))
        return tuple(dict.fromkeys(out))

    def run_parents(self, name: str) -> tuple[str, ...]:
        """What the model's SQL reads once its ephemeral parents are inlined."""
        out: list[str] = []
        for p in self.parents[name]:
            ephemeral = p in self.models and not self.models[p].kind.is_built
            out.extend(self.run_parents(p) if ephemeral else (p,))
        return tuple(dict.fromkeys(out))

    def raw_sources(self, name: str) -> set[str]:
        """The raw tables a model reads, directly or through other models."""
        return {a for a in self.ancestors(name) if a in SOURCE_TABLES}

    def select(self, selector: str | None) -> list[str]:
        """dbt selectors: `name`, `name+`, `+name`, `+name+`, `tag:x`; spaces separate a union,
        commas an intersection, as in dbt (`tag:behaviour,+user_profile`)."""
        order = self.order()
        if selector is not None and not selector.strip():
            raise ProfilerError("--select is empty; give a model, +model, model+ or tag:x")
        if not selector:
            return order
        chosen: set[str] = set()
        for part in re.sub(r"\s*,\s*", ",", selector.strip()).split():  # `a, b` is `a,b`
            both = [self._select_one(p) for p in part.split(",") if p]
            chosen |= set.intersection(*both) if both else set()
        if not chosen:  # `a,b` meant a union before 2026-12: say why nothing was picked
            raise ProfilerError(
                f"--select {selector!r} picks no model: a comma intersects, as in dbt (models in "
                "both); separate a union with spaces"
            )
        return [m for m in order if m in chosen]

    def _select_one(self, part: str) -> set[str]:
        if part.startswith("tag:"):
            tag = part[4:]
            found = {m for m, model in self.models.items() if tag in model.tags}
            if not found:
                raise ProfilerError(f"no model has tag {tag!r}")
            return found
        up, down = part.startswith("+"), part.endswith("+")
        name = part.strip("+")
        if name not in self.models:
            raise ProfilerError(f"no model named {name!r}; `profiler ls` lists them")
        chosen = {name}
        if up:
            chosen |= {a for a in self.ancestors(name) if a in self.models}
        if down:
            chosen |= self.descendants(name)
        return chosen


def build_dag(models: dict[str, Model], extra_relations: tuple[str, ...] = ()) -> Dag:
    """Read every model's dependencies; unknown relations and cycles are errors at file:line."""
    models = dict(models)  # the readers of ephemeral models get their inlined SQL below
    known = set(models) | set(SOURCE_TABLES) | set(BUILTINS) | set(extra_relations)
    parents: dict[str, tuple[str, ...]] = {}
    for name, model in models.items():
        if model.kind is Kind.PYTHON:
            parents[name] = model.depends_on
            continue
        refs = upstream_tables(model.sql, where=str(model.path), line_offset=model.header_lines)
        for ref in refs:
            if ref.name not in known:
                raise ProfilerError(
                    f"{model.path}:{ref.line}: {name} reads {ref.name!r}, which is neither a model, "
                    f"a source table ({', '.join(SOURCE_TABLES)}) nor as_of_time"
                )
            if ref.name == name:
                raise ProfilerError(f"{model.path}:{ref.line}: {name} reads itself")
        parents[name] = tuple(dict.fromkeys(r.name for r in refs))
    for name, model in models.items():
        unknown = [p for p in model.depends_on if p not in known]
        if unknown:
            raise ProfilerError(
                f"{model.path}:1: {name} reads {unknown[0]!r}, which is not a model of the project"
            )
    dag = Dag(models, parents)
    try:
        TopologicalSorter({m: set(dag.model_parents(m)) for m in models}).prepare()
    except CycleError as err:
        cycle = err.args[1]  # each node feeds the next: cycle[1] reads cycle[0]
        reader = models[cycle[1]]
        refs = (
            []
            if reader.depends_on
            else upstream_tables(reader.sql, line_offset=reader.header_lines)
        )
        line = next((r.line for r in refs if r.name == cycle[0]), 1)
        raise ProfilerError(
            f"{reader.path}:{line}: dependency cycle: {' -> '.join(cycle)} (each feeds the next)"
        ) from None
    _record_inlined(dag)
    keyed: dict[str, set[str]] = {}  # key -> the relations a slice by it filters
    for model in dag.models.values():
        if model.kind is Kind.INCREMENTAL_BY_KEY and model.unique_key:
            key = model.unique_key[0].lower()
            if key not in keyed:
                keyed[key] = _keyed(dag, key)
            _refuse_cross_key(dag, model, keyed[key])
    return dag


def _refuse_cross_key(dag: Dag, reader: Model, keyed: set[str]) -> None:
    """A part of a by-key model's SQL, or of an ephemeral's inlined into it, that reads other
    keys' rows (`lineage.cross_key`: a window, an aggregate, a SELECT dropping the key, a join).
    The slice reads the touched values of the first key column alone (plan._plan_by_key), so one
    partitioned, grouped or joined by it is key-local, the other key columns (user_id, day: a lag
    over a user's days) need not partition it."""
    key = reader.unique_key[0].lower()
    # the ephemerals first: the reader's join to one dropping the key is that one's fault
    for model in [*(dag.models[e] for e, _ in reader.inlined), reader]:
        across = cross_key(
            model.sql, key, keyed, where=str(model.path), line_offset=model.header_lines
        )
        if across and model is not reader:
            across += f" ({model.name} is ephemeral: it runs inside {reader.name}'s slice)"
        if across:
            raise ProfilerError(across)


def _keyed(dag: Dag, key: str) -> set[str]:
    """The relations a slice by `key` reads for the touched keys alone (build_model.prepare_sql):
    sources and tables with the key's column, and the ephemeral models reading any of them (their
    SQL runs inside the slice). A model's columns are its SELECT's names; one selecting `*` is
    taken to have the key when a relation it reads does."""
    keyed = {s.table for s in SOURCES.values() if key in s.column_names_lower()}
    for name in dag.order():
        model = dag.models[name]
        reads_keyed = not keyed.isdisjoint(dag.parents[name])
        if model.kind is Kind.PYTHON:
            has_key = key in model.columns
        elif not model.kind.is_built:
            has_key = reads_keyed
        else:
            columns = output_columns(model.sql)
            has_key = reads_keyed if columns is None else key in columns
        if has_key:
            keyed.add(name)
    return keyed


def _record_inlined(dag: Dag) -> None:
    """Give each reader of ephemeral models their SQL, so editing one rebuilds its readers."""
    for name, model in list(dag.models.items()):
        ephemeral = _through_ephemeral(dag, name)
        if not ephemeral:
            continue
        if model.kind is Kind.PYTHON:
            raise ProfilerError(
                f"{model.path}:1: {name} reads ephemeral model(s) {', '.join(sorted(ephemeral))}, "
                "which have no table; make them views"
            )
        inlined = tuple((e, dag.models[e].sql) for e in sorted(ephemeral))
        dag.models[name] = replace(model, inlined=inlined)


def _through_ephemeral(dag: Dag, name: str) -> set[str]:
    """The ephemeral models `name` reads directly or through other ephemeral models."""
    found: set[str] = set()
    stack = [p for p in dag.model_parents(name)]
    while stack:
        p = stack.pop()
        if p not in found and not dag.models[p].kind.is_built:
            found.add(p)
            stack.extend(dag.model_parents(p))
    return found
