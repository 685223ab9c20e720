"""The Dockerfile and compose file, checked as text: no Docker engine runs on this machine.

``docker build`` and ``docker compose up`` cannot run here, so these tests
hold the files to what the README promises: the services, the replica-set
init, the healthchecks, the start-up order, and configuration by the
environment variables the gateway really reads.
"""

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pymongo.uri_parser import parse_uri

from ledger.factory import open_store
from ledger.postgres import PostgresLedger
from proxy.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"

SERVICES = {"mongo", "mongo-init", "ledger-init", "gateway", "lb"}
REPLICA_SET = "rs0"
README_VARIABLES = {
    "SPU_LEDGER_URL",
    "SPU_WORKERS",
    "SPU_PUBLIC_URL",
    "SPU_SHUTDOWN_GRACE_S",
    "SPU_ADMIN_TOKEN",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_PRODUCT_TAG",
    "SPU_CONFIG_FILE",
}
"""The variables the README's "Run with Docker Compose" section tells operators to set."""
PROVIDER_KEYS = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"}
_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::?-(?P<default>[^}]*))?\}")


def _interpolate(value: Any) -> Any:
    """Compose's ``${NAME:-default}`` with nothing set in the shell: the defaults."""
    if not isinstance(value, str):
        return value
    return _INTERPOLATION.sub(lambda match: match.group("default") or "", value)


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)", duration)
    assert match, f"unexpected duration {duration!r}"
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = compose["services"]
    return found


def _settings_variables() -> set[str]:
    """Every environment variable the gateway's settings read."""
    names = {"SPU_CONFIG_FILE"}
    for field_name, field in Settings.model_fields.items():
        names.add(f"SPU_{field_name.upper()}")
        alias = field.validation_alias
        for choice in getattr(alias, "choices", ()):
            names.add(str(choice))
    return names


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (DOCKER / "Dockerfile").read_text()
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    instructions = []
    for line in logical:
        keyword, _, arguments = line.strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, arguments in _dockerfile_instructions():
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, arguments))
    return stages


def test_compose_runs_the_gateway_replicas_the_load_balancer_and_a_mongodb_replica_set(
    services: dict[str, Any],
) -> None:
    assert set(services) == SERVICES
    assert "--replSet" in services["mongo"]["command"]
    assert services["mongo"]["command"][services["mongo"]["command"].index("--replSet") + 1] == (
        REPLICA_SET
    )
    assert int(_interpolate(services["gateway"]["deploy"]["replicas"])) >= 2


def test_the_replica_set_init_is_idempotent_and_waits_for_a_primary(
    services: dict[str, Any],
) -> None:
    init = services["mongo-init"]
    script = init["command"][-1]
    assert f'rs.initiate({{ _id: "{REPLICA_SET}"' in script
    assert 'host: "mongo:27017"' in script
    assert "AlreadyInitialized" in script
    assert "isWritablePrimary" in script
    assert "$" not in script, "compose would try to interpolate a $ in the script"
    assert init["depends_on"]["mongo"]["condition"] == "service_healthy"
    assert init["restart"] == "no"


def test_the_gateway_reaches_mongodb_as_a_replica_set(services: dict[str, Any]) -> None:
    url = _interpolate(services["gateway"]["environment"]["SPU_LEDGER_URL"])
    parsed = parse_uri(url)
    assert parsed["nodelist"] == [("mongo", 27017)]
    assert parsed["options"]["replicaSet"] == REPLICA_SET
    # The ledger names its own database; a path here would read as if it chose one.
    assert parsed["database"] is None


def test_start_up_is_ordered_replica_set_then_indexes_then_gateways_then_load_balancer(
    services: dict[str, Any],
) -> None:
    assert services["ledger-init"]["command"] == ["ledger", "init"]
    assert services["ledger-init"]["depends_on"]["mongo-init"]["condition"] == (
        "service_completed_successfully"
    )
    gateway_needs = services["gateway"]["depends_on"]
    assert gateway_needs["mongo-init"]["condition"] == "service_completed_successfully"
    assert gateway_needs["ledger-init"]["condition"] == "service_completed_successfully"
    assert services["lb"]["depends_on"]["gateway"]["condition"] == "service_healthy"


