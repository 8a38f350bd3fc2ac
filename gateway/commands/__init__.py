"""Subcommands of ``campus-edge``: one module each, discovered by ``gateway.cli``."""
