"""Schema 11: identities and suppressions written before the one domain normaliser, rewritten.

Owns the one data step SQL cannot do: an address or domain stored with a Unicode (or mixed
case) domain becomes its canonical form (``relaygate.idn``). Where two spellings of one address
meet (``sup@Bücher.example`` and ``sup@xn--bcher-kva.example``), they are merged into one entry:
for suppressions the stricter one wins (a hard bounce over a soft one, no expiry over an expiry,
the later expiry), for identities the one further along (verified or asserted over at_risk over
failed over pending). A value that is not a valid domain is left as it was.
"""

from __future__ import annotations

import sqlite3

from relaygate.idn import address_key, ascii_domain

_RANK = {"verified": 4, "asserted": 4, "at_risk": 3, "failed": 2, "pending": 1}


def _canonical(kind: str, value: str) -> str:
    try:
        return address_key(value) if kind == "address" else ascii_domain(value)
    except ValueError:
        return value


def _strictness(row: sqlite3.Row) -> tuple[bool, bool, float]:
    expires = row["expires_at"]
    return (row["bounce_type"] == "hard", expires is None, float(expires or 0.0))


def canonical_addresses(conn: sqlite3.Connection) -> None:
    """Rewrite every stored identity and suppression into its canonical form, merging."""
    previous = conn.row_factory
    conn.row_factory = sqlite3.Row
    try:
        _rewrite(conn)
    finally:
        conn.row_factory = previous


def _rewrite(conn: sqlite3.Connection) -> None:
    for row in conn.execute(
        "SELECT id, account_id, kind, value, status FROM identities ORDER BY id"
    ).fetchall():
        new = _canonical(row["kind"], row["value"])
        if new == row["value"]:
            continue
        other = conn.execute(
            "SELECT id, status FROM identities WHERE account_id = ? AND value = ?",
            (row["account_id"], new),
        ).fetchone()
        if other is None:
            conn.execute("UPDATE identities SET value = ? WHERE id = ?", (new, row["id"]))
            continue
        if _RANK.get(row["status"], 0) > _RANK.get(other["status"], 0):
            conn.execute(
                "UPDATE identities SET status = ? WHERE id = ?", (row["status"], other["id"])
            )
        conn.execute("DELETE FROM identities WHERE id = ?", (row["id"],))
    for row in conn.execute("SELECT * FROM suppressions ORDER BY created_at").fetchall():
        new = _canonical("address", row["address"])
        if new == row["address"]:
            continue
        other = conn.execute(
            "SELECT * FROM suppressions WHERE account_id = ? AND address = ?",
            (row["account_id"], new),
        ).fetchone()
        if other is not None:
            if _strictness(row) <= _strictness(other):
                conn.execute(
                    "DELETE FROM suppressions WHERE account_id = ? AND address = ?",
                    (row["account_id"], row["address"]),
                )
                continue
            conn.execute(
                "DELETE FROM suppressions WHERE account_id = ? AND address = ?",
                (row["account_id"], new),
            )
        conn.execute(
            "UPDATE suppressions SET address = ? WHERE account_id = ? AND address = ?",
            (new, row["account_id"], row["address"]),
        )
