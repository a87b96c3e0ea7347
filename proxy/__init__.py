"""WebSocket-to-TCP relay for Postgres, a drop-in for Neon's wsproxy that is safe by default.

Run ``python -m proxy`` (or ``wsproxy``); ``--help`` lists every setting. Clients open
``ws://HOST:PORT/v2?address=db:5432`` and the relay connects to ``db:5432`` if
ALLOW_ADDR_REGEX matches the whole ``host:port`` and the address policy (policy.py) permits
the resolved address it connects to.
"""
