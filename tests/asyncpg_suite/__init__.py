"""Runs asyncpg 0.32.0's own test suite against this driver (see README, "asyncpg's suite")."""
