"""relaygate.toml → frozen ``Settings``, validated once at start-up with every problem listed.

The keys are part of the contract (scripts and the systemd units depend on them); every key is
documented in ``config/relaygate.example.toml``. Unknown keys are errors, so a typo never silently
falls back to a default. Relative paths are resolved against the config file's directory.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relaygate.errors import ConfigError

DELIVERY_MODES = ("mx", "smarthost", "capture")
#: The roles of ``relaygate serve`` (``--role``); all of them when none is named.
ROLES = ("http", "smtp", "relay", "webhooks")
#: The longest single wait of an outbound SMTP attempt: the reply to the end of DATA (RFC 5321
#: §4.5.3.2.6, Postfix's smtp_data_done_timeout; ``relay.client.Timeouts.data``). A delivery
#: lease must outlast it, so that even a renewal that cannot reach the store for a while leaves
#: the lease standing through the slowest answer.
LONGEST_SMTP_WAIT = 600.0
TLS_MODES = ("opportunistic", "required", "verified")
SMARTHOST_TLS = ("starttls", "implicit", "none")


@dataclass(frozen=True, kw_only=True)
class HttpSettings:
    listen: str = "127.0.0.1:8025"
    public_url: str = "http://127.0.0.1:8025"
    max_request_bytes: int = 25 * 1024 * 1024
    auth_failure_limit: int = 10
    auth_failure_window: float = 300.0
    header_timeout: float = 10.0
    idle_timeout: float = 30.0
    max_connections: int = 1000
    render_workers: int = 4
    #: Peers (CIDRs) whose X-Forwarded-For is believed: a reverse proxy on the host.
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class SmtpSettings:
    listen: tuple[str, ...] = ("127.0.0.1:2525",)
    tls_listen: tuple[str, ...] = ()
    tls_cert: str = ""
    tls_key: str = ""
    auth_require_tls: bool = True
    trusted_networks: Mapping[str, int] = field(default_factory=dict)
    max_message_bytes: int = 25 * 1024 * 1024
    max_recipients: int = 50
    timeout: float = 300.0
    auth_failure_limit: int = 10
    auth_failure_window: float = 300.0
    max_connections: int = 100
    max_connections_per_client: int = 50


@dataclass(frozen=True, kw_only=True)
class DeliverySettings:
    mode: str = "mx"
    mx_port: int = 25
    capture_dir: str = ""
    smarthost: str = ""
    smarthost_tls: str = "starttls"
    smarthost_user: str = ""
    smarthost_password: str = ""
    smarthost_sync: bool = False
    smarthost_ca_file: str = ""
    tls: str = "opportunistic"
    tls_policies: Mapping[str, str] = field(default_factory=dict)
    min_backoff: float = 300.0
    max_backoff: float = 4000.0
    lifetime: float = 5 * 86400.0
    concurrency: int = 50
    per_domain_concurrency: int = 20
    lease_seconds: float = 900.0
    max_lease_losses: int = 5
    batch_size: int = 100
    connection_cache_seconds: float = 2.0


@dataclass(frozen=True, kw_only=True)
class DnsSettings:
    nameservers: tuple[tuple[str, int], ...] = ()
    timeout: float = 5.0


@dataclass(frozen=True, kw_only=True)
class BounceSettings:
    return_path_domain: str = ""
    feedback_address: str = ""
    #: Largest report accepted for the bounce/feedback addresses (bytes; 552 beyond).
    max_report_bytes: int = 2 * 1024 * 1024
    #: Reports accepted per client IP address (IPv6: per /64) in any 60 seconds (451 beyond).
    reports_per_minute: int = 60
    #: Seconds after a report was processed that its bytes are dropped (its outcome stays).
    report_retention: float = 7 * 86400.0


@dataclass(frozen=True, kw_only=True)
class WebhookSettings:
    allow_private: bool = False
    timeout: float = 10.0
    concurrency_per_endpoint: int = 4


@dataclass(frozen=True, kw_only=True)
class TrackingSettings:
    token_lifetime: float = 365 * 86400.0


@dataclass(frozen=True, kw_only=True)
class DomainSettings:
    recheck_interval: float = 6 * 3600.0
    dkim_grace: float = 7 * 86400.0
    #: How long a verified domain's records may stay missing (at_risk) before it is failed.
    failure_grace: float = 72 * 3600.0


@dataclass(frozen=True, kw_only=True)
class DashboardSettings:
    """``/dashboard``: on by default; ``allow_from`` (CIDRs, empty: anyone) keeps it off a
    public listener; ``operator_contact`` is whom an account's user asks for a plan change."""

    enabled: bool = True
    allow_from: tuple[str, ...] = ()
    operator_contact: str = ""


