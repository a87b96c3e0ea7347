"""Client authentication, sans-I/O, in one vocabulary (methods.py): the policy decides what
may be answered (policy.py), the exchange answers and tracks the one state (exchange.py),
SCRAM and its PBKDF2 (scram.py, pbkdf2.py)."""
