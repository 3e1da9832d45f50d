"""Run code in a real kernel of a Jupyter server, as a notebook frontend does.

The kernel is started with the server's REST API (``POST api/kernels``) and code goes over the
kernel's websocket (``api/kernels/ID/channels``): Jupyter messaging protocol 5.3 as JSON text
frames, one ``execute_request`` on the shell channel, replies gathered from iopub until the
kernel is idle again.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

import httpx
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

ANSI = re.compile(r"\x1b\[[0-9;]*m")  # IPython colours its tracebacks


class KernelError(AssertionError):
    """Code raised in the kernel (its error name, value and traceback)."""


@dataclass
class Execution:
    stdout: str = ""
    stderr: str = ""
    result: str | None = None  # text/plain of the last expression
    error: dict[str, object] | None = None  # ename, evalue, traceback

    def check(self) -> Execution:
        if self.error is not None:
            lines: list[object] = self.error.get("traceback") or []  # type: ignore[assignment]
            traceback = ANSI.sub("", "\n".join(str(line) for line in lines))
            raise KernelError(f"{self.error['ename']}: {self.error['evalue']}\n{traceback}")
        return self


@dataclass
class Kernel:
    """A kernel of the server at ``server_url`` (e.g. ``http://hub/user/alice``)."""

    server_url: str
    token: str
    kernel_id: str = ""
    session: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def start(self) -> Kernel:
        response = httpx.post(f"{self.server_url}/api/kernels", headers=self.headers,
                              json={"name": "python3"}, timeout=120)
        response.raise_for_status()
        self.kernel_id = response.json()["id"]
        return self

    def shutdown(self) -> None:
        httpx.delete(f"{self.server_url}/api/kernels/{self.kernel_id}", headers=self.headers,
                     timeout=60)

    def run(self, code: str, *, timeout: float = 300) -> Execution:
        """Execute ``code`` and return what it printed, its last expression, or its error."""
        return asyncio.run(asyncio.wait_for(self._execute(code), timeout))

    async def _execute(self, code: str) -> Execution:
        url = self.server_url.replace("http", "ws", 1)
        request = HTTPRequest(
            f"{url}/api/kernels/{self.kernel_id}/channels?session_id={self.session}",
            headers=self.headers)
        connection = await websocket_connect(request)
        try:
            msg_id = uuid.uuid4().hex
            connection.write_message(json.dumps(self._request(msg_id, code)))
            execution, replied, idle = Execution(), False, False
            while not (replied and idle):
                frame = await connection.read_message()
                if frame is None:
                    raise ConnectionError(f"the kernel's websocket closed: {execution}")
                message = json.loads(frame)
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = message["msg_type"], message["content"]
                if kind == "stream":
                    if content["name"] == "stdout":
                        execution.stdout += content["text"]
                    else:
                        execution.stderr += content["text"]
                elif kind == "execute_result":
                    execution.result = content["data"].get("text/plain")
                elif kind == "error":
                    execution.error = content
                elif kind == "execute_reply":
                    replied = True
                elif kind == "status" and content["execution_state"] == "idle":
                    idle = True
            return execution
        finally:
            # Close and wait for the server's close frame: a socket still open when
            # asyncio.run() ends its loop would be collected later (a ResourceWarning).
            connection.close()
            while await asyncio.wait_for(connection.read_message(), 30) is not None:
                pass

    def _request(self, msg_id: str, code: str) -> dict[str, object]:
        return {
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "tests",
                       "session": self.session, "version": "5.3",
                       "date": datetime.now(timezone.utc).isoformat()},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }
