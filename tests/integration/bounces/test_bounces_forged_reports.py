"""Forged reports change nobody's fate (issue 15 item 2). An outsider who knows a Message-ID, or a
recipient holding their own copy (and so their own VERP return path), mails DSNs and ARF reports
to relaygate's SMTP listener without AUTH; only a verified per-recipient VERP token may change a
recipient, and only the one it binds. The genuine paths stay: a real DSN to a recipient's VERP
address bounces (and, hard, suppresses) that recipient; a real ARF report whose returned original
carries the Return-Path is a complaint about that recipient."""

from __future__ import annotations

from relaygate.bounces import verp

from .conftest import BOUNCE_DOMAIN, SECRET, World, arf, dsn


async def test_dsn_to_postmaster_with_the_message_id_changes_nothing(world: World) -> None:
    mid = await world.send("victim@dest.test")
    message_id = world.header("victim@dest.test", "Message-ID")  # every recipient sees it
    report = await world.report(
        f"postmaster@{BOUNCE_DOMAIN}",
        dsn(
            to=f"postmaster@{BOUNCE_DOMAIN}",
            rows=[("victim@dest.test", "5.1.1")],
            original=f"Message-ID: {message_id}",
        ),
    )
    assert world.states(mid) == {"victim@dest.test": "delivered"}
    assert world.suppressed("victim@dest.test") == {}
    assert world.events("bounce") == []
    assert world.outcome(report) == ("unmatched", "no_token", None)


async def test_forged_arf_with_the_message_id_is_no_complaint(world: World) -> None:
    mid = await world.send("victim@dest.test")
    message_id = world.header("victim@dest.test", "Message-ID")
    report = await world.report(
        f"fbl@{BOUNCE_DOMAIN}",
        arf(
            rcpt_field="victim@dest.test",
            original=f"To: victim@dest.test\nMessage-ID: {message_id}",
        ),
        mail_from="feedback@isp.test",
    )
    assert world.states(mid) == {"victim@dest.test": "delivered"}
    assert world.suppressed("victim@dest.test") == {}
    assert world.events("complaint") == []
    assert world.outcome(report) == ("unmatched", "no_token", None)


async def test_any_message_id_naming_the_msg_id_proves_nothing(world: World) -> None:
    mid = await world.send("victim@dest.test")
    for rcpt, report in (
        (
            f"anything@{BOUNCE_DOMAIN}",
            dsn(
                to=f"anything@{BOUNCE_DOMAIN}",
                rows=[("victim@dest.test", "5.1.1")],
                original=f"Message-ID: <forged.{mid}@attacker.test>",
            ),
        ),
        (
            f"fbl@{BOUNCE_DOMAIN}",
            arf(
                rcpt_field="victim@dest.test",
                original=f"Message-ID: <{mid}>\nX-SM-Message-ID: {mid}",
            ),
        ),
    ):
        await world.report(rcpt, report)
    assert world.states(mid) == {"victim@dest.test": "delivered"}
    assert world.suppressed("victim@dest.test") == {}


async def test_dsn_naming_someone_else_does_not_bounce_the_only_recipient(world: World) -> None:
    mid = await world.send("victim@dest.test")
    message_id = world.header("victim@dest.test", "Message-ID")
    await world.report(
        f"postmaster@{BOUNCE_DOMAIN}",
        dsn(
            to=f"postmaster@{BOUNCE_DOMAIN}",
            rows=[("nobody@elsewhere.test", "5.1.1")],
            original=f"Message-ID: {message_id}",
        ),
    )
    assert world.states(mid) == {"victim@dest.test": "delivered"}
    assert world.suppressed("victim@dest.test", "nobody@elsewhere.test") == {}


async def test_a_recipients_own_return_path_cannot_bounce_another_recipient(world: World) -> None:
    """Two recipients at one domain: each transaction carries the VERP address of its one
    recipient, so the attacker's return path (from their own copy) binds only the attacker."""
    mid = await world.send("attacker@dest.test", "victim@dest.test")
    mine = world.return_path("attacker@dest.test")
    assert mine != world.return_path("victim@dest.test")
    report = await world.report(
        mine,
        dsn(to=mine, rows=[("attacker@dest.test", "5.1.1"), ("victim@dest.test", "5.1.1")]),
    )
    assert world.states(mid) == {"attacker@dest.test": "bounced", "victim@dest.test": "delivered"}
    assert world.suppressed("victim@dest.test") == {}
    assert world.outcome(report) == ("applied", "", world.account_id)
    # Naming only the victim, at the attacker's own token: still only the attacker's token.
    await world.report(mine, dsn(to=mine, rows=[("victim@dest.test", "5.1.1")]))
    assert world.states(mid)["victim@dest.test"] == "delivered"
    assert world.suppressed("victim@dest.test") == {}
    assert [e.recipient_id for e in world.events("bounce")] == [
        world.recipient_id(mid, "attacker@dest.test")
    ] * 2


async def test_a_token_inside_a_dsn_body_is_not_the_envelope(world: World) -> None:
    """A DSN's token is its envelope recipient: a VERP address quoted in the body (the returned
    headers, an X-Postfix-Sender) of a report sent to postmaster@ counts for nothing."""
    mid = await world.send("attacker@dest.test", "victim@dest.test")
    mine = world.return_path("attacker@dest.test")
    await world.report(
        f"postmaster@{BOUNCE_DOMAIN}",
        dsn(
            to=mine,
            rows=[("victim@dest.test", "5.1.1")],
            original=f"Return-Path: <{mine}>\nX-Postfix-Sender: rfc822; {mine}",
        ),
    )
    assert world.states(mid) == {"attacker@dest.test": "delivered", "victim@dest.test": "delivered"}
    assert world.suppressed("victim@dest.test", "attacker@dest.test") == {}


