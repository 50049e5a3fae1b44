"""`hybrid-agent chat`: ask a running daemon's agent; the answer streams to stdout."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any

from appliance.cli import (
    DEFAULT_URL,
    EXIT_FAIL,
    EXIT_OK,
    command,
)
from appliance.net.sse import parse_field

CHAT_READ_TIMEOUT_S = 300.0


@command("chat", "ask the agent; the answer streams to stdout, tool calls to stderr",
         "Send TEXT to a running daemon's agent (POST /api/chat) and print the answer as it "
         "is generated. Tool calls and their results go to stderr, so stdout is the answer "
         "alone. Exit status 1 when the turn ends in an error.")
def _setup_chat(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", nargs="+", help="what to ask")
    p.add_argument("--url", default=DEFAULT_URL, help=f"daemon address (default {DEFAULT_URL})")
    p.add_argument("--conversation", metavar="ID", help="continue conversation ID")
    p.add_argument("--agent", metavar="NAME", help="an expert agent from agent.experts")
    p.add_argument("--json", action="store_true", help="print every event as a JSON line")
    p.set_defaults(func=_cmd_chat)


def _cmd_chat(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"text": " ".join(args.text)}
    if args.conversation:
        body["conversation_id"] = args.conversation
    if args.agent:
        body["agent"] = args.agent
    req = urllib.request.Request(args.url.rstrip("/") + "/api/chat",
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        resp = urllib.request.urlopen(req, timeout=CHAT_READ_TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read(65536))["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = str(exc)
        print(f"hybrid-agent chat: {message}", file=sys.stderr)
        return EXIT_FAIL
    except (urllib.error.URLError, OSError) as exc:
        print(f"hybrid-agent chat: no daemon answers at {args.url}: "
              f"{getattr(exc, 'reason', exc)}", file=sys.stderr)
        return EXIT_FAIL
    status = EXIT_FAIL
    with resp:
        kind = ""
        for raw in resp:
            name, value = parse_field(raw)
            if name == "event":
                kind = value.strip()
                continue
            if name != "data":
                continue
            data = json.loads(value)
            if args.json:
                print(json.dumps({"type": kind, "data": data}), flush=True)
            elif kind == "token":
                sys.stdout.write(data["text"])
                sys.stdout.flush()
            elif kind == "tool_call":
                print(f"[tool] {data['name']}({json.dumps(data['arguments'])})",
                      file=sys.stderr, flush=True)
            elif kind == "tool_result":
                shown = json.dumps(data.get("result") if data.get("ok") else data.get("error"))
                print(f"[tool] {data['name']} -> {'ok' if data.get('ok') else 'error'}: "
                      f"{shown[:500]}", file=sys.stderr, flush=True)
            elif kind == "error":
                print(f"\nhybrid-agent chat: {data.get('message')}", file=sys.stderr)
            if kind == "final":
                if not args.json:
                    print(flush=True)
                status = EXIT_OK
    return status
