#!/usr/bin/env python3
"""A tiny SMTP sink for eventmill's e-mail tests (needs `pip install aiosmtpd`).

Usage: smtp_sink.py PORT FOLDER [forever]

Listens on 127.0.0.1:PORT and, for every message received, writes into FOLDER:
  - <n>.eml: the message as received;
  - <n>.json: envelope recipients, subject, the text and HTML bodies, and the attachments, each saved
    as <n>-<filename> (decoded bytes) so a test can compare them with the file that was sent.
Prints "ready" on standard output once listening; stops on SIGTERM or when standard input closes
(with "forever", as scripts/demo.sh runs it in the background: only on SIGTERM).
"""
import asyncio
import email
import email.policy
import json
import os
import signal
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, folder):
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        n = self.count
        raw = envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode()
        with open(os.path.join(self.folder, f"{n}.eml.tmp"), "wb") as f:
            f.write(raw)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        summary = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos, "subject": msg["subject"],
                   "text": None, "html": None, "attachments": []}
        for part in msg.walk():
            if part.is_multipart():
                continue
            filename = part.get_filename()
            if filename:
                saved = os.path.join(self.folder, f"{n}-{os.path.basename(filename)}")
                with open(saved, "wb") as f:
                    f.write(part.get_payload(decode=True))
                summary["attachments"].append({"filename": filename, "content_type": part.get_content_type(),
                                               "path": saved})
            elif part.get_content_type() == "text/plain":
                summary["text"] = part.get_content()
            elif part.get_content_type() == "text/html":
                summary["html"] = part.get_content()
        with open(os.path.join(self.folder, f"{n}.json.tmp"), "w") as f:
            json.dump(summary, f)
        os.rename(os.path.join(self.folder, f"{n}.eml.tmp"), os.path.join(self.folder, f"{n}.eml"))
        os.rename(os.path.join(self.folder, f"{n}.json.tmp"), os.path.join(self.folder, f"{n}.json"))
        return "250 Message accepted for delivery"


def main():
    port, folder = int(sys.argv[1]), sys.argv[2]
    os.makedirs(folder, exist_ok=True)
    controller = Controller(Sink(folder), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if sys.argv[3:] != ["forever"]:
        threading.Thread(target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)), daemon=True).start()
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    main()