async def test_a_message_level_token_from_before_the_upgrade_binds_nobody(world: World) -> None:
    """Old multi-recipient transactions carried one token for the whole message (recipient id
    0): whoever holds one copy holds it, so it changes no recipient."""
    mid = await world.send("attacker@dest.test", "victim@dest.test")
    old = verp.encode(message_id=mid, recipient_id=0, secret=SECRET, domain=BOUNCE_DOMAIN)
    report = await world.report(old, dsn(to=old, rows=[("victim@dest.test", "5.1.1")]))
    assert world.states(mid) == {"attacker@dest.test": "delivered", "victim@dest.test": "delivered"}
    assert world.suppressed("victim@dest.test") == {}
    # The token is genuine, so the report is counted for the message's account.
    assert world.outcome(report) == ("unmatched", "message_token", world.account_id)


async def test_a_forged_token_is_ignored(world: World) -> None:
    mid = await world.send("victim@dest.test")
    real = world.return_path("victim@dest.test")
    local, _, domain = real.partition("@")
    forged = local[:-1] + ("a" if local[-1] != "a" else "b") + "@" + domain
    report = await world.report(forged, dsn(to=forged, rows=[("victim@dest.test", "5.1.1")]))
    assert world.states(mid) == {"victim@dest.test": "delivered"}
    assert world.suppressed("victim@dest.test") == {}
    assert world.outcome(report) == ("unmatched", "bad_token", None)


async def test_genuine_dsn_bounces_and_suppresses_only_its_recipient(world: World) -> None:
    mid = await world.send("gone@dest.test", "fine@dest.test")
    token = world.return_path("gone@dest.test")
    await world.report(
        token,
        dsn(
            to=token,
            rows=[("gone@dest.test", "5.1.1")],
            original=f"Message-ID: {world.header('gone@dest.test', 'Message-ID')}",
        ),
    )
    assert world.states(mid) == {"gone@dest.test": "bounced", "fine@dest.test": "delivered"}
    assert world.suppressed("gone@dest.test", "fine@dest.test") == {"gone@dest.test": "userunknown"}
    [bounce] = world.events("bounce")
    assert bounce.data["bounce_type"] == "hard" and bounce.data["status"] == "5.1.1"
    assert bounce.state_from == "delivered" and bounce.message_id == mid


async def test_genuine_soft_dsn_bounces_without_suppressing(world: World) -> None:
    mid = await world.send("full@dest.test")
    token = world.return_path("full@dest.test")
    await world.report(token, dsn(to=token, rows=[("full@dest.test", "5.2.2")]))
    assert world.states(mid) == {"full@dest.test": "bounced"}
    assert world.suppressed("full@dest.test") == {}


async def test_genuine_arf_with_the_return_path_is_a_complaint(world: World) -> None:
    mid = await world.send("angry@dest.test", "calm@dest.test")
    token = world.return_path("angry@dest.test")
    message_id = world.header("angry@dest.test", "Message-ID")
    await world.report(
        f"fbl@{BOUNCE_DOMAIN}",
        arf(
            rcpt_field="angry@dest.test",
            original=f"Return-Path: <{token}>\nTo: angry@dest.test\nMessage-ID: {message_id}",
        ),
        mail_from="feedback@isp.test",
    )
    assert world.states(mid) == {"angry@dest.test": "complained", "calm@dest.test": "delivered"}
    assert world.suppressed("angry@dest.test", "calm@dest.test") == {"angry@dest.test": "complaint"}


async def test_redacted_arf_is_kept_unmatched(world: World) -> None:
    mid = await world.send("angry@dest.test")
    message_id = world.header("angry@dest.test", "Message-ID")
    report = await world.report(
        f"fbl@{BOUNCE_DOMAIN}",
        arf(
            rcpt_field="redacted@dest.test",
            original=f"Return-Path: <redacted@{BOUNCE_DOMAIN}>\nTo: redacted\nMessage-ID: {message_id}",
        ),
    )
    assert world.states(mid) == {"angry@dest.test": "delivered"}
    assert world.suppressed("angry@dest.test") == {}
    assert world.outcome(report) == ("unmatched", "no_token", None)


async def test_a_forwarded_copy_failing_under_another_name_bounces_the_bound_recipient(
    world: World,
) -> None:
    """The token says whose copy failed even when the DSN names the address it was forwarded
    to; the event keeps the name the report gave."""
    mid = await world.send("alias@dest.test", "other@dest.test")
    token = world.return_path("alias@dest.test")
    await world.report(token, dsn(to=token, rows=[("target@forward.test", "5.1.1")]))
    assert world.states(mid) == {"alias@dest.test": "bounced", "other@dest.test": "delivered"}
    assert world.suppressed("alias@dest.test", "target@forward.test") == {
        "alias@dest.test": "userunknown"
    }
    [bounce] = world.events("bounce")
    assert bounce.data["reported_recipient"] == "target@forward.test"


async def test_genuine_arf_sent_to_the_return_path_or_naming_it_in_original_mail_from(
    world: World,
) -> None:
    mid = await world.send("one@dest.test", "two@dest.test", "three@dest.test")
    one, two = world.return_path("one@dest.test"), world.return_path("two@dest.test")
    await world.report(one, arf(rcpt_field="redacted", original="To: redacted"))
    report = arf(rcpt_field="redacted", original="To: redacted").replace(
        b"Version: 1\r\n", f"Version: 1\r\nOriginal-Mail-From: <{two}>\r\n".encode()
    )
    await world.report(f"fbl@{BOUNCE_DOMAIN}", report)
    assert world.states(mid) == {
        "one@dest.test": "complained",
        "two@dest.test": "complained",
        "three@dest.test": "delivered",
    }
