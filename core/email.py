"""Email: jinja2 templates rendered to (subject, text, html), sent over SMTP with aiosmtplib.

A template `<name>` is three files in templates/email/: `<name>.subject.txt`, `<name>.txt` and
`<name>.html`. Undefined variables raise (StrictUndefined): a notice with a blank amount is worse than none.
"""

from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Any

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, select_autoescape

from core.config import Settings

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "email"

# Autoescape by file extension: on for .html, off for the plain-text parts (they would show "&amp;").
_templates = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    undefined=StrictUndefined,
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


class UnknownTemplate(LookupError):
    pass


def render(template_name: str, context: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, text, html). Raises UnknownTemplate, or jinja2.UndefinedError when the context lacks a variable."""
    try:
        subject, text, html = (
            _templates.get_template(f"{template_name}{suffix}") for suffix in (".subject.txt", ".txt", ".html")
        )
    except TemplateNotFound as exc:
        raise UnknownTemplate(f"email template {template_name!r} not found ({exc.name})") from exc
    # One line, whatever the context holds: a newline in a header would be a header injection.
    return " ".join(subject.render(context).split()), text.render(context), html.render(context)


class EmailSender:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "localhost"

    def build(
        self, to: str, subject: str, text: str, html: str | None = None, message_id: str | None = None
    ) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.mail_from
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(usegmt=True)
        # A stable id (the outbox row's) lets a mail server or client spot the rare duplicate delivery.
        message["Message-ID"] = f"<{message_id}@{self.domain}>" if message_id else make_msgid(domain=self.domain)
        message.set_content(text)
        if html:
            message.add_alternative(html, subtype="html")
        return message

    async def send(self, message: EmailMessage) -> None:
        """Raises aiosmtplib.SMTPException or OSError when the server is unreachable or refuses the message."""
        s = self.settings
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.smtp_port,
            start_tls=s.smtp_starttls,
            timeout=s.smtp_timeout,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
        )