def test_every_long_running_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    for name in ("mongo", "lb"):
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    # The gateway's is the image's HEALTHCHECK (GET /readyz); compose must not disable it.
    assert "healthcheck" not in services["gateway"]
    healthchecks = [args for keyword, args in _stages()[-1] if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and "/readyz" in healthchecks[0]


def test_only_the_load_balancer_publishes_a_port(services: dict[str, Any]) -> None:
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"lb"}
    assert _interpolate(services["lb"]["ports"][0]) == "8080:8080"
    assert services["gateway"]["expose"] == ["8080"]


def test_the_load_balancer_streams_to_every_gateway_replica(services: dict[str, Any]) -> None:
    mount = services["lb"]["volumes"][0]
    source, target, _mode = mount.split(":")
    assert target == "/etc/nginx/conf.d/default.conf"
    config = (DOCKER / source).read_text()
    assert re.search(r"server\s+gateway:8080\s+resolve;", config)
    assert "proxy_buffering off;" in config
    assert "proxy_pass http://spu_gateway;" in config
    body_limit_mib = int(re.search(r"client_max_body_size\s+(\d+)m;", config).group(1))  # type: ignore[union-attr]
    assert body_limit_mib * 1024 * 1024 > Settings().max_body_bytes


def test_a_replica_is_given_longer_to_stop_than_its_streams_are_given_to_drain(
    services: dict[str, Any],
) -> None:
    gateway = services["gateway"]
    grace_s = float(_interpolate(gateway["environment"]["SPU_SHUTDOWN_GRACE_S"]))
    assert _seconds(_interpolate(gateway["stop_grace_period"])) > grace_s
    assert gateway["init"] is True, "an init process as PID 1 forwards SIGTERM and reaps"


def test_compose_sets_every_variable_the_readme_names_and_only_real_settings(
    services: dict[str, Any],
) -> None:
    environment = services["gateway"]["environment"]
    assert set(environment) >= README_VARIABLES
    unknown = set(environment) - _settings_variables() - PROVIDER_KEYS
    assert not unknown, f"compose sets variables the gateway never reads: {sorted(unknown)}"
    assert services["ledger-init"]["environment"] == environment


