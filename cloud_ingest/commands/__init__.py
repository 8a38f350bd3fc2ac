"""Subcommands of ``campus-cloud``: one module each, discovered by ``cloud_ingest.cli``."""
