"""A base for the tests' local HTTP stubs of cluster APIs (KFP, Vertex AI): JSON replies, no logging noise."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any


class JsonStubHandler(BaseHTTPRequestHandler):
    """Subclasses record what they receive and answer with `_reply`."""

    def _reply(self, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
