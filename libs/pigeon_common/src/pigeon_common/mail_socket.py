"""Opening the TCP connection to a mailbox server: resolve, check, then connect.

The host name is resolved once, every address is checked against the host policy, and
the connection goes to one of exactly those addresses, so a DNS answer that changes
between the check and the connect cannot slip past it. SMTP (aiosmtplib's `sock=`) and
IMAP (`asyncio.open_connection(sock=...)`) both start from the socket this returns.
"""

from __future__ import annotations

import asyncio
import socket

from pigeon_common.host_policy import HostPolicy


async def open_mail_socket(
    host: str, port: int, policy: HostPolicy, timeout: float
) -> socket.socket:
    """A connected non-blocking socket to `host:port`; raises HostDeniedError, OSError
    (socket.gaierror for DNS, ConnectionRefusedError...) or TimeoutError."""
    loop = asyncio.get_running_loop()
    policy.check_name(host)
    async with asyncio.timeout(timeout):
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        policy.check(host, [str(info[4][0]) for info in infos])
        last: OSError | None = None
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, address)
            except OSError as error:
                sock.close()
                last = error
                continue
            except BaseException:
                sock.close()
                raise
            return sock
    raise last or OSError(f"{host} has no address")
