"""An SMTP server (aiosmtpd) for Ferry's destination tests.

usage: smtp_server.py PORT MAILDIR [--login USER PASSWORD | --xoauth2 USER TOKEN]

Listens on 127.0.0.1:PORT. Each accepted message is parsed with Python's
email package and written to MAILDIR as one JSON file (atomically):
{"mail_from", "rcpt_tos", "headers": {lower-case name: value}, "text",
"attachments": [{"filename", "content_type", "content"}]}. Recipients
starting with `nobody@` are refused with 550.

With --login, AUTH (PLAIN or LOGIN, without TLS) is required and checked.
With --xoauth2, AUTH XOAUTH2 is the only mechanism offered and required:
the client's `user=USER\x01auth=Bearer TOKEN\x01\x01` must name both. A
wrong one is refused as Gmail refuses it: a 334 challenge carrying a
base64 JSON error, then (after the client's empty answer) 535.
"""
import argparse
import base64
import email
import json
import os
import threading
import time
import warnings
from email import policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, AuthResult, LoginPassword

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("maildir")
mode = parser.add_mutually_exclusive_group()
mode.add_argument("--login", nargs=2, metavar=("USER", "PASSWORD"))
mode.add_argument("--xoauth2", nargs=2, metavar=("USER", "TOKEN"))
args = parser.parse_args()
port, maildir = args.port, args.maildir
user, password = args.login or (None, None)


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


class XOAuth2Handler(Handler):
    """Checks XOAUTH2's initial response (or the answer to an empty
    challenge) against the expected user and bearer token."""

    def __init__(self, user, token):
        self.expected = f"user={user}\x01auth=Bearer {token}\x01\x01".encode()
        self.user = user

    async def auth_XOAUTH2(self, server, args):
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False)
        else:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except ValueError:
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        if blob == self.expected:
            return AuthResult(success=True, auth_data=LoginPassword(self.user.encode(), b""))
        error = json.dumps({"status": "401", "schemes": "Bearer", "scope": "https://mail.google.com/"})
        # The client answers the error challenge with an empty line, or
        # gives up and closes the connection.
        await server.challenge_auth(error)
        await server.push("535 5.7.8 Username and Password not accepted")
        return AuthResult(success=False, handled=True)


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
handler = Handler()
if user is not None:
    options = {"authenticator": authenticator, "auth_required": True, "auth_require_tls": False}
elif args.xoauth2 is not None:
    handler = XOAuth2Handler(*args.xoauth2)
    options = {
        "auth_required": True,
        "auth_require_tls": False,
        "auth_exclude_mechanism": ["PLAIN", "LOGIN"],
    }
controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
controller.start()
threading.Event().wait()
