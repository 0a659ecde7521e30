"""A real SMTP server for the workflow's e-mail tests (tests/organisations.rs).

aiosmtpd (installed into the test venv by scripts/test-peers) speaks SMTP;
this handler only records each accepted message as one JSON line in OUT:
the envelope (MAIL FROM, RCPT TO), every header as received and decoded by
Python's own e-mail parser, and the decoded text body.

Usage: smtp_sink.py PORT OUT   (runs until killed)
"""
import email
import json
import sys
import time
from email import policy

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out):
        self.out = out

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        part = msg.get_body(preferencelist=("plain",))
        rec = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "headers": [[k, str(v)] for k, v in msg.items()],
            "subject": str(msg.get("subject", "")),
            "to": str(msg.get("to", "")),
            "message_id": str(msg.get("message-id", "")),
            "body": part.get_content() if part is not None else "",
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        return "250 OK"


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Sink(out), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