#: Roles that may have a metrics listener of their own (the http role serves /metrics itself).
METRICS_ROLES = ("smtp", "relay", "webhooks")


@dataclass(frozen=True, kw_only=True)
class MetricsSettings:
    """``listen``: role → host:port where a process without the HTTP API serves its own metrics."""

    listen: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Settings:
    path: Path
    state_dir: Path
    hostname: str
    secret_key_file: Path
    http: HttpSettings
    smtp: SmtpSettings
    delivery: DeliverySettings
    dns: DnsSettings
    bounces: BounceSettings
    webhooks: WebhookSettings
    domains: DomainSettings = field(default_factory=DomainSettings)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    log_level: str = "info"
    log_json: bool = True

    @property
    def database(self) -> Path:
        return self.state_dir / "relaygate.sqlite3"

    @property
    def dkim_dir(self) -> Path:
        return self.state_dir / "dkim"

    @property
    def capture_dir(self) -> Path:
        return (
            Path(self.delivery.capture_dir)
            if self.delivery.capture_dir
            else self.state_dir / "capture"
        )

    @property
    def return_path_domain(self) -> str:
        return self.bounces.return_path_domain or f"bounces.{self.hostname}"

    def secret_key(self) -> bytes:
        """The server key that signs VERP and tracking tokens (made by ``init``)."""
        return self.secret_key_file.read_bytes().strip()


