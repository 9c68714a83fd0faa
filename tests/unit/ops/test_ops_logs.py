"""JSON log lines for journald, and secrets that never reach them."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relaygate.logs import REDACTED, configure_logging, redact, under_journald

API_KEY = "sk_live_" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z0A"
WH_SECRET = "whsec_" + "c2VjcmV0LXNpZ25pbmcta2V5LTEyMzQ1Njc4"
PASSWORD = "hunter2-Correct-Horse"
AUTH_BLOB = base64.b64encode(b"\0apikey\0" + API_KEY.encode()).decode()
SECRETS = (API_KEY, API_KEY[8:], WH_SECRET, WH_SECRET[6:], PASSWORD, AUTH_BLOB)


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    handler = configure_logging("DEBUG", json=True, stream=buf)
    yield buf
    logging.getLogger().removeHandler(handler)


def lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_one_json_object_per_line_with_structured_fields(stream: io.StringIO) -> None:
    log = logging.getLogger("relaygate.relay")
    log.info(
        "delivered to %s after %d attempts",
        "mx.example.net",
        2,
        extra={"msg_id": "msg_01H", "rcpt_domain": "example.net", "attempts": 2, "tls": None},
    )
    log.warning("multi\nline message")
    out = lines(stream)
    assert len(out) == 2
    first = out[0]
    assert list(first)[:5] == ["ts", "level", "logger", "msg_id", "msg"]
    assert first["level"] == "info"
    assert first["logger"] == "relaygate.relay"
    assert first["msg_id"] == "msg_01H"
    assert first["msg"] == "delivered to mx.example.net after 2 attempts"
    assert first["rcpt_domain"] == "example.net"
    assert first["attempts"] == 2
    assert first["tls"] is None
    assert str(first["ts"]).endswith("Z") and "T" in str(first["ts"])
    assert out[1]["msg"] == "multi\nline message"
    assert out[1]["level"] == "warning"


def test_secrets_never_appear_anywhere(stream: io.StringIO) -> None:
    log = logging.getLogger("relaygate.gateway")
    log.info("key %s used", API_KEY)
    log.info("webhook created with secret %s", WH_SECRET)
    log.info("client said: AUTH PLAIN %s", AUTH_BLOB)
    log.debug("%r >> %r", ("127.0.0.1", 5000), f"AUTH PLAIN {AUTH_BLOB}".encode())
    log.info("smarthost smtp://relay:%s@smtp.example.net:587 connected", PASSWORD)
    log.info("headers: Authorization: Bearer %s; X-API-Key: %s", API_KEY, API_KEY)
    log.info("config password=%s, api_key = '%s'", PASSWORD, API_KEY)
    log.info("settings smtp_password=%s webhook-secret: %s", PASSWORD, WH_SECRET[6:])
    log.info('json body {"password": "%s", "to": ["a@b.c"]}', PASSWORD)
    log.info(
        "structured",
        extra={
            "password": PASSWORD,
            "webhook_secret": WH_SECRET,
            "api_key": API_KEY,
            "headers": {"X-API-Key": API_KEY, "Authorization": f"Basic {AUTH_BLOB}"},
            "note": f"retrying with {API_KEY}",
            "items": [WH_SECRET, {"smtp_password": PASSWORD}],
        },
    )
    try:
        raise RuntimeError(f"535 auth failed for {API_KEY}: password={PASSWORD!r}")
    except RuntimeError:
        log.exception("login failed")
    log.info("unformattable %s %s", API_KEY)  # wrong arity must not leak either

    text = stream.getvalue()
    for secret in SECRETS:
        assert secret not in text, secret
    out = lines(stream)
    assert len(out) == 12
    assert out[0]["msg"] == f"key sk_live_{REDACTED} used"
    assert out[1]["msg"] == f"webhook created with secret whsec_{REDACTED}"
    assert out[2]["msg"] == f"client said: AUTH PLAIN {REDACTED}"
    assert out[4]["msg"] == f"smarthost smtp://relay:{REDACTED}@smtp.example.net:587 connected"
    assert out[5]["msg"] == f"headers: Authorization: Bearer {REDACTED}; X-API-Key: {REDACTED}"
    assert out[6]["msg"] == f"config password={REDACTED}, api_key = {REDACTED}"
    assert out[7]["msg"] == f"settings smtp_password={REDACTED} webhook-secret: {REDACTED}"
    structured = out[9]
    assert structured["password"] == REDACTED
    assert structured["webhook_secret"] == REDACTED
    assert structured["headers"] == {"X-API-Key": REDACTED, "Authorization": REDACTED}
    assert structured["note"] == f"retrying with sk_live_{REDACTED}"
    assert "RuntimeError" in str(out[10]["exc"])
    assert out[10]["level"] == "error"


def test_library_wire_loggers_are_held_at_warning(stream: io.StringIO) -> None:
    wire = logging.getLogger("mail.log")
    wire.debug("DATA readline: %s", b"Subject: the body of a private message")
    wire.info("%r >> %r", ("127.0.0.1", 1), b"AUTH LOGIN")
    wire.warning("%r connection lost", ("127.0.0.1", 1))
    out = lines(stream)
    assert [o["level"] for o in out] == ["warning"]
    assert "private message" not in stream.getvalue()


def test_text_mode_starts_with_msg_id_and_journald_priority_prefix() -> None:
    buf = io.StringIO()
    handler = configure_logging(logging.INFO, json=False, stream=buf, level_prefix=True)
    try:
        log = logging.getLogger("relaygate.relay")
        log.error("bounced: key %s", API_KEY, extra={"msg_id": "msg_7", "code": 550})
        log.debug("hidden")
    finally:
        logging.getLogger().removeHandler(handler)
    (line,) = buf.getvalue().splitlines()
    assert line.startswith("<3>")
    assert "relaygate.relay: msg_7: bounced: key sk_live_" + REDACTED in line
    assert line.endswith(" code=550")
    assert API_KEY[8:] not in line


def test_json_with_priority_prefix_and_replacing_the_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", json=True, stream=first)
    handler = configure_logging("INFO", json=True, stream=second, level_prefix=True)
    try:
        logging.getLogger("relaygate").warning("disk almost full")
    finally:
        logging.getLogger().removeHandler(handler)
    assert first.getvalue() == ""
    line = second.getvalue().strip()
    assert line.startswith("<4>{")
    assert json.loads(line[3:])["msg"] == "disk almost full"


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "delivered msg_01H to bob@example.com via mx1.example.com (250 2.0.0 ok), passed=3"
    assert redact(text) == text


def test_under_journald_matches_the_stream_device_and_inode(tmp_path: Path) -> None:
    path = tmp_path / "journal"
    with path.open("w") as f:
        st = os.fstat(f.fileno())
        assert under_journald({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, f)
        assert not under_journald({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"}, f)
        assert not under_journald({}, f)
        assert not under_journald({"JOURNAL_STREAM": "garbage"}, f)


BASE62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@given(
    key=st.text(alphabet=BASE62, min_size=32, max_size=48),
    kind=st.sampled_from(["sk_live_", "sk_test_", "whsec_"]),
    before=st.text(max_size=20),
    after=st.text(max_size=20),
)
def test_any_key_embedded_anywhere_is_masked(key: str, kind: str, before: str, after: str) -> None:
    assert key not in redact(before + kind + key + after)


@given(
    key=st.text(alphabet=BASE62, min_size=32, max_size=48),
    kind=st.sampled_from(["sk_live_", "sk_test_"]),
    user=st.text(max_size=12),
    case=st.sampled_from([str, str.upper, str.lower, str.swapcase]),
    before=st.sampled_from(["", " ", "unrecognised: ", "b'", '"', ">> "]),
    after=st.sampled_from(["", " ", "'", "\\r\\n", '"}']),
)
def test_a_key_in_base64_is_masked_in_any_case_at_any_offset(
    key: str, kind: str, user: str, case: object, before: str, after: str
) -> None:
    """AUTH LOGIN sends base64(key); AUTH PLAIN base64("\\0user\\0key") (any offset mod 3);
    aiosmtpd upper-cases an unrecognised command."""
    secret = (kind + key).encode()
    for blob in (secret, b"\0" + user.encode() + b"\0" + secret):
        encoded = case(base64.b64encode(blob).decode())  # type: ignore[operator]
        assert redact(before + encoded + after) == before + REDACTED + after


def test_an_upper_cased_key_is_masked() -> None:
    assert redact("unrecognised: " + API_KEY.upper()) == "unrecognised: SK_LIVE_" + REDACTED


def test_httpx_request_lines_are_held_back(stream: io.StringIO) -> None:
    import httpx

    with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(204))) as client:
        assert client.post("https://hooks.example/in?token=abc", content=b"{}").status_code == 204
    assert stream.getvalue() == ""  # httpx logs "HTTP Request: POST …" at INFO otherwise


async def test_uvicorn_colour_copies_stay_out_of_json_lines(
    stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    # As in `serve` (a fresh process, uvicorn started with log_config=None): uvicorn's loggers
    # propagate to ours. Another test may have run uvicorn with its own logging config.
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "handlers", [])
        monkeypatch.setattr(logger, "propagate", True)
        monkeypatch.setattr(logger, "disabled", False)
        monkeypatch.setattr(logger, "level", logging.NOTSET)

    async def app(scope: object, receive: object, send: object) -> None:
        return None

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off")
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)  # what Server.serve does before startup
    await server.startup()
    await server.shutdown()
    out = lines(stream)
    assert any("Uvicorn running on" in str(o["msg"]) for o in out), out
    assert "\x1b[" not in stream.getvalue() and not any("color_message" in o for o in out)
