"""An SMTP server (aiosmtpd) for Ferry's destination tests.

usage: smtp_server.py PORT MAILDIR [USER PASSWORD]

Listens on 127.0.0.1:PORT. Each accepted message is parsed with Python's
email package and written to MAILDIR as one JSON file (atomically):
{"mail_from", "rcpt_tos", "headers": {lower-case name: value}, "text",
"attachments": [{"filename", "content_type", "content"}]}. Recipients
starting with `nobody@` are refused with 550. With USER and PASSWORD,
AUTH (PLAIN or LOGIN, without TLS) is required and checked.
"""
import email
import json
import os
import sys
import threading
import time
import warnings
from email import policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, maildir = int(sys.argv[1]), sys.argv[2]
user, password = (sys.argv[3], sys.argv[4]) if len(sys.argv) > 4 else (None, None)


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content, policy=policy.default)
        body = message.get_body(preferencelist=("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "headers": {name.lower(): str(value) for name, value in message.items()},
            "text": body.get_content() if body is not None else None,
            "attachments": [],
        }
        for part in message.iter_attachments():
            content = part.get_content()
            if isinstance(content, bytes):
                content = content.decode("utf-8")
            record["attachments"].append({
                "filename": part.get_filename(),
                "content_type": part.get_content_type(),
                "content": content,
            })
        name = f"{time.time_ns()}-{threading.get_ident()}"
        temporary = os.path.join(maildir, f".{name}.tmp")
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(record, out)
        os.rename(temporary, os.path.join(maildir, f"{name}.json"))
        return "250 Message accepted for delivery"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == user
        and auth_data.password.decode() == password
    )
    # `handled=False`: aiosmtpd then answers the failure (535) itself.
    return AuthResult(success=ok, handled=False)


# Tests authenticate without TLS on loopback on purpose.
warnings.simplefilter("ignore")
options = {}
if user is not None:
    options = {"authenticator": authenticator, "auth_required": True, "auth_require_tls": False}
controller = Controller(Handler(), hostname="127.0.0.1", port=port, **options)
controller.start()
threading.Event().wait()
