"""`checker local` restarted right after a stop: the port probe binds as the servers do."""
from __future__ import annotations

import socket

from checker.local.stack import port_is_free


def test_a_port_whose_connections_linger_in_time_wait_is_free_for_a_restart():
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    served, _ = listener.accept()
    served.close()      # the server's side closes first: its socket lingers in TIME_WAIT
    listener.close()
    client.close()
    plain = socket.socket()
    try:
        plain.bind(("127.0.0.1", port))
        lingering = False
    except OSError:
        lingering = True    # what the old probe saw: "port in use" while nothing listens
    finally:
        plain.close()
    assert lingering and port_is_free(port)


def test_a_port_something_listens_on_is_not_free():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert not port_is_free(listener.getsockname()[1])
