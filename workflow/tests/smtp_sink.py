"""A real SMTP server for the workflow's e-mail tests (tests/organisations.rs,
tests/mail.rs).

aiosmtpd (installed into the test venv by scripts/test-peers) speaks SMTP;
this handler only records each accepted message as one JSON line in OUT:
the envelope (MAIL FROM, RCPT TO), every header as received and decoded by
Python's own e-mail parser, the decoded text body, whether the message came
over TLS and which user logged in.

Usage: smtp_sink.py PORT OUT [--mode plain|starttls|implicit]
                             [--cert PEM --key PEM] [--require-starttls]
                             [--user NAME --password SECRET]
(runs until killed). `starttls` offers STARTTLS with the certificate
(`--require-starttls`: refuses mail before it); `implicit` speaks TLS from
the first byte (SMTPS). With `--user`, AUTH (PLAIN, LOGIN) is required, only
over TLS, and only that user and password are accepted.
"""
import argparse
import email
import json
import ssl
import time
from email import policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, out):
        self.out = out

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        part = msg.get_body(preferencelist=("plain",))
        transport = getattr(server, "transport", None)
        over_tls = bool(session.ssl) or (
            transport is not None and transport.get_extra_info("ssl_object") is not None
        )
        login = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode("utf-8", "replace")
        rec = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "headers": [[k, str(v)] for k, v in msg.items()],
            "subject": str(msg.get("subject", "")),
            "to": str(msg.get("to", "")),
            "message_id": str(msg.get("message-id", "")),
            "body": part.get_content() if part is not None else "",
            "tls": over_tls,
            "login": login,
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        return "250 OK"


class Users:
    """Accepts exactly one user and password."""

    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user
            and auth_data.password == self.password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("out")
    p.add_argument("--mode", choices=["plain", "starttls", "implicit"], default="plain")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--require-starttls", action="store_true")
    p.add_argument("--user")
    p.add_argument("--password")
    a = p.parse_args()
    kwargs = {}
    ctx = None
    if a.mode != "plain":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)
    if a.mode == "starttls":
        kwargs["tls_context"] = ctx
        kwargs["require_starttls"] = a.require_starttls
    elif a.mode == "implicit":
        kwargs["ssl_context"] = ctx
    if a.user:
        kwargs["authenticator"] = Users(a.user, a.password or "")
        kwargs["auth_required"] = True
        # AUTH only over TLS (aiosmtpd's default); implicit TLS counts.
        kwargs["auth_require_tls"] = a.mode != "implicit"
    controller = Controller(Sink(a.out), hostname="127.0.0.1", port=a.port, **kwargs)
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
