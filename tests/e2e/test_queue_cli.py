"""`relaygate queue …` driven through the command line against a real store."""

from __future__ import annotations

from pathlib import Path

from relaygate.store.ids import new_message_id
from relaygate.store.models import NewMessage, NewRecipient
from relaygate.store.sqlite import SqliteStore as Store
from relaygate.testing.process import RelaygateProcess


def test_queue_operations(tmp_path: Path) -> None:
    rg = RelaygateProcess(tmp_path)
    rg.init()
    rg.cli("account", "create", "acme", "--plan", "paid")
    store = Store(rg.state_dir / "relaygate.sqlite3").open()
    mids = []
    for domain in ("a.test", "a.test", "b.test"):
        mid = new_message_id()
        store.admission.admit_sync(
            NewMessage(
                id=mid,
                account_id=1,
                channel="http",
                from_addr="x@example.com",
                sender_domain="example.com",
                subject="s",
                header_message_id="<x@y>",
                tags=(),
                body=b"x",
                recipients=(NewRecipient(address=f"r@{domain}", kind="to"),),
                check_suppressions=False,
            ),
            limits=False,
        )
        mids.append(mid)
    listed = rg.cli("queue", "list")
    assert [r["message_id"] for r in listed] == mids and {r["state"] for r in listed} == {"queued"}
    assert [r["address"] for r in rg.cli("queue", "list", "--domain", "b.test")] == ["r@b.test"]
    assert rg.cli("queue", "hold", "--domain", "a.test") == {
        "action": "hold",
        "matched": 2,
        "changed": 2,
    }
    assert len(rg.cli("queue", "list", "--state", "held")) == 2
    assert rg.cli("queue", "release", mids[0])["changed"] == 1
    assert rg.cli("queue", "delete", mids[1])["changed"] == 1
    shown = rg.cli("queue", "show", mids[1])
    by_recipient = rg.cli("queue", "show", str(shown["recipients"][0]["recipient_id"]))
    assert by_recipient == shown  # a recipient id, as queue list shows them, names its message
    assert shown["recipients"][0]["state"] == "bounced"
    assert [e["type"] for e in shown["recipients"][0]["events"]] == ["queued", "held", "bounce"]
    assert rg.cli("queue", "retry", "--all")["matched"] == 2
    err = rg.cli("queue", "retry", check=False)
    assert "name message or recipient ids" in err["error"]
    store.close()