def parse_hostport(value: str, *, default_port: int | None = None) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or (with a default) a bare host. Raises ValueError."""
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ValueError(f"{value!r} has no host")
    if not port_text:
        if default_port is None:
            raise ValueError(f"{value!r} needs a port (host:port)")
        return host, default_port
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{value!r} has an invalid port")
    return host, int(port_text)


class _Reader:
    """Reads one TOML table, collecting problems instead of stopping at the first."""

    def __init__(self, data: Mapping[str, Any], section: str, problems: list[str]) -> None:
        self.data = data
        self.section = section
        self.problems = problems
        self.seen: set[str] = set()

    def _name(self, key: str) -> str:
        return f"{self.section}.{key}" if self.section else key

    def get(
        self,
        key: str,
        kind: type | tuple[type, ...],
        default: Any,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        self.seen.add(key)
        if key not in self.data:
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            self.problems.append(f"{self._name(key)}: expected {kinds[0].__name__}, got a boolean")
            return default
        if not isinstance(value, kinds):
            self.problems.append(
                f"{self._name(key)}: expected {' or '.join(k.__name__ for k in kinds)}, got {type(value).__name__}"
            )
            return default
        if check is not None:
            problem = check(value)
            if problem:
                self.problems.append(f"{self._name(key)}: {problem}")
                return default
        return value

    def table(self, key: str) -> Mapping[str, Any]:
        self.seen.add(key)
        value = self.data.get(key, {})
        if not isinstance(value, Mapping):
            self.problems.append(f"{self._name(key)}: expected a table")
            return {}
        return value

    def finish(self) -> None:
        for key in sorted(set(self.data) - self.seen):
            self.problems.append(f"{self._name(key)}: unknown key")


def _one_of(options: tuple[str, ...]) -> Callable[[Any], str | None]:
    return lambda v: None if v in options else f"must be one of {', '.join(options)} (got {v!r})"


def _positive(v: Any) -> str | None:
    return None if v > 0 else f"must be positive (got {v})"


def _not_negative(v: Any) -> str | None:
    return None if v >= 0 else f"must be zero or more (got {v})"


def _path(v: Any) -> str | None:
    return "must not contain a NUL character" if "\x00" in v else None


def _metrics_listen(v: Any) -> str | None:
    for role, listen in v.items():
        if role not in METRICS_ROLES:
            return f"{role!r} is not one of {', '.join(METRICS_ROLES)} (the http role serves /metrics on http.listen)"
        if not isinstance(listen, str):
            return f"{role}: must be a host:port string"
        try:
            parse_hostport(listen)
        except ValueError as exc:
            return f"{role}: {exc}"
    return None


def _port(v: Any) -> str | None:
    return None if 0 <= v <= 65535 else f"must be a port number 0-65535 (got {v})"


def _hostports(v: Any) -> str | None:
    for item in v:
        if not isinstance(item, str):
            return "must be a list of host:port strings"
        try:
            parse_hostport(item)
        except ValueError as exc:
            return str(exc)
    return None


def _hostport(v: Any) -> str | None:
    if not v:
        return None
    try:
        parse_hostport(v)
    except ValueError as exc:
        return str(exc)
    return None


def _tls_policies(v: Any) -> str | None:
    for domain, mode in v.items():
        if not isinstance(mode, str) or mode not in (*TLS_MODES, "none"):
            return f"{domain!r} must map to one of {', '.join((*TLS_MODES, 'none'))}"
        if not domain or " " in domain:
            return f"{domain!r} is not a domain (use .example.com for every subdomain)"
    return None


def _cidrs(v: Any) -> str | None:
    for item in v:
        if not isinstance(item, str):
            return "must be a list of CIDR strings"
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            return f"{item!r} is not a CIDR network (e.g. 10.0.0.0/8 or 127.0.0.1)"
    return None


def _url(v: Any) -> str | None:
    return (
        None
        if v.startswith(("http://", "https://")) and len(v) > 8
        else f"must be an http(s) URL (got {v!r})"
    )


#: A configuration file is a few KiB; anything this large is the wrong file.
MAX_CONFIG_BYTES = 1024 * 1024


def load(path: str | Path) -> Settings:
    """Read and validate ``path``. Raises ConfigError listing every problem (never another
    exception, whatever the file holds)."""
    cfg_path = Path(path)
    try:
        with cfg_path.open("rb") as f:
            blob = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{cfg_path}: cannot read: {exc.strerror or exc}"]) from None
    if len(blob) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{cfg_path}: larger than 1 MiB: not a relaygate configuration"])
    try:
        raw = blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"{cfg_path}: not UTF-8 text (byte {exc.start}): is this the configuration file?"]
        ) from None
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{cfg_path}: not valid TOML: {exc}"]) from None
    except RecursionError:
        raise ConfigError(
            [f"{cfg_path}: not valid TOML: arrays or tables nested too deeply"]
        ) from None
    return from_mapping(data, path=cfg_path)


def from_mapping(data: Mapping[str, Any], *, path: Path) -> Settings:
    problems: list[str] = []
    base = path.resolve().parent
    top = _Reader(data, "", problems)

    def resolve(p: str) -> Path:
        candidate = Path(p).expanduser()
        return candidate if candidate.is_absolute() else base / candidate

    state_dir = resolve(top.get("state_dir", str, "./var", _path))
    hostname = top.get(
        "hostname",
        str,
        "localhost",
        lambda v: None if v and " " not in v else "must be a host name",
    )
    secret_key_file = top.get("secret_key_file", str, "", _path)
    log_level = top.get("log_level", str, "info", _one_of(("debug", "info", "warning", "error")))
    log_json = top.get("log_json", bool, True)

    h = _Reader(top.table("http"), "http", problems)
    http = HttpSettings(
        listen=h.get("listen", str, "127.0.0.1:8025", _hostport),
        public_url=h.get("public_url", str, "", _url).rstrip("/") or "",
        max_request_bytes=h.get("max_request_bytes", int, 25 * 1024 * 1024, _positive),
        auth_failure_limit=h.get("auth_failure_limit", int, 10, _positive),
        auth_failure_window=float(h.get("auth_failure_window", (int, float), 300.0, _positive)),
        header_timeout=float(h.get("header_timeout", (int, float), 10.0, _positive)),
        idle_timeout=float(h.get("idle_timeout", (int, float), 30.0, _positive)),
        max_connections=h.get("max_connections", int, 1000, _positive),
        render_workers=h.get("render_workers", int, 4, _positive),
        trusted_proxies=tuple(h.get("trusted_proxies", list, [], _cidrs)),
    )
    if not http.public_url:
        host, port = parse_hostport(http.listen) if http.listen else ("127.0.0.1", 8025)
        http = dataclasses.replace(http, public_url=f"http://{host}:{port}")
    h.finish()

    s = _Reader(top.table("smtp"), "smtp", problems)
    trusted_raw = s.get("trusted_networks", dict, {})
    trusted: dict[str, int] = {}
    for cidr, account in trusted_raw.items():
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            problems.append(f"smtp.trusted_networks: {cidr!r} is not a CIDR network")
            continue
        if not isinstance(account, int) or isinstance(account, bool):
            problems.append(f"smtp.trusted_networks: {cidr!r} must map to an account id (integer)")
            continue
        trusted[cidr] = account
    smtp = SmtpSettings(
        listen=tuple(s.get("listen", list, ["127.0.0.1:2525"], _hostports)),
        tls_listen=tuple(s.get("tls_listen", list, [], _hostports)),
        tls_cert=str(resolve(v)) if (v := s.get("tls_cert", str, "", _path)) else "",
        tls_key=str(resolve(v)) if (v := s.get("tls_key", str, "", _path)) else "",
        auth_require_tls=s.get("auth_require_tls", bool, True),
        trusted_networks=trusted,
        max_message_bytes=s.get("max_message_bytes", int, 25 * 1024 * 1024, _positive),
        max_recipients=s.get("max_recipients", int, 50, _positive),
        timeout=float(s.get("timeout", (int, float), 300.0, _positive)),
        auth_failure_limit=s.get("auth_failure_limit", int, 10, _positive),
        auth_failure_window=float(s.get("auth_failure_window", (int, float), 300.0, _positive)),
        max_connections=s.get("max_connections", int, 100, _positive),
        max_connections_per_client=s.get("max_connections_per_client", int, 50, _positive),
    )
    if bool(smtp.tls_cert) != bool(smtp.tls_key):
        problems.append("smtp: tls_cert and tls_key must be given together")
    if smtp.tls_listen and not smtp.tls_cert:
        problems.append("smtp.tls_listen: needs tls_cert and tls_key")
    s.finish()

    d = _Reader(top.table("delivery"), "delivery", problems)
    delivery = DeliverySettings(
        mode=d.get("mode", str, "mx", _one_of(DELIVERY_MODES)),
        mx_port=d.get("mx_port", int, 25, _port),
        capture_dir=str(resolve(v)) if (v := d.get("capture_dir", str, "", _path)) else "",
        smarthost=d.get("smarthost", str, "", _hostport),
        smarthost_tls=d.get("smarthost_tls", str, "starttls", _one_of(SMARTHOST_TLS)),
        smarthost_user=d.get("smarthost_user", str, ""),
        smarthost_password=d.get("smarthost_password", str, ""),
        smarthost_sync=d.get("smarthost_sync", bool, False),
        smarthost_ca_file=str(resolve(v))
        if (v := d.get("smarthost_ca_file", str, "", _path))
        else "",
        tls=d.get("tls", str, "opportunistic", _one_of(TLS_MODES)),
        tls_policies=d.get("tls_policies", dict, {}, _tls_policies),
        min_backoff=float(d.get("min_backoff", (int, float), 300.0, _positive)),
        max_backoff=float(d.get("max_backoff", (int, float), 4000.0, _positive)),
        lifetime=float(d.get("lifetime", (int, float), 5 * 86400.0, _positive)),
        concurrency=d.get("concurrency", int, 50, _positive),
        per_domain_concurrency=d.get("per_domain_concurrency", int, 20, _positive),
        lease_seconds=float(d.get("lease_seconds", (int, float), 900.0, _positive)),
        max_lease_losses=d.get("max_lease_losses", int, 5, _positive),
        batch_size=d.get("batch_size", int, 100, _positive),
        connection_cache_seconds=float(
            d.get("connection_cache_seconds", (int, float), 2.0, _not_negative)
        ),
    )
    if delivery.mode == "smarthost" and not delivery.smarthost:
        problems.append("delivery.smarthost: required when delivery.mode is 'smarthost'")
    if delivery.min_backoff > delivery.max_backoff:
        problems.append("delivery.min_backoff: must not exceed max_backoff")
    if 0 < delivery.lease_seconds <= LONGEST_SMTP_WAIT:
        problems.append(
            f"delivery.lease_seconds: must exceed the longest SMTP wait of a delivery attempt"
            f" ({LONGEST_SMTP_WAIT:g} s, the reply to the end of DATA)"
        )
    d.finish()

    n = _Reader(top.table("dns"), "dns", problems)
    servers: list[tuple[str, int]] = []
    for item in n.get(
        "nameservers",
        list,
        [],
        lambda v: None if all(isinstance(x, str) for x in v) else "must be a list of strings",
    ):
        try:
            host, port = parse_hostport(item, default_port=53)
            ipaddress.ip_address(host)
        except ValueError:
            problems.append(f"dns.nameservers: {item!r} is not an IP address (host or host:port)")
            continue
        servers.append((host, port))
    dns_settings = DnsSettings(
        nameservers=tuple(servers), timeout=float(n.get("timeout", (int, float), 5.0, _positive))
    )
    n.finish()

    b = _Reader(top.table("bounces"), "bounces", problems)
    bounces = BounceSettings(
        return_path_domain=b.get("return_path_domain", str, "").rstrip(".").lower(),
        feedback_address=b.get("feedback_address", str, "").lower(),
        max_report_bytes=b.get("max_report_bytes", int, 2 * 1024 * 1024, _positive),
        reports_per_minute=b.get("reports_per_minute", int, 60, _positive),
        report_retention=float(b.get("report_retention", (int, float), 7 * 86400.0, _positive)),
    )
    b.finish()

    w = _Reader(top.table("webhooks"), "webhooks", problems)
    webhooks = WebhookSettings(
        allow_private=w.get("allow_private", bool, False),
        timeout=float(w.get("timeout", (int, float), 10.0, _positive)),
        concurrency_per_endpoint=w.get("concurrency_per_endpoint", int, 4, _positive),
    )
    w.finish()

    dm = _Reader(top.table("domains"), "domains", problems)
    domains = DomainSettings(
        recheck_interval=float(dm.get("recheck_interval", (int, float), 6 * 3600.0, _positive)),
        dkim_grace=float(dm.get("dkim_grace", (int, float), 7 * 86400.0, _positive)),
        failure_grace=float(dm.get("failure_grace", (int, float), 72 * 3600.0, _positive)),
    )
    dm.finish()

    t = _Reader(top.table("tracking"), "tracking", problems)
    tracking = TrackingSettings(
        token_lifetime=float(t.get("token_lifetime", (int, float), 365 * 86400.0, _positive)),
    )
    t.finish()
    mt = _Reader(top.table("metrics"), "metrics", problems)
    metrics = MetricsSettings(listen=mt.get("listen", dict, {}, _metrics_listen))
    mt.finish()
    db = _Reader(top.table("dashboard"), "dashboard", problems)
    dashboard = DashboardSettings(
        enabled=db.get("enabled", bool, True),
        allow_from=tuple(db.get("allow_from", list, [], _cidrs)),
        operator_contact=db.get("operator_contact", str, ""),
    )
    db.finish()

    top.finish()

    if problems:
        raise ConfigError([f"{path}: {p}" for p in problems])
    return Settings(
        path=path,
        state_dir=state_dir,
        hostname=hostname,
        secret_key_file=resolve(secret_key_file) if secret_key_file else state_dir / "secret.key",
        http=http,
        smtp=smtp,
        delivery=delivery,
        dns=dns_settings,
        bounces=bounces,
        webhooks=webhooks,
        domains=domains,
        tracking=tracking,
        metrics=metrics,
        dashboard=dashboard,
        log_level=log_level,
        log_json=log_json,
    )
