"""The gateway's version, as installed (``pyproject.toml`` is its one source)."""

from importlib.metadata import version


def gateway_version() -> str:
    return version("spu-gateway")
