"""SQL over HTTP: Neon's ``POST /sql`` protocol served from pooled backend connections.

Off unless ``SQL_HTTP_LISTEN`` is set; importing this package imports ``driver`` (the one
dependency of proxy/ on the rest of the repository, see backends.py).
"""

from .server import SQLServer

__all__ = ["SQLServer"]
