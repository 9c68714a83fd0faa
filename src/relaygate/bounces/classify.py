"""Bounce classification: one function for synchronous SMTP replies and asynchronous DSNs.

Owns the mapping from what a remote system said (reply code, enhanced status code, free diagnostic
text, optionally the remote MTA's name) to a `Classification`: a reason from Sisimai's vocabulary
and `hard` or `soft`.

Rules, in order:

1. The diagnostic text is matched against wording used by real MTAs and mailbox providers
   (Postfix, Exim, Sendmail, qmail, Exchange/Office 365, Gmail, Yahoo, AOL, Apple, French and
   Japanese providers...). The first reason whose patterns match wins; the table is ordered from
   the most specific wording to the most generic.
2. Otherwise the enhanced status code (RFC 3463) decides, then the basic reply code.
3. Nothing recognisable gives `undefined` (5xx / permanent) or `onhold`-free `undefined` (4xx).

`hard` only for a reason that says the address can never work (userunknown, hostunknown,
hasmoved, notaccept) reported as a permanent (5xx / 5.x.x) failure; policy, reputation and spam
blocks are soft. An unknown reason is always soft: suppressing on a guess is the costly mistake.

Trusts nothing in its input: any strings, any lengths (the text is truncated before matching).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

BounceType = Literal["hard", "soft"]

#: Sisimai's reason vocabulary (plus ``feedback``, ``vacation`` and ``delivered`` used elsewhere).
REASONS: Final = frozenset(
    {
        "userunknown",
        "hostunknown",
        "hasmoved",
        "notaccept",
        "mailboxfull",
        "mesgtoobig",
        "exceedlimit",
        "filtered",
        "blocked",
        "rejected",
        "policyviolation",
        "spamdetected",
        "virusdetected",
        "contenterror",
        "securityerror",
        "authfailure",
        "badreputation",
        "requireptr",
        "norelaying",
        "notcompliantrfc",
        "syntaxerror",
        "systemerror",
        "systemfull",
        "mailererror",
        "networkerror",
        "toomanyconn",
        "speeding",
        "suspend",
        "expired",
        "onhold",
        "failedstarttls",
        "undefined",
    }
)

#: The only reasons that make a bounce hard: the address itself will never work.
HARD_REASONS: Final = frozenset({"userunknown", "hostunknown", "hasmoved", "notaccept"})

_MAX_TEXT = 4000


@dataclass(frozen=True, kw_only=True)
class Classification:
    """What a failure means for the recipient address."""

    bounce_type: BounceType
    reason: str


# --- diagnostic wording ------------------------------------------------------------------------
# Each entry: (reason, patterns). Patterns are regular expressions over the diagnostic text,
# lower-cased with runs of whitespace collapsed to one space. Order matters: earlier wins.

_P = list[tuple[str, tuple[str, ...]]]

_TEXT_RULES: _P = [
    (
        # Wording that names the sender as the problem (checked before "does not exist").
        "rejected",
        (
            r"\bsender (?:address )?(?:rejected|refused|denied|verify failed|verification failed)",
            r"\bdomain of sender (?:address )?.*(?:does not exist|not resolve|not found)",
            r"\bsender (?:domain|address) (?:must exist|does not exist|not found|is invalid|unknown)",
            r"\bpurported responsible address\b",
            r"\bbad sender'?s? (?:system |mailbox )?address\b",
            r"\bunknown sender\b",
            r"\binvalid sender\b",
            r"\bgroup you tried to contact\b",
            # Google Groups refusing a post (non-member, no such group), in any language.
            r"\bgroups\.google\.com/support\b",
        ),
    ),
    (
        "mailererror",
        (
            r"\bcommand (?:died|failed|output)",
            r"\bprocmail\b",
            r"\bpipe to \|",
            r"\bmailer error\b",
        ),
    ),
    (
        "notcompliantrfc",
        (
            r"\brfc ?(?:5322|2822|822)\b",
            r"\bnot (?:rfc[- ]?)?compliant\b",
            r"\bmultiple (?:\w+ )?(?:headers?|fields?)\b",
            r"\bduplicate (?:\S+ )?headers?\b",
            r"\bduplicate header",
        ),
    ),
    (
        "policyviolation",
        (
            r"content presents a potential",
            r"\bpolicy violation\b",
            r"\bviolates? (?:our|the) (?:\w+ )?polic",
        ),
    ),
    (
        "blocked",
        (
            r"\bclient host (?:\[[^\]]*\] )?(?:blocked|blacklisted)",
            r"\bip (?:address )?(?:source )?(?:\S+ )?(?:is )?(?:blocked|bloquee|bloquée|blacklisted|blocklisted)",
            r"\bblocked using\b",
            r"\bunusual rate of unsolicited mail originating from your ip",
            r"\b(?:black|block|deny) ?list(?:ed)?\b",
            r"\bsmtp server of your (?:isp|provider|internet service provider)",
            r"\bspamhaus\b",
            r"\bdnsbl\b",
        ),
    ),
    (
        "virusdetected",
        (
            r"\bvirus",
            r"\bmalware\b",
            r"\binfected\b",
            r"\btrojan\b",
            r"\bworm\b.*\bdetected",
        ),
    ),
    (
        "expired",
        (
            r"retry timeout exceeded",
            r"retry time not reached for any host after a long failure period",
            r"delivery time expired",
            r"message expired",
            r"has been expired",
            r"too long in (?:the )?queue",
            r"could not be delivered (?:with)?in (?:the last )?\d+ (?:days?|hours?)",
            r"(?:was|were|has|have) not been delivered (?:for|in) (?:the last )?\d+ (?:days?|hours?)",
            r"not (?:been )?delivered within \d+",
            r"queue ?lifetime",
            r"message timed out",
            r"maximum (?:queue )?time (?:was )?exceeded",
            r"delivery attempts will continue",
            r"will (?:be )?retried for",
            r"failed \d+ attempts",
            r"(?:delivery|connection) attempts? (?:failed|exhausted)",
            r"giving up on .* after",
            r"unable to deliver .* within",
            r"for \d+ (?:hours?|days?)\b.*\b(?:unable|undeliver|not deliver)",
            r"(?:unable|could not|couldn't) (?:to )?(?:deliver|connect).* for \d+ (?:hours?|days?)",
            r"expired after",
            r"undeliverable for \d+",
            r"message has been in the queue",
            r"this is a delivery status notification, not an error"
            r"|delay(?:ed)? delivery notification",
            r"server (?:has )?(?:been )?retrying for",
        ),
    ),
    (
        "mailboxfull",
        (
            r"mailbox (?:is )?full",
            r"mail ?box (?:is )?full",
            r"\bmailbox (?:has )?exceeded",
            r"\bover ?quota\b",
            r"\bquota (?:exceeded|full|violation|exceed)",
            r"exceeded (?:the |his |her |their )?(?:storage|quota|mailbox)",
            r"exceed(?:s|ed|ing)? (?:the )?(?:mailbox|storage|disk) (?:quota|size|limit|allocation)",
            r"\bdisk quota\b",
            r"insufficient (?:user )?(?:storage|quota|disk space) for (?:user|recipient)",
            r"(?:user|recipient|account|mailbox)(?:'s)? (?:is )?(?:over|exceed\w*) (?:the )?(?:quota|storage|limit)",
            r"mailbox (?:size|quota|storage) (?:limit|exceeded)",
            r"(?:mailbox|inbox|account|storage) (?:is )?(?:full|out of (?:storage|space))",
            r"not enough (?:storage|space) (?:in|for) (?:the )?(?:mailbox|user|recipient)",
            r"user has (?:too many messages|exhausted allowed storage)",
            r"as their mailbox is full",
            r"\bmailfolder is full\b",
            r"mail quota",
            r"\bfull mailbox\b",
            r"\bquota\b.*\bexceed",
        ),
    ),
    (
        "mesgtoobig",
        (
            r"message (?:is )?too (?:big|large)",
            r"message (?:size|length) (?:exceeds|is larger|too)",
            r"(?:exceeds|exceeded|larger than|over) (?:the )?(?:maximum |max )?(?:allowed )?(?:message )?size",
            r"size (?:limit )?exceeded",
            r"message size \d+ exceeds",
            r"mail (?:is )?too (?:big|large)",
            r"(?:email|mail|message) size (?:limit|exceeds)",
            r"too big for (?:the )?system",
            r"message file too big",
        ),
    ),
    (
        "exceedlimit",
        (
            r"message length exceeds administrative limit",
            r"exceeds? (?:the )?(?:per-)?(?:recipient|user|mailbox)(?:'s)? (?:size )?limit",
        ),
    ),
    (
        "hostunknown",
        (
            r"\bunrouteable address\b",
            r"(?<![@\w.-])[a-z0-9-]+(?:\.[a-z0-9-]+)+\.? (?:does not exist|doesn't exist)",
            r"\bdomain (?:\S+ )?(?:does not exist|doesn't exist|not found)",
            r"\bhost (?:or domain )?(?:name )?(?:is )?(?:unknown|not found)",
            r"\bunknown host\b",
            r"\bdomain (?:name )?\S+ (?:couldn't|could not|can't|cannot) be found",
        ),
    ),
    (
        "hasmoved",
        (
            r"\bhas moved\b",
            r"\bmailbox has moved\b",
            r"address (?:has )?changed",
            r"\bno longer (?:uses|at|with) this address",
            r"\buser has moved\b",
        ),
    ),
    (
        "notaccept",
        (
            r"\bnull mx\b",
            r"\bno mx (?:record )?found\b",
            r"does not accept (?:any )?(?:e-?)?mail",
            r"(?:domain|host|system) (?:is )?not accepting (?:e-?)?mail",
            r"accepts no (?:e-?)?mail",
            r"not accept(?:ing)? (?:any )?messages",
            r"this (?:domain|host) (?:does not|doesn't) (?:receive|accept)",
        ),
    ),
    (
        "norelaying",
        (
            r"relay(?:ing)? (?:access )?(?:denied|not (?:permitted|allowed)|prohibited)",
            r"not (?:permitted|allowed|authori[sz]ed) to relay",
            r"(?:unable|cannot|can't) (?:to )?relay",
            r"we do not relay",
            r"\bno relaying\b",
            r"relay(?:ing)? (?:is )?(?:not permitted|denied|refused)",
            r"\brelay not permitted\b",
            r"not a gateway",
            r"not local host .*not a gateway",
            r"\bnot our customer\b",
            r"\brelaying mail to .* is not allowed",
            r"\bsorry, that domain isn't in my list of allowed rcpthosts",
        ),
    ),
    (
        "authfailure",
        (
            r"\bspf\b.*\b(?:fail|reject|not (?:permitted|authori[sz]ed)|check)",
            r"\b(?:fail(?:ed)?|failing)\b.*\bspf\b",
            r"\bdmarc\b",
            r"\bdkim\b.*\b(?:fail|invalid|missing|required)",
            r"\b(?:fail(?:ed)?|no valid)\b.*\bdkim\b",
            r"not authorized to send on behalf",
            r"sender policy framework",
            r"authentication (?:checks? )?fail",
            r"\bunauthenticated (?:e-?)?mail\b",
            r"\bmail is unauthenticated\b",
            r"\bauthenticate with .{0,30}\b(?:spf|dkim)\b",
            r"\bsender (?:is )?not authenticated\b",
        ),
    ),
    (
        "requireptr",
        (
            r"reverse (?:dns|lookup|resolution|mapping)",
            r"\bptr\b",
            r"\brdns\b",
            r"no (?:valid )?(?:reverse|hostname)",
            r"(?:cannot|can't|could not|couldn't|unable to) (?:find|resolve|look ?up) (?:your|the (?:client|sending)) (?:host ?name|ip|address)",
            r"client host .* (?:has no|without) (?:hostname|ptr|dns)",
            r"(?:ip|address) (?:has|with) no (?:reverse|ptr|hostname)",
            r"(?:hostname|helo) (?:does not|doesn't) (?:match|resolve)",
            r"cannot find your hostname",
            r"\bip name lookup failed\b",
            r"does not have a (?:reverse|ptr)",
            r"not resolve to (?:your|the) (?:ip|address)",
            r"\bunresolvable (?:client|host)",
            r"need(?:s)? fully[- ]qualified (?:host ?name|domain)",
        ),
    ),
    (
        "badreputation",
        (
            r"\breputation\b",
            r"\bsender score\b",
            r"\bsending volume\b",
            r"\buser complaints\b",
            r"\bunexpected volume\b",
            r"\bip (?:address )?(?:has )?(?:a )?(?:poor|low|bad)\b",
        ),
    ),
    (
        "spamdetected",
        (
            r"\bspam\b",
            r"\bspams\b",
            r"\bspam[- ]?(?:score|filter|detected|content|like|assassin)",
            r"\bunsolicited\b",
            r"\bjunk mail\b",
            r"\bbulk (?:e-?)?mail\b",
            r"\bcontent (?:filter|rejected)",
            r"message (?:content )?(?:was )?(?:rejected|refused|blocked) (?:due to|because of|as) (?:content|spam)",
            r"\bscored? (?:too high|above|over)\b",
            r"\blooks? like spam\b",
            r"\bphish",
            r"\bsuspicious (?:content|message|url|link)",
            r"\bmessage (?:has been |was )?(?:classified|identified|detected) as\b",
            r"\bblocked (?:due to|because of) (?:content|spam)",
            r"\bnot accepted due to .*(?:spam|content)",
            r"\bspamcop\b",
            r"\bbanned (?:content|phrase|url|words?)",
        ),
    ),
    (
        "speeding",
        (
            r"\brate limit",
            r"\brate[- ]limited\b",
            r"\btoo many (?:messages|mails|e-?mails|recipients)",
            r"\b(?:sending|receiving) (?:mail )?(?:at )?(?:a )?rate\b",
            r"\bat a rate that\b",
            r"\bexceeded (?:the )?(?:maximum )?(?:number of )?(?:messages|emails?|recipients)",
            r"\bthrottl",
            r"\bsending limit\b",
            r"\btoo (?:much|fast|frequent)",
            r"\bmessage rate\b",
        ),
    ),
    (
        "toomanyconn",
        (
            r"too many (?:\w+ ){0,2}connections",
            r"connection (?:count |rate )?limit",
            r"too many (?:sessions|smtp sessions)",
            r"maximum (?:number of )?connections",
        ),
    ),
    (
        "suspend",
        (
            r"\bsuspended\b",
            r"\b(?:account|mailbox|address|user|recipient) (?:is |has been |was )?(?:disabled|deactivated|inactive|locked|blocked|frozen|closed|terminated|expired|not active|discontinued|deleted)",
            r"\b(?:disabled|deactivated|inactive|locked|closed|expired) (?:account|mailbox|user)",
            r"\bmailbox (?:is )?(?:currently )?unavailable (?:or|and) (?:has been )?(?:disabled|suspended)",
            r"\bnot (?:an )?active (?:account|mailbox|user)",
            r"\bno longer (?:active|valid|in use|available)\b",
            r"\bhas been (?:disabled|deactivated|suspended|terminated)",
            r"\binactive\b",
            r"\b(?:account|mailbox) .{0,40}\bis (?:disabled|deactivated|suspended)",
            r"\bcompte (?:inactif|desactive|bloque)",
        ),
    ),
    (
        "userunknown",
        (
            r"\buser(?:name)? (?:is )?unknown\b",
            r"\bunknown (?:local[- ]?part|user|mailbox|recipient|address|alias|account|e-?mail)",
            r"\b(?:recipient|addressee|mailbox|address|account|user|destination) (?:address )?(?:is )?(?:unknown|not (?:found|known|listed|recogni[sz]ed|exist|valid|available))\b",
            r"\bno such (?:user|mailbox|recipient|address|account|person|local user|e-?mail|alias)",
            r"\b(?:user|recipient|mailbox|account|address|addressee|alias|person) (?:does not|doesn't|did not|don't|not) exists?\b",
            r"\b(?:does not|doesn't|did not|no longer|not) exists?\b",
            r"\binvalid (?:recipient|mailbox|user|address|e-?mail address|destination)",
            r"\b(?:bad|illegal|invalid) (?:destination )?(?:mailbox|recipient|user)",
            r"\bunknown or illegal (?:user|alias)",
            r"\bmailbox (?:not found|unavailable|does not exist|is not available|not available|invalid)",
            r"\brecipient (?:address )?rejected\b",
            r"\bno (?:mailbox|account|user) (?:here )?(?:by that name|found|with this)",
            r"\bno mailbox here by that name",
            r"\bnot (?:a )?(?:valid|known) (?:mailbox|user|recipient|address)",
            r"\bthe recipient name is not recognized",
            r"\brecipnotfound\b",
            r"\brecipient ?not ?found\b",
            r"\bnot listed in (?:domino directory|the directory|public name & address book)",
            r"\bthis user doesn't have a .* account",
            r"\bthe email account that you tried to reach does not exist",
            r"\baddress (?:not|no longer) (?:found|valid|in use|available)",
            r"\bundeliverable address\b",
            r"\bisn't a valid recipient",
            r"\bhas no account\b",
            r"\baddress (?:couldn't|could not|can't|cannot) be found",
            r"\baddress not found\b",
            r"\bcheck (?:if|that|whether) (?:the )?(?:e-?mail )?address is correct",
            r"\bno account (?:by that name|for)",
            r"\bdestinataire (?:inconnu|introuvable)",
            r"\badresse (?:inconnue|invalide|introuvable)",
            r"\bunbekannt\b",
            r"\bexistiert nicht\b",
            r"\bno valid recipients?\b",
            r"\bcannot find (?:the )?(?:recipient|user|mailbox)",
            r"\buser (?:not found|doesn't exist)",
            r"\baccount (?:not found|unavailable)",
            r"\bnot our user\b",
            r"\bmailbox name not allowed\b",
            r"\bbad destination mailbox address\b",
            r"\b(?:recipient|user)'s mailbox is unavailable",
            r"\brecipient (?:cannot|can't) be (?:found|resolved)",
            r"\bdelivery to the following recipients? failed permanently",
            r"\bmailbox unavailable\b",
            r"\buser unknown\b",
            r"\b(?:un)?known user\b",
            r"\baddressee unknown\b",
            r"\bnot a known user\b",
            r"\baddress rejected\b",
        ),
    ),
    (
        "hostunknown",
        (
            r"\bhost (?:or domain )?(?:name )?(?:is )?(?:unknown|not found)",
            r"\bunknown (?:host|domain|mail domain)",
            r"\b(?:domain|host) (?:name )?(?:does not exist|doesn't exist|not found|unknown|is invalid)",
            r"\bno such (?:domain|host)",
            r"\bname or service not known\b",
            r"\bnxdomain\b",
            r"\bunrouteable mail domain\b",
            r"\bunroutable (?:mail )?domain\b",
            r"\bmx (?:records? )?(?:point|lookup)",
            r"\bno (?:mx|a|dns) records?\b",
            r"\bno mx\b",
            r"\bdomain (?:name )?(?:lookup|resolution) failed",
            r"\bnon-existent (?:host|domain)",
            r"\bbad destination system address\b",
            r"\bdomain (?:is )?not (?:valid|configured|hosted|served)",
            r"\b(?:recipient|destination) domain (?:must exist|not found|does not exist)",
            r"\bhost not reachable\b",
            r"\bhost lookup did not complete\b",
            r"\bdomaine? (?:introuvable|inconnu|inexistant)",
            r"\bis not a valid (?:domain|host)",
            r"\bno route to (?:domain|host) for\b",
            r"\bcould not be resolved\b",
            r"\bdns (?:error|lookup)\b.*\bdomain\b",
        ),
    ),
    (
        "mailererror",
        (
            r"\bmailer error\b",
            r"\bcommand (?:died|failed|output)",
            r"\bexit (?:status|code)\b",
            r"\bx-unix;",
            r"\bprocmail\b",
            r"\bpipe to \|",
            r"\bunknown mailer error\b",
            r"\bservice unavailable.*\bcommand\b",
            r"\blocal delivery (?:failed|error)",
        ),
    ),
    (
        "notcompliantrfc",
        (
            r"\brfc ?(?:5322|2822|822|5321|2821|1123)\b",
            r"\bnot (?:rfc[- ]?)?compliant\b",
            r"\bmultiple (?:\w+ )?(?:headers?|fields?)\b",
            r"\bduplicate (?:\w+ )?headers?\b",
            r"\bmalformed (?:header|message)",
            r"\bmessage (?:is )?not (?:rfc|standards)",
            r"\bheaders? (?:is|are) (?:missing|invalid|malformed)",
            r"\bmissing (?:required )?(?:header|date|from|message-id)",
            r"\bbare (?:lf|linefeed|cr)\b",
        ),
    ),
    (
        "contenterror",
        (
            r"\bcontent[- ]type\b",
            r"\bmime\b",
            r"\bencoding\b",
            r"\b8[- ]?bit\b",
            r"\binvalid (?:header|character|content)",
            r"\bmedia (?:not supported|error)",
            r"\bconversion (?:required|failed)",
            r"\bline too long\b",
            r"\bheader (?:too long|error|line)",
            r"\battachment",
            r"\bcontent (?:error|not allowed|prohibited)",
            r"\bmessage header\b",
        ),
    ),
    (
        "policyviolation",
        (
            r"\bpolic(?:y|ies)\b",
            r"\bprohibited\b",
            r"\bviolat",
            r"\bnot allowed by\b",
            r"\bterms of service\b",
            r"\bacceptable use\b",
            r"\bcompliance\b",
            r"\bcountry\b",
        ),
    ),
    (
        "failedstarttls",
        (
            r"\bstarttls\b",
            r"\btls (?:is )?required\b",
            r"\bmust (?:issue|use|establish) (?:a )?(?:starttls|tls|secure)",
            r"\bencryption (?:is )?required\b",
            r"\btls (?:negotiation|handshake) fail",
        ),
    ),
    (
        "securityerror",
        (
            r"\bauthentication (?:is )?required\b",
            r"\bunauthenticated senders?\b",
            r"\bmust (?:be )?authenticat",
            r"\bsecurity (?:policy|error|violation|check|reasons)",
            r"\bcertificate\b",
            r"\bnot authori[sz]ed\b",
            r"\bunauthori[sz]ed\b",
            r"\bpermission denied\b",
            r"\baccess (?:is )?(?:not )?(?:allowed|permitted|restricted)",
            r"\bsender (?:is )?not allowed\b",
            r"\bcredentials\b",
        ),
    ),
    (
        "rejected",
        (
            r"\bsender (?:address )?(?:rejected|refused|denied|blocked|unknown|verify failed)",
            r"\bsender verif",
            r"\b(?:envelope )?sender (?:domain|address) (?:must exist|does not exist|not found|is invalid|unknown)",
            r"\bdomain of sender (?:address )?.*(?:does not exist|not resolve|not found)",
            r"\bbad sender\b",
            r"\binvalid sender\b",
            r"\bunknown sender\b",
            r"\bmail from (?:rejected|refused|denied|address)",
            r"\bsender (?:is )?(?:on|in) (?:the )?(?:recipient'?s? )?(?:block|black)(?:ed )?list",
            r"\brejected by (?:the )?recipient",
            r"\brefused by (?:the )?recipient",
            r"\bsender address\b",
            r"\bsender\b.*\b(?:rejected|refused|denied|blocked)\b",
            r"\bbad sender's (?:system|mailbox) address\b",
            r"\bnot (?:accepting|accept) mail from\b",
            r"\bno permission to post\b",
            r"\bdoes not have permission to post\b",
            r"\bnot (?:allowed|authori[sz]ed|permitted) to (?:post|send (?:e-?mail|messages) to)",
            r"\bdomain (?:of sender|in mail from)",
            r"\bgroup (?:may not exist|does not exist)",
        ),
    ),
    (
        "filtered",
        (
            r"\bfiltered\b",
            r"\bfilter(?:ing)? (?:rule|rejected|policy)",
            r"\bdomain filter\b",
            r"\buser (?:has )?(?:reject|refus|block)",
            r"\b(?:recipient|user) (?:does not|doesn't) (?:want|accept)",
            r"\bdelivery not authori[sz]ed\b",
            r"\bmessage (?:was )?refused by (?:the )?(?:user|recipient)",
            r"\bnot accepting mail from\b",
            r"\bblocked by (?:the )?(?:recipient|user)",
            r"\breceiving (?:mail|messages) (?:from .* )?(?:is )?(?:restricted|disabled)",
        ),
    ),
    (
        "blocked",
        (
            r"\bblock(?:ed|list|listed|ing)?\b",
            r"\bblacklist",
            r"\bdenylist",
            r"\bbanned\b",
            r"\bdnsbl\b",
            r"\brbl\b",
            r"\bspamhaus\b",
            r"\bbarracuda\b",
            r"\blisted (?:on|in|at|by)\b",
            r"\bclient host (?:\[[^\]]*\] )?rejected\b",
            r"\baccess denied\b",
            r"\b(?:your|the sending|the connecting|sender's|source) ip\b",
            r"\bconnection (?:refused|rejected|denied|dropped)",
            r"\brefused to talk to me\b",
            r"\bnot allowed to (?:connect|send)\b",
            r"\bservice (?:refused|denied|not available)\b",
            r"\bdeferred (?:due to|because of)\b",
            r"\bip (?:address )?(?:is )?(?:rejected|denied|not allowed)",
            r"\btemporarily (?:rejected|deferred|refused)",
            r"\bnot accepting (?:network )?messages\b",
            r"\bhelo\b",
            r"\bgreylist",
            r"\bgray ?list",
            r"\bseems to be a dynamic\b",
            r"\bdynamic (?:ip|address|pool)",
            r"\bresidential\b",
        ),
    ),
    (
        "toomanyconn",
        (r"\btoo many (?:connections|hosts)", r"\bconnection limit"),
    ),
    (
        "networkerror",
        (
            r"\bconnection (?:timed out|timeout|reset|closed|lost)",
            r"\btimed out\b",
            r"\btime(?:d)?[- ]?out\b",
            r"\blost connection\b",
            r"\bno route to\b",
            r"\bnetwork (?:is )?(?:unreachable|error)",
            r"\bhost (?:is )?(?:unreachable|down)\b",
            r"\bmail (?:forwarding )?loop",
            r"\brouting loop\b",
            r"\bloop(?:s)? (?:back|detected)",
            r"\btoo many hops\b",
            r"\bhop count exceeded\b",
            r"\btemporary (?:dns|lookup|name server) (?:failure|error)",
            r"\bdns (?:failure|error|timeout|problem)",
            r"\bname server\b",
            r"\bunable to connect\b",
            r"\bcould not connect\b",
            r"\bconnection (?:refused|failed)\b",
            r"\bhost name lookup fail",
            r"\bname server:",
            r"\bunexpected (?:end|eof|disconnect)",
        ),
    ),
    (
        "systemfull",
        (
            r"\bsystem (?:is )?full\b",
            r"\binsufficient (?:system )?storage\b",
            r"\bdisk (?:is )?full\b",
            r"\bout of (?:disk )?space\b",
            r"\bno space left\b",
            r"\bmail system full\b",
            r"\bspool (?:is )?full\b",
        ),
    ),
    (
        "syntaxerror",
        (
            r"\bsyntax error\b",
            r"\bcommand (?:not )?(?:unrecognized|recognized|implemented)",
            r"\bunrecognized command\b",
            r"\bbad (?:command|sequence)",
            r"\binvalid (?:command|argument|parameter)",
            r"\bnot implemented\b",
        ),
    ),
    (
        "systemerror",
        (
            r"\bsystem (?:error|failure|problem|config)",
            r"\binternal (?:server )?(?:error|failure|problem)",
            r"\bserver (?:error|failure|configuration)",
            r"\blocal (?:error|configuration error|problem)",
            r"\bconfiguration (?:error|problem)",
            r"\bmisconfigur",
            r"\btemporary (?:local )?(?:failure|problem|error)",
            r"\btry again later\b",
            r"\bresources? (?:temporarily )?unavailable",
            r"\bdatabase (?:error|failure)",
            r"\bi/o error\b",
            r"\bunable to (?:process|handle)",
            r"\bmessage relayed to non-compliant mailer\b",
        ),
    ),
]

_COMPILED: list[tuple[str, re.Pattern[str]]] = [
    (reason, re.compile("|".join(f"(?:{p})" for p in patterns))) for reason, patterns in _TEXT_RULES
]

# --- enhanced status codes (RFC 3463, RFC 7505, RFC 8601/7372 and friends) -------------------------

_STATUS_REASON: Final[dict[str, str]] = {
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
    "4.1": "expired",
    "4.2": "networkerror",
    "4.3": "systemerror",
    "4.4": "hostunknown",
    "4.5": "systemfull",
    "4.6": "networkerror",
    "4.7": "expired",
    "4.8": "networkerror",
    "5.0": "undefined",
    "5.1": "syntaxerror",
    "5.2": "syntaxerror",
    "5.3": "toomanyconn",
    "5.4": "systemerror",
    "5.5": "systemerror",
    "5.6": "syntaxerror",
    "6.0": "contenterror",
    "6.1": "contenterror",
    "6.2": "contenterror",
    "6.3": "contenterror",
    "6.5": "contenterror",
    "6.6": "contenterror",
    "6.7": "contenterror",
    "6.8": "contenterror",
    "6.9": "contenterror",
    "7.0": "securityerror",
    "7.1": "securityerror",
    "7.2": "securityerror",
    "7.3": "securityerror",
    "7.4": "securityerror",
    "7.5": "securityerror",
    "7.6": "securityerror",
    "7.7": "securityerror",
    "7.8": "securityerror",
    "7.9": "securityerror",
    "7.10": "failedstarttls",
    "7.11": "securityerror",
    "7.13": "suspend",
    "7.14": "securityerror",
    "7.15": "securityerror",
    "7.16": "mesgtoobig",
    "7.17": "hasmoved",
    "7.18": "hasmoved",
    "7.19": "securityerror",
    "7.20": "authfailure",
    "7.21": "authfailure",
    "7.22": "authfailure",
    "7.23": "authfailure",
    "7.24": "authfailure",
    "7.25": "requireptr",
    "7.26": "authfailure",
    "7.27": "notaccept",
    "7.28": "spamdetected",
    "7.29": "authfailure",
    "7.30": "failedstarttls",
}

# Temporary (4.x.x) codes whose meaning differs from the permanent one.
_TEMP_STATUS_REASON: Final[dict[str, str]] = {
    "1.1": "undefined",
    "2.1": "blocked",
    "4.4": "networkerror",
    "4.0": "networkerror",
    "7.1": "blocked",
    "7.0": "blocked",
    "3.0": "systemerror",
    "5.0": "networkerror",
}

#: Codes Sisimai derives when a message carries no enhanced status code (x.0.9yy).
_DERIVED_CODE: Final[dict[str, int]] = {
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

_STATUS_RE = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})$")
_ADDR_IN_TEXT_RE = re.compile(r"[^\s<>()\[\]\"',;:]+@[^\s<>()\[\]\"',;:]+")
_WS_RE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Lower-case, collapse whitespace, blank out addresses (a local part such as "spam" or
    "user.unknown" must not be read as wording), cap the length."""
    text = _ADDR_IN_TEXT_RE.sub("<addr>", text[:_MAX_TEXT])
    return _WS_RE.sub(" ", text).strip().lower()


