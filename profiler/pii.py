"""Privacy at the door: the key and the keyed hash that replace personal values at ingest.

A personal value (name, email, phone) is replaced by HMAC-SHA256(key, normalised value) in hex, so
the same person joins across files and batches while the warehouse never holds the value itself.
The key lives outside the warehouse: whoever copies the warehouse cannot reverse the hashes by
hashing guessed emails.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from profiler.errors import ProfilerError
from profiler.settings import Settings

KEY_ENV = "PROFILER_PII_KEY"
KEY_FILE = "pii.key"
HMAC_FUNCTION = "_profiler_pii_hmac"


def load_pii_key(settings: Settings) -> bytes:
    """The HMAC key: `PROFILER_PII_KEY` if set, else a random key created once beside the project.

    The generated key is kept in `settings.state_dir / "pii.key"` (mode 0600) and reused, so the
    pseudonyms of one person stay stable across runs.
    """
    env = os.environ.get(KEY_ENV)
    if env:
        return env.encode("utf-8")
    path = settings.state_dir / KEY_FILE
    if path.exists():
        return _read_key(path, waits=20)
    return _create_key(path)


def _read_key(path: Path, waits: int = 0) -> bytes:
    key = path.read_bytes()
    for _ in range(waits):  # created in place (no hard links there): its writer may be mid-way
        if key:
            break
        time.sleep(0.05)
        key = path.read_bytes()
    if not key:
        raise ProfilerError(f"the PII key file {path} is empty; restore it or set {KEY_ENV}")
    return key


def _create_key(path: Path) -> bytes:
    """Write a fresh key with mode 0600 from the first byte on (no window where others can read),
    to a temporary file of its own, then link it in place: the key file appears whole or not at
    all (created in place, another process starting at that moment read it empty and failed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        try:
            os.link(tmp, path)
        except FileExistsError:  # another process created it meanwhile: use theirs
            return _read_key(path, waits=20)
        except OSError:  # no hard links on this filesystem (FAT, exFAT, some network shares)
            return _create_in_place(path, key)
    finally:
        tmp.unlink(missing_ok=True)
    return key


def _create_in_place(path: Path, key: bytes) -> bytes:
    """Where a file cannot be linked: create it exclusively and write it; a process that finds it
    still empty waits for it (`_read_key`)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path, waits=20)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    os.chmod(path, 0o600)  # umask may have removed bits, never added: make the mode exact
    return key


def pseudonymise(key: bytes, value: str) -> str:
    """The pseudonym of one already normalised value (the same function the SQL UDF applies)."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def _hasher(key: bytes) -> Callable[[str], str]:
    """HMAC-SHA256 with the key's padded states computed once: ~3x faster than `hmac.new` per value.

    Follows RFC 2104 exactly (a key longer than the block is hashed first); a test checks it
    against `pseudonymise`.
    """
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def digest(value: str) -> str:
        h = inner.copy()
        h.update(value.encode("utf-8"))
        o = outer.copy()
        o.update(h.digest())
        return o.hexdigest()

    return digest


def normalise_sql(column: str, expr: str) -> str:
    """SQL normalising a personal value before hashing, so trivial spelling differences match.

    Emails compare case-insensitively, phones by their digits; an empty result counts as missing.
    """
    if column == "email":  # an address as it was always hashed; `Jane Doe <jane@x.com>`, which
        # never was one, is jane@x.com (pseudonyms stored before stay the same)
        inner = (
            f"lower(CASE WHEN regexp_full_match(trim({expr}), '{EMAIL_ID}') THEN trim({expr}) "
            f"ELSE coalesce(nullif(regexp_extract({expr}, '{ADDRESS}'), ''), trim({expr})) END)"
        )
    elif column == "phone":
        inner = f"regexp_replace({expr}, '[^0-9]', '', 'g')"
    else:
        inner = f"trim({expr})"
    return f"nullif({inner}, '')"


# an e-mail address, where a user id was expected (orders exports keyed by the buyer's address)
# (ASCII white space, as DuckDB's RE2 reads `\s`: Python's would take U+3000 too, helper-41)
SPACES = " \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
EMAIL_ID = r"[^@ \t\n\f\r]+@[^@ \t\n\f\r]+\.[^@ \t\n\f\r]+"
# an address inside a value: a mail header's `Jane Doe <jane@x.com>`, `mailto:jane@x.com`
ADDRESS = r"[^@ \t\n\f\r<>()\[\]\",;:]+@[^@ \t\n\f\r<>()\[\]\",;:]+\.[^@ \t\n\f\r<>()\[\]\",;:]+"


def email_sql(expr: str) -> str:
    """SQL: does `expr` hold an e-mail address? Personal then, whatever else it holds (helper-36:
    `Jane Doe <jane@x.com>` as a user id was stored as sent). `contains` keeps it cheap."""
    return f"(contains({expr}, '@') AND regexp_matches({expr}, '{ADDRESS}'))"


def address_of(value: str) -> str | None:
    """The e-mail address in `value`, as `normalise_sql` finds it; None when there is none."""
    import re

    value = value.strip(SPACES)  # as DuckDB's trim(): spaces, never tabs or line breaks
    if re.fullmatch(EMAIL_ID, value):
        return value
    found = re.search(ADDRESS, value)
    return found.group(0) if found else None


def user_id_pseudonym(key: bytes, value: str) -> str:
    """The user id ingest stores for `value`: an e-mail address becomes its pseudonym (as the
    `email` column's), any other id stays as sent; `show` finds a user by address this way."""
    address = address_of(value)
    return pseudonymise(key, address.lower()) if address else value.strip(SPACES)


def register_hmac(con: duckdb.DuckDBPyConnection, key: bytes) -> str:
    """Register the keyed hash as a vectorised (Arrow) UDF on `con`; returns its SQL name.

    DuckDB has no keyed hash, so Python does it, a batch of values per call rather than a row.
    """
    import pyarrow as pa

    digest = _hasher(key)

    def _hmac(values):  # pa.Array -> pa.Array; unannotated: DuckDB evaluates hints at registration
        out = [None if v is None else digest(v) for v in values.to_pylist()]
        return pa.array(out, pa.string())

    unregister_hmac(con)
    con.create_function(
        HMAC_FUNCTION,
        _hmac,
        [duckdb.sqltype("VARCHAR")],
        duckdb.sqltype("VARCHAR"),
        type="arrow",
        null_handling="special",
        side_effects=False,
    )
    return HMAC_FUNCTION


def unregister_hmac(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the UDF so the key does not stay reachable through the caller's connection."""
    with contextlib.suppress(duckdb.InvalidInputException, duckdb.CatalogException):
        con.remove_function(HMAC_FUNCTION)
