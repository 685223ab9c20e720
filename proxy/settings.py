"""The gateway's one settings object: environment variables over an optional YAML file.

Every field is listed in the README with its default. Names carry units.
A key the object does not know is an error, never silently dropped: in the
file (``extra="forbid"``) and, through ``unknown_environment``, among the
``SPU_*`` environment variables, so a misspelt ``SPU_LEDGER_ULR`` cannot
send a gateway to a default ledger.
"""

import os
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ApiFormat = Literal["openai", "anthropic", "litellm", "demo"]
LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]
"""uvicorn's levels; ``debug`` also shows the traceback behind a start-up error."""

ENV_PREFIX = "SPU_"
CONFIG_FILE_VARIABLE = "SPU_CONFIG_FILE"

NOT_SETTINGS = frozenset(
    {
        CONFIG_FILE_VARIABLE,
        # the scripts' own (README, "Installing")
        "SPU_EXTRAS",
        "SPU_VENV",
        # docker/compose.yaml's own
        "SPU_IMAGE",
        "SPU_REPLICAS",
        "SPU_PUBLISHED_PORT",
        "SPU_STOP_GRACE_PERIOD",
    }
)
"""``SPU_*`` variables read by the scripts or compose, not by this object: never unknown."""


class ConfigFileError(Exception):
    """The file ``SPU_CONFIG_FILE`` names cannot be read as a YAML mapping."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"config file {path}: {reason}")
        self.path = path
        self.reason = reason


class ModelRoute(BaseModel):
    """One public model name and where its calls go (a LiteLLM-style ``model_list`` entry)."""

    model_config = ConfigDict(extra="forbid")

    model_name: str
    provider_model: str
    """The name the upstream knows, e.g. ``gpt-4o-mini`` or ``anthropic/claude-sonnet-4``."""
    api_format: ApiFormat = "openai"
    """``openai``/``anthropic``: relayed directly; ``litellm``: any other provider;
    ``demo``: answered locally."""
    api_base: str | None = None
    api_key_env: str | None = None
    """Name of the environment variable holding the upstream key (never the key itself)."""
    provider: str | None = None
    """Provider label for usage records; defaults from the format or the litellm prefix."""
    input_cost_per_token: Decimal | None = None
    output_cost_per_token: Decimal | None = None
    cache_creation_input_cost_per_token: Decimal | None = None
    cache_read_input_cost_per_token: Decimal | None = None
    max_output_tokens: int | None = None
    responses_api: bool | None = None
    """Whether an ``openai``-format upstream serves the Responses API itself: ``/v1/responses``
    is then relayed to its ``/responses``, else translated to its Chat Completions. Unset means
    yes only for OpenAI's own API (no ``api_base``, or one on ``api.openai.com``)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    ledger_url: str = "sqlite:///./data/spu-ledger.db"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    """0: any free port (``spu serve`` then says which)."""
    workers: int = Field(default=1, ge=1)

    markup: Decimal = Decimal("0.25")
    usd_per_spu: Decimal = Decimal("0.01")
    free_grant_spus: Decimal = Decimal(100)
    default_max_tokens: int = 4096
    """Output bound used for the hold estimate when a request sets no max_tokens."""

    hold_ttl_s: float = 900.0
    """How long a crashed worker's holds keep counting: a live call's worker renews its
    holds well before they expire, however long the call runs."""
    sweep_interval_s: float = 30.0
    upstream_timeout_s: float = 600.0
    upstream_connect_timeout_s: float = 10.0
    max_body_bytes: int = 10 * 1024 * 1024
    max_in_flight_per_org: int = 64
    token_cache_ttl_s: float = 5.0
    """A revoked token stops working on other workers within this bound."""
    shutdown_grace_s: float = 30.0

    outbox_poll_s: float = Field(default=2.0, gt=0)
    """How often each worker looks for alerts to deliver and recharges to start."""
    outbox_max_attempts: int = Field(default=10, ge=1)
    """Attempts of an alert (or of starting a recharge) before it is a dead letter."""
    outbox_retry_first_s: float = Field(default=5.0, gt=0)
    """The pause after a first failed attempt; it doubles with every further one."""
    outbox_retry_max_s: float = Field(default=900.0, gt=0)
    alert_timeout_s: float = Field(default=10.0, gt=0)
    """How long an alert receiver has to answer one delivery."""
    call_deadline_s: float = Field(default=3600.0, gt=0)
    """The most a call may run, in all: then its stream is cut and charged for what it
    streamed (a call that has answered nothing gets 504)."""
    idempotency_keep_s: float = Field(default=86_400.0, gt=0)
    """How long an ``Idempotency-Key`` and its call's reply are kept, from its first use."""
    idempotency_max_reply_bytes: int = Field(default=4 * 1024 * 1024, ge=0)
    """The largest reply kept for replay; a larger one is charged once, and its retry gets 409."""

    demo_model: bool = True
    demo_stream_delay_ms: int = 0
    """Pause between the demo model's streamed words, to watch a stream arrive."""
    admin_token: SecretStr | None = None
    public_url: str = ""
    """Empty: the address ``host`` and ``port`` are reached by from this machine."""
    log_level: LogLevel = "info"

    stripe_secret_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("STRIPE_SECRET_KEY", "SPU_STRIPE_SECRET_KEY")
    )
    stripe_webhook_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("STRIPE_WEBHOOK_SECRET", "SPU_STRIPE_WEBHOOK_SECRET"),
    )
    stripe_product_tag: str = Field(
        default="doc_router",
        validation_alias=AliasChoices("STRIPE_PRODUCT_TAG", "SPU_STRIPE_PRODUCT_TAG"),
    )
    stripe_catalogue_refresh_s: float = 300.0

    model_list: list[ModelRoute] = Field(default_factory=list)

    @field_validator("usd_per_spu")
    @classmethod
    def _positive_spu_price(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError("usd_per_spu must be positive")
        return value

    @field_validator("model_list")
    @classmethod
    def _one_route_per_name(cls, routes: list[ModelRoute]) -> list[ModelRoute]:
        names = [route.model_name for route in routes]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"model_name {', '.join(map(repr, twice))} is listed more than once")
        return routes

    @field_validator("admin_token", "stripe_secret_key", "stripe_webhook_secret", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """``STRIPE_SECRET_KEY=`` (compose passes such lines on) means off, as unset does."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_case_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("public_url must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _public_url_from_address(self) -> "Settings":
        if not self.public_url:
            self.public_url = local_url(self.host, self.port)
        return self

    @model_validator(mode="after")
    def _keys_outlive_calls(self) -> "Settings":
        # A key forgotten while its call still runs would let a retry call (and pay) again.
        if self.idempotency_keep_s < self.call_deadline_s:
            raise ValueError("idempotency_keep_s must be at least call_deadline_s")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _YamlFileSource(settings_cls)


def local_url(host: str, port: int) -> str:
    """The URL a client on this machine reaches ``host:port`` by (a wildcard by loopback)."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def setting_variables() -> dict[str, str]:
    """Every environment variable this object reads, mapped to its setting's name."""
    names: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update({str(choice): name for choice in alias.choices})
        names[ENV_PREFIX + name.upper()] = name
    return names


def unknown_environment(environ: Mapping[str, str]) -> list[str]:
    """``SPU_*`` variables that are neither a setting nor one of ``NOT_SETTINGS``."""
    known = setting_variables().keys() | NOT_SETTINGS
    spu_names = (name for name in environ if name.upper().startswith(ENV_PREFIX))
    return sorted(name for name in spu_names if name.upper() not in known)


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads ``SPU_CONFIG_FILE`` (YAML) when set; environment variables win over it."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get(CONFIG_FILE_VARIABLE)
        if not path:
            return {}
        try:
            text = Path(path).read_text()
        except FileNotFoundError as error:
            raise ConfigFileError(path, "no such file") from error
        except OSError as error:
            raise ConfigFileError(path, error.strerror or str(error)) from error
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigFileError(path, _yaml_problem(error)) from error
        if loaded is None:
            return {}
        if not isinstance(loaded, dict):
            raise ConfigFileError(path, "it must be a YAML mapping of setting: value")
        return {_ALIASES.get(str(key), str(key)): value for key, value in loaded.items()}


_ALIASES = {
    name: str(field.validation_alias.choices[0])
    for name, field in Settings.model_fields.items()
    if isinstance(field.validation_alias, AliasChoices)
}
"""The file spells every setting by its name (``stripe_secret_key``); the environment
source keys an aliased one by its variable, so the file's key is renamed to match it
and the environment still wins."""


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    where = "" if mark is None else f" at line {mark.line + 1}, column {mark.column + 1}"
    return f"not valid YAML{where}: {problem}"