def reason_from_text(diagnostic: str) -> str | None:
    """The reason the diagnostic wording names, or None when nothing is recognised."""
    text = normalise_text(diagnostic)
    if not text:
        return None
    for reason, pattern in _COMPILED:
        if pattern.search(text):
            return reason
    return None


def reason_from_status(status: str | None) -> str | None:
    """The reason an enhanced status code ("5.1.1") implies, or None."""
    if not status:
        return None
    m = _STATUS_RE.match(status.strip())
    if m is None:
        return None
    klass, subject, detail = m.group(1), m.group(2), m.group(3)
    if klass == "2":
        return None
    if subject == "0" and len(detail) == 3 and detail.startswith("9"):
        # A derived x.0.9yy code: map it back.
        code = int(detail)
        for reason, value in _DERIVED_CODE.items():
            if value == code:
                return reason
        return None
    key = f"{int(subject)}.{int(detail)}"
    if klass == "4" and key in _TEMP_STATUS_REASON:
        return _TEMP_STATUS_REASON[key]
    return _STATUS_REASON.get(key)


def is_temporary(*, smtp_code: int | None, status: str | None) -> bool:
    """True when the failure is reported as transient (4.x.x or 4xx)."""
    if status:
        m = _STATUS_RE.match(status.strip())
        if m is not None:
            return m.group(1) == "4"
    if smtp_code is not None:
        return 400 <= smtp_code < 500
    return False


def bounce_type_for(reason: str, *, temporary: bool) -> BounceType:
    """`hard` only for an address-level permanent failure."""
    return "hard" if reason in HARD_REASONS and not temporary else "soft"


def classify(
    *,
    smtp_code: int | None,
    status: str | None,
    diagnostic: str,
    remote_mta: str | None = None,
    gave_up: bool = False,
) -> Classification:
    """Classify one failure report (an SMTP reply at delivery time, or one DSN recipient).

    `smtp_code` is the basic reply code (550), `status` the enhanced code ("5.1.1"), `diagnostic`
    the reply or Diagnostic-Code text, `remote_mta` the remote host's name if known (used only as
    a hint for provider-specific wording). `gave_up` says the reporter stopped trying although
    the last error was temporary (a DSN with Action: failed and a 4.x.x status): timeouts then
    mean `expired`. Never raises.
    """
    temporary = is_temporary(smtp_code=smtp_code, status=status)
    text = normalise_text(diagnostic) if diagnostic else ""
    reason = reason_from_text(text) if text else None
    if reason is None and remote_mta:
        reason = _provider_hint(remote_mta, text)
    if reason is None:
        reason = reason_from_status(status)
    if reason is None and smtp_code is not None:
        reason = _reason_from_reply_code(smtp_code)
    if reason is None:
        reason = "undefined"
    reason = _refine(reason, text=text, status=status or "", temporary=temporary, gave_up=gave_up)
    return Classification(bounce_type=bounce_type_for(reason, temporary=temporary), reason=reason)


