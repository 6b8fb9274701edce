"""The SMTP side of delivery: the message as sent, and the verified connection it goes over."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import smtplib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate

from flask import current_app
from flask_mail import Connection

# Names the outbox row, so a duplicate delivery can be recognised; nothing else.
OUTBOX_ID_HEADER = "X-FamilyLink-Id"


def message_id(dedupe_key: str) -> str:
    """A Message-ID that is the same on every attempt, so duplicates can be recognised.

    Derived from the dedupe key with a keyed hash: the key holds record ids (and for some
    kinds part of a token), which must not show in a header.
    """
    secret = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(secret, dedupe_key.encode(), hashlib.sha256).hexdigest()[:32]
    domain = current_app.config["MAIL_DEFAULT_SENDER"].rpartition("@")[2] or "familylink"
    return f"<{digest}@{domain}>"


def build_message(item, sender: tuple[str, str]) -> EmailMessage:
    """The message as sent: text and HTML alternatives, and the attachment if any.

    `item` is a delivery.LeasedEmail (not imported: delivery imports this module).

    Headers identify the outbox row only: no names, no kind of email, no patient. Every
    header is set from a string, which the email package refuses (ValueError) if it holds a
    line break, so no value can smuggle in another header.
    """
    message = EmailMessage()
    message["Subject"] = item.subject
    message["From"] = str(Address(sender[0], addr_spec=sender[1]))
    message["To"] = item.to_address
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id(item.dedupe_key)
    message[OUTBOX_ID_HEADER] = str(item.id)
    message.set_content(item.text_body)
    message.add_alternative(item.html_body, subtype="html")
    if item.attachment is not None:
        # Parsed as a header, so parameters such as method=REQUEST carry over.
        content_type = EmailMessage()
        content_type["Content-Type"] = item.attachment.content_type
        message.add_attachment(
            item.attachment.data,
            content_type.get_content_maintype(),
            content_type.get_content_subtype(),
            filename=item.attachment.filename,
            params=dict(content_type["Content-Type"].params),
        )
    return message


class VerifiedConnection(Connection):
    """Flask-Mail's connection, but TLS checks the server's certificate and host name.

    Flask-Mail calls starttls() with no context, which in Python 3.11 accepts any
    certificate; a man in the middle could then read every email.
    """

    def configure_host(self):
        timeout = current_app.config.get("MAIL_TIMEOUT", 10)
        # Built only when used: loading the CA store costs a tenth of a second.
        context = ssl.create_default_context() if self.mail.use_ssl or self.mail.use_tls else None
        if self.mail.use_ssl:
            host = smtplib.SMTP_SSL(
                self.mail.server, self.mail.port, timeout=timeout, context=context
            )
        else:
            host = smtplib.SMTP(self.mail.server, self.mail.port, timeout=timeout)
        try:
            if self.mail.use_tls:
                host.starttls(context=context)
            if self.mail.username and self.mail.password:
                host.login(self.mail.username, self.mail.password)
        except BaseException:
            host.close()
            raise
        return host


class SmtpLink:
    """One SMTP connection, opened when first needed and kept across a pass's batches."""

    def __init__(self):
        self.connection: Connection | None = None

    def send(self, message: EmailMessage, sender: str, to: str) -> None:
        if self.connection is None:
            self.connection = VerifiedConnection(current_app.extensions["mail"]).__enter__()
        if self.connection.host is not None:  # None: Flask-Mail suppresses sending
            self.connection.host.send_message(message, sender, [to])

    def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is None or connection.host is None:
            return
        with contextlib.suppress(smtplib.SMTPException, OSError):
            connection.host.quit()
        connection.host.close()


def is_permanent(error: Exception) -> bool:
    """A 5xx refusal (of every recipient): sending again would not help."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return all(code >= 500 for code in codes)
    code = getattr(error, "smtp_code", None)
    return code is not None and code >= 500


def connection_still_usable(error: Exception) -> bool:
    """After a refusal of one message smtplib resets the session; 421 and I/O errors end it."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return True
    code = getattr(error, "smtp_code", None)
    return isinstance(error, smtplib.SMTPResponseException) and code not in (None, -1, 421)
