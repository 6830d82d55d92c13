"""Reading inbound mail: loop detection, the text a person wrote (HTML to text, quoted history
and signatures stripped), attachments listed (never opened), thread references."""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser

MAX_BODY = 20_000  # characters of body text kept (the engine and the store get at most MAX_TEXT)

_QUOTE_HEADERS = [
    re.compile(r"^\s*On .{3,200}wrote:\s*$", re.I),
    re.compile(r"^\s*20\d\d[./-].{0,120}(작성|wrote)", re.I),
    re.compile(r"^.{0,120}님이 작성(하신 글|함)?:?\s*$"),
    re.compile(
        r"^\s*-{2,}\s*(Original Message|원본 메시지|Forwarded message|전달된 메시지)\s*-{2,}", re.I
    ),
    re.compile(r"^\s*(From|보낸 사람)\s*:\s*.+$", re.I),
    re.compile(r"^\s*_{10,}\s*$"),
]
_CLOSING = re.compile(
    r"^\s*(thanks|thank you|many thanks|best|regards|best regards|kind regards|cheers|"
    r"감사합니다|고맙습니다|수고하세요)[,.!]*\s*$",
    re.I,
)
_SIGNATURE = [
    re.compile(r"^-- ?$"),
    re.compile(r"^(Sent from my |Get Outlook for |iPhone에서 보냄|Galaxy에서 보냄)", re.I),
]


class _Text(HTMLParser):
    BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "blockquote", "table", "hr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._quote = 0

    def handle_starttag(self, tag, attrs) -> None:
        if tag in ("script", "style", "head", "title"):
            self._skip += 1
        if tag == "blockquote":
            self._quote += 1
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag) -> None:
        if tag in ("script", "style", "head", "title") and self._skip:
            self._skip -= 1
        if tag == "blockquote" and self._quote:
            self._quote -= 1
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data) -> None:
        if not self._skip and not self._quote:  # quoted history in HTML is a <blockquote>
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _Text()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # broken HTML: what was read so far
        pass
    text = "".join(parser.parts).replace("\xa0", " ")
    return re.sub(
        r"\n\s*\n+", "\n\n", "\n".join(line.strip() for line in text.splitlines())
    ).strip()


def strip_quoted(text: str) -> str:
    """The new part of a reply: up to the first quote header, '>' lines or a signature."""
    out = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.lstrip().startswith(">"):
            continue
        if any(p.match(line) for p in _QUOTE_HEADERS) or any(p.match(line) for p in _SIGNATURE):
            break
        out.append(line.rstrip())
    while out and not out[-1].strip():
        out.pop()
    if len(out) > 1 and _CLOSING.match(out[-1]):  # "Thanks," above the signature
        out.pop()
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


@dataclass
class Inbound:
    """What Annae uses of one mail."""

    sender: str
    message_id: str | None
    subject: str
    refs: list[str]
    text: str
    attachments: list[tuple[str, int]] = field(default_factory=list)

    def stored_text(self) -> str:
        """The text plus the list of attachments (names and sizes; the files are not kept)."""
        if not self.attachments:
            return self.text
        listed = ", ".join(f"{name} ({size / 1024:.0f} kB)" for name, size in self.attachments)
        return f"{self.text}\n[attachments not opened: {listed}]"


class Dropped(Exception):
    """A mail Annae does not answer (loops, bounces, nothing to read); the reason is logged."""


def _ids(value: str | None) -> list[str]:
    return re.findall(r"<[^<>\s]{1,900}>", value or "")


def loop_reason(msg: EmailMessage, envelope_from: str | None, own: AbstractSet[str]) -> str | None:
    """Why this mail must not be answered (RFC 3834 and common practice), or None."""
    auto = (msg.get("Auto-Submitted") or "").strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    if (msg.get("Precedence") or "").strip().lower() in ("bulk", "junk", "list", "auto_reply"):
        return "Precedence: " + msg.get("Precedence", "")
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Reply", "List-Id", "List-Unsubscribe"):
        if msg.get(name):
            return f"{name} header"
    if msg.get_content_type() == "multipart/report":
        return "delivery report (bounce)"
    if envelope_from is not None and envelope_from.strip() in ("", "<>"):
        return "null envelope sender (bounce)"
    sender = parseaddr(msg.get("From") or "")[1].lower()
    local = sender.partition("@")[0]
    if local in ("mailer-daemon", "postmaster", "noreply", "no-reply", "do-not-reply"):
        return f"sender {sender}"
    if sender in own:
        return "mail from Annae itself"
    return None


def parse(
    raw: bytes, envelope_from: str | None = None, own: AbstractSet[str] = frozenset()
) -> Inbound:
    """Read a mail or raise :class:`Dropped`."""
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # the parser is lenient; this is for the truly broken
        raise Dropped(f"unreadable mail: {exc}") from exc
    try:
        reason = loop_reason(msg, envelope_from, own)
        if reason:
            raise Dropped(reason)
        addresses = getaddresses([str(msg.get("Reply-To") or msg.get("From") or "")])
        sender = next((a for _, a in addresses if "@" in a), "") or (envelope_from or "")
        if "@" not in sender or len(sender) > 320:
            raise Dropped("no sender address")
        plain, html, attachments = None, None, []
        for part in msg.walk():
            if part.is_multipart():
                continue
            disposition = part.get_content_disposition()
            ctype = part.get_content_type()
            if disposition == "attachment" or (
                part.get_filename() and ctype not in ("text/plain", "text/html")
            ):
                payload = part.get_payload(decode=True) or b""
                attachments.append((str(part.get_filename() or ctype)[:200], len(payload)))
                continue
            if ctype == "text/plain" and plain is None:
                plain = _content(part)
            elif ctype == "text/html" and html is None:
                html = _content(part)
        body = plain if plain and plain.strip() else html_to_text(html or "")
        text = strip_quoted(body[:MAX_BODY])
        subject = re.sub(r"\s+", " ", str(msg.get("Subject") or "")).strip()[:300]
        if not text:
            text = re.sub(r"^((re|fwd?|답장|회신)\s*:\s*)+", "", subject, flags=re.I)
        if not text:
            raise Dropped("no text to read")
        refs = _ids(msg.get("References")) + _ids(msg.get("In-Reply-To"))
        message_id = next(iter(_ids(msg.get("Message-ID"))), None)
        return Inbound(sender.lower(), message_id, subject, refs, text, attachments)
    except Dropped:
        raise
    except Exception as exc:  # broken MIME: headers or parts the parser could not make sense of
        raise Dropped(f"broken mail: {type(exc).__name__}: {exc}") from exc


def _content(part) -> str:
    try:
        return part.get_content()
    except Exception:  # unknown charset: bytes as UTF-8 with replacement
        return (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