_STAGE_MAIL_RE = re.compile(r"(?:after|in reply to) mail from|mail from command|>>> mail from")
_STAGE_DATA_RE = re.compile(
    r"(?:after|in reply to) (?:end of )?data\b|end of data command|after sending (?:the )?message"
)
_STAGE_CONNECT_RE = re.compile(
    r"after initial connection|(?:in reply to|after) (?:helo|ehlo)\b|in reply to (?:the )?greeting"
    r"|refused to talk to me"
)
_TIMEOUT_RE = re.compile(
    r"timed out|time-?out|connection refused|no route to host|could not connect|unable to connect"
    r"|not accept our requests to connect|host (?:is )?unreachable|network is unreachable"
)
_IP_WORDS_RE = re.compile(
    r"\b(?:ip|ips|rbl|dnsbl|listed|black ?list|block ?list|spamhaus|isp|provider|network)\b"
)


_SENDER_STAGE_REASONS = frozenset(
    {"userunknown", "hostunknown", "undefined", "filtered", "suspend", "notaccept", "systemerror"}
)


def _refine(reason: str, *, text: str, status: str, temporary: bool, gave_up: bool) -> str:
    """Context that changes what the same words mean: SMTP stage, status family, finality."""
    m = _STATUS_RE.match(status.strip()) if status else None
    subject = m.group(2) if m else ""
    detail = m.group(3) if m else ""
    # Refused at MAIL FROM: it is the sender that was not wanted.
    at_mail = _STAGE_MAIL_RE.search(text) and not _STAGE_DATA_RE.search(text)
    sender_words = reason in _SENDER_STAGE_REASONS or (
        reason == "blocked" and not _IP_WORDS_RE.search(text)
    )
    if at_mail and sender_words:
        return "rejected"
    if reason == "userunknown" and (
        subject == "7" or (subject in {"", "0", "2"} and _STAGE_DATA_RE.search(text))
    ):
        # "User unknown" after the recipient was accepted, or with a policy status code, is a
        # content or domain filter speaking, not a verdict on the mailbox.
        return "filtered"
    connect_refused = not temporary and _STAGE_CONNECT_RE.search(text)
    if reason in {"undefined", "networkerror", "systemerror", "securityerror"} and connect_refused:
        return "blocked"
    if reason in {"userunknown", "suspend"} and subject == "1" and detail == "6":
        return "hasmoved"
    if reason == "mesgtoobig" and subject == "2" and detail == "3":
        return "exceedlimit"
    if reason == "hostunknown" and temporary:
        return "networkerror"
    if (
        gave_up
        and reason in {"networkerror", "undefined"}
        and (reason == "undefined" or _TIMEOUT_RE.search(text))
    ):
        return "expired"
    return reason


def classify_expired() -> Classification:
    """The classification for a recipient given up after the queue lifetime: a soft `expired`."""
    return Classification(bounce_type="soft", reason="expired")


def derived_status(reason: str, *, temporary: bool) -> str:
    """A status code for a failure that carried none: Sisimai's x.0.9yy convention.

    The x.0.9yy codes are not RFC 3463 codes, so a consumer can tell a derived code from one
    the remote system reported.
    """
    code = _DERIVED_CODE.get(reason)
    if code is None:
        return ""
    return f"{4 if temporary else 5}.0.{code}"


def _reason_from_reply_code(code: int) -> str | None:
    return {
        421: "systemerror",
        450: "undefined",
        451: "systemerror",
        452: "systemfull",
        552: "mailboxfull",
        553: "userunknown",
        554: "undefined",
        550: "undefined",
        551: "hasmoved",
    }.get(code)


def _provider_hint(remote_mta: str, text: str) -> str | None:
    """Provider wording that is too generic to trust without knowing who said it."""
    host = remote_mta.lower()
    if ("yahoo" in host or "aol" in host) and text.startswith("554 delivery error"):
        return "userunknown"
    if ("outlook" in host or "hotmail" in host) and "mailbox unavailable" in text:
        return "userunknown"
    return None
