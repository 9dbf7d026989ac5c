"""The server socket disables Nagle: without TCP_NODELAY every response after the first on a
keep-alive connection waited for the client's delayed ACK (~40 ms per request)."""

from __future__ import annotations

import socket

from backend.server import bind_loopback


def test_accepted_connections_have_nodelay() -> None:
    listener = bind_loopback(0)
    try:
        assert listener.proto == socket.IPPROTO_TCP  # asyncio sets NODELAY only for proto TCP
        listener.setblocking(True)
        client = socket.create_connection(listener.getsockname())
        conn, _ = listener.accept()
        try:
            assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        finally:
            conn.close()
            client.close()
    finally:
        listener.close()