@pytest.mark.parametrize(
    "secret", ["SPU_ADMIN_TOKEN", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"]
)
def test_secrets_pass_through_unset_rather_than_empty(
    services: dict[str, Any], secret: str
) -> None:
    # A bare key passes the shell's value through, or leaves the variable unset;
    # "${X:-}" would set it to "", which turns Stripe or the admin API "on" with no key.
    assert services["gateway"]["environment"][secret] is None


def test_every_variable_compose_reads_is_documented_in_the_env_example() -> None:
    read = {match.group("name") for match in _INTERPOLATION.finditer(COMPOSE.read_text())}
    example = (DOCKER / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert read <= documented, sorted(read - documented)


def test_the_dockerfile_builds_in_one_stage_and_runs_slim_as_a_non_root_user() -> None:
    stages = _stages()
    assert len(stages) >= 2
    build_stage = stages[0][0][1].split()[-1]
    runtime = stages[-1]
    runtime_image = runtime[0][1]
    assert "slim" in runtime_image or runtime_image.startswith("${PYTHON_IMAGE}")
    base_default = next(
        args for keyword, args in _dockerfile_instructions() if keyword == "ARG"
    ).split("=", 1)[1]
    assert base_default.startswith("python:3.11") and "slim" in base_default
    assert any(keyword == "COPY" and f"--from={build_stage}" in args for keyword, args in runtime)
    assert not any(keyword == "RUN" and "pip install" in args for keyword, args in runtime)
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert ("ENTRYPOINT", '["spu"]') in runtime
    assert ("EXPOSE", "8080") in runtime


def test_the_image_installs_the_locked_versions_with_the_pinned_uv_and_its_default_extras() -> None:
    build = _stages()[0]
    runs = [arguments for keyword, arguments in build if keyword == "RUN"]
    copied = {
        source
        for keyword, arguments in build
        if keyword == "COPY"
        for source in arguments.split()[:-1]
    }
    assert {"uv.lock", "scripts/uv-requirements.txt"} <= copied
    assert any("--require-hashes" in run and "uv-requirements.txt" in run for run in runs)
    syncs = [run for run in runs if "uv sync" in run]
    assert syncs and all("--locked" in run and "--no-editable" in run for run in syncs)
    extras = next(arguments for keyword, arguments in build if keyword == "ARG")
    assert extras.startswith("SPU_EXTRAS=")
    assert {"mongodb", "postgresql", "stripe"} <= set(extras.split("=", 1)[1].split(","))


def test_the_build_context_holds_exactly_what_the_dockerfile_copies() -> None:
    sources: set[str] = set()
    for keyword, arguments in _dockerfile_instructions():
        if keyword == "COPY" and "--from=" not in arguments:
            sources.update(arguments.split()[:-1])
    for source in sources:
        assert (REPO / source).exists(), source
    rules = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "**", "the context starts empty and lets in only what is named"
    let_in = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert let_in == sources


POSTGRES_OVERRIDE = DOCKER / "compose.postgres.yaml"
POSTGRES_SERVICES = {"postgres", "ledger-init", "gateway", "lb"}


class _Override(dict[str, Any]):
    """A mapping tagged ``!override``: it replaces the base file's value instead of merging."""


class _ComposeLoader(yaml.SafeLoader):
    """Reads compose's ``!override`` tag, which a plain safe loader refuses."""


_ComposeLoader.add_constructor(
    "!override",
    lambda loader, node: _Override(loader.construct_mapping(node, deep=True)),  # type: ignore[arg-type]
)


def _merged(base: Any, layer: Any) -> Any:
    """Compose's merge of an override file onto a base: mappings merge, ``!override`` replaces."""
    if isinstance(layer, _Override) or not (isinstance(base, dict) and isinstance(layer, dict)):
        return dict(layer) if isinstance(layer, _Override) else layer
    merged = dict(base)
    for key, value in layer.items():
        merged[key] = _merged(base[key], value) if key in base else _merged(None, value)
    return merged


@pytest.fixture(scope="module")
def postgres_services(compose: dict[str, Any]) -> dict[str, Any]:
    """The services that ``up`` starts with compose.postgres.yaml layered on compose.yaml."""
    layer = yaml.load(POSTGRES_OVERRIDE.read_text(), Loader=_ComposeLoader)
    merged: dict[str, Any] = _merged(compose, layer)["services"]
    return {name: service for name, service in merged.items() if not service.get("profiles")}


def test_the_postgres_option_runs_the_gateways_on_postgresql_without_mongodb(
    postgres_services: dict[str, Any],
) -> None:
    assert set(postgres_services) == POSTGRES_SERVICES
    for name in ("gateway", "ledger-init"):
        environment = postgres_services[name]["environment"]
        url = urlsplit(_interpolate(environment["SPU_LEDGER_URL"]))
        assert (url.scheme, url.hostname, url.port, url.path) == (
            "postgresql",
            "postgres",
            5432,
            "/spu",
        )
        assert isinstance(open_store(url.geturl()), PostgresLedger)
    database = postgres_services["postgres"]["environment"]
    assert (database["POSTGRES_USER"], database["POSTGRES_DB"]) == ("spu", "spu")


def test_the_postgres_option_starts_the_database_then_migrations_then_gateways(
    postgres_services: dict[str, Any],
) -> None:
    healthcheck = postgres_services["postgres"]["healthcheck"]["test"]
    assert healthcheck[:2] == ["CMD", "pg_isready"]
    assert postgres_services["ledger-init"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"}
    }
    assert postgres_services["gateway"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "ledger-init": {"condition": "service_completed_successfully"},
    }
    assert "ports" not in postgres_services["postgres"], "only the load balancer publishes"
    assert postgres_services["postgres"]["volumes"] == ["postgres-data:/var/lib/postgresql/data"]


def test_the_postgres_option_needs_a_password_and_documents_it() -> None:
    text = POSTGRES_OVERRIDE.read_text()
    assert "${POSTGRES_PASSWORD:?" in text, "no default password for the ledger's database"
    example = (DOCKER / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert set(re.findall(r"\$\{([A-Z0-9_]+)", text)) <= documented
