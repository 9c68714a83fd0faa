"""Enhanced status codes (RFC 3463 and the registry's later additions) and the reasons they name.

Owns: reading a status code ("5.1.1") safely, whether a failure is temporary, the reason a code
names in Sisimai's vocabulary (class 4 and class 5 differ: 4.7.1 is a temporary block, 5.7.1 a
security or policy refusal), and Sisimai's derived x.0.9yy codes for failures that carried none.

Trusts nothing in its input: any strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

_STATUS_RE = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})$")


@dataclass(frozen=True, kw_only=True)
class StatusCode:
    klass: str  # "2", "4" or "5"
    subject: int
    detail: int

    @property
    def key(self) -> str:
        return f"{self.subject}.{self.detail}"

    @property
    def derived(self) -> bool:
        """A Sisimai x.0.9yy code (made up for a failure that carried none), not an RFC one."""
        return self.subject == 0 and 900 <= self.detail <= 999


def parse_status(status: str | None) -> StatusCode | None:
    """The code in `status` ("5.1.1"), or None when it is not one."""
    if not status:
        return None
    m = _STATUS_RE.match(status.strip())
    if m is None:
        return None
    return StatusCode(klass=m.group(1), subject=int(m.group(2)), detail=int(m.group(3)))


# What a permanent (5.x.x) code names. Codes absent here name nothing on their own.
_PERMANENT: Final[dict[str, str]] = {
    "1.0": "userunknown",
    "1.1": "userunknown",
    "1.2": "hostunknown",
    "1.3": "userunknown",
    "1.4": "filtered",
    "1.6": "hasmoved",
    "1.7": "rejected",
    "1.8": "rejected",
    "1.9": "systemerror",
    "1.10": "notaccept",
    "2.0": "filtered",
    "2.1": "filtered",
    "2.2": "mailboxfull",
    "2.3": "exceedlimit",
    "2.4": "filtered",
    "3.0": "systemerror",
    "3.1": "systemfull",
    "3.2": "notaccept",
    "3.3": "systemerror",
    "3.4": "mesgtoobig",
    "3.5": "systemerror",
    "4.0": "networkerror",
    "4.3": "systemerror",
    "4.4": "hostunknown",
    "4.7": "expired",
    "5.2": "syntaxerror",
    "5.3": "toomanyconn",
    "5.4": "systemerror",
    "5.5": "systemerror",
    "5.6": "syntaxerror",
    **{f"6.{d}": "contenterror" for d in (0, 1, 2, 3, 5, 6, 7, 8, 9)},
    **{f"7.{d}": "securityerror" for d in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 15, 19)},
    "7.13": "suspend",
    "7.16": "mesgtoobig",
    "7.17": "hasmoved",
    "7.18": "hasmoved",
    **{f"7.{d}": "authfailure" for d in (20, 21, 22, 23, 24, 26, 29)},
    "7.25": "requireptr",
    "7.27": "notaccept",
    "7.28": "spamdetected",
    "7.30": "failedstarttls",
}

# What a temporary (4.x.x) code names: a 4.7.1 is a block to retry, not a security refusal,
# and 4.1.1 ("user unknown, try later") names nothing for sure.
_TEMPORARY: Final[dict[str, str]] = {
    "1.6": "hasmoved",
    "1.7": "rejected",
    "1.8": "rejected",
    "1.9": "systemerror",
    "2.1": "blocked",
    "2.2": "mailboxfull",
    "2.3": "exceedlimit",
    "2.4": "filtered",
    "3.1": "systemfull",
    "3.2": "notaccept",
    "3.3": "systemerror",
    "3.5": "systemerror",
    "4.1": "expired",
    "4.2": "networkerror",
    "4.3": "systemerror",
    "4.4": "networkerror",
    "4.5": "systemfull",
    "4.6": "networkerror",
    "4.7": "expired",
    "4.8": "networkerror",
    "5.3": "systemerror",
    "5.5": "systemerror",
    "6.0": "contenterror",
    "6.2": "contenterror",
    "6.5": "contenterror",
    "7.1": "blocked",
    "7.2": "blocked",
    **{f"7.{d}": "securityerror" for d in (5, 6, 7, 12, 15)},
    "7.16": "mesgtoobig",
    "7.24": "authfailure",
    "7.25": "requireptr",
    "7.26": "authfailure",
}

#: Sisimai's derived codes (x.0.9yy) for a failure that carried no status code.
DERIVED_CODE: Final[dict[str, int]] = {
    "authfailure": 926,
    "badreputation": 975,
    "blocked": 971,
    "contenterror": 960,
    "exceedlimit": 923,
    "expired": 947,
    "failedstarttls": 976,
    "filtered": 910,
    "hasmoved": 916,
    "hostunknown": 912,
    "mailboxfull": 922,
    "mailererror": 939,
    "mesgtoobig": 934,
    "networkerror": 944,
    "norelaying": 909,
    "notaccept": 932,
    "notcompliantrfc": 974,
    "onhold": 901,
    "policyviolation": 972,
    "rejected": 918,
    "requireptr": 973,
    "securityerror": 970,
    "spamdetected": 980,
    "speeding": 946,
    "suspend": 921,
    "systemerror": 930,
    "systemfull": 931,
    "syntaxerror": 902,
    "toomanyconn": 945,
    "userunknown": 911,
    "undefined": 900,
    "virusdetected": 981,
}
_DERIVED_REASON: Final[dict[int, str]] = {code: reason for reason, code in DERIVED_CODE.items()}


def reason_from_status(status: str | None) -> str | None:
    """The reason an enhanced status code ("5.1.1", or a derived "5.0.911") names, or None."""
    code = parse_status(status)
    if code is None or code.klass == "2":
        return None
    if code.derived:
        return _DERIVED_REASON.get(code.detail)
    table = _TEMPORARY if code.klass == "4" else _PERMANENT
    return table.get(code.key)


def is_temporary(*, smtp_code: int | None, status: str | None) -> bool:
    """True when the failure is reported as transient (4.x.x, or 4xx without a status)."""
    code = parse_status(status)
    if code is not None:
        return code.klass == "4"
    if smtp_code is not None:
        return 400 <= smtp_code < 500
    return False


def derived_status(reason: str, *, temporary: bool) -> str:
    """A status code for a failure that carried none: Sisimai's x.0.9yy convention.

    The x.0.9yy codes are not RFC 3463 codes, so a consumer can tell a derived code from one
    the remote system reported.
    """
    code = DERIVED_CODE.get(reason)
    if code is None:
        return ""
    return f"{4 if temporary else 5}.0.{code}"
