"""The gateway's one settings object: environment variables over an optional YAML file.

Every field is listed in the README with its default. Names carry units.
"""

import os
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ApiFormat = Literal["openai", "anthropic", "litellm", "demo"]


class ModelRoute(BaseModel):
    """One public model name and where its calls go (a LiteLLM-style ``model_list`` entry)."""

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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPU_", extra="ignore")

    ledger_url: str = "sqlite:///./data/spu-ledger.db"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1

    markup: Decimal = Decimal("0.25")
    usd_per_spu: Decimal = Decimal("0.01")
    free_grant_spus: Decimal = Decimal(100)
    default_max_tokens: int = 4096
    """Output bound used for the hold estimate when a request sets no max_tokens."""

    hold_ttl_s: float = 900.0
    """Longer than any call may run (upstream_timeout_s bounds it), so only a crashed
    worker's holds ever expire."""
    sweep_interval_s: float = 30.0
    upstream_timeout_s: float = 600.0
    upstream_connect_timeout_s: float = 10.0
    max_body_bytes: int = 10 * 1024 * 1024
    max_in_flight_per_org: int = 64
    token_cache_ttl_s: float = 5.0
    """A revoked token stops working on other workers within this bound."""
    shutdown_grace_s: float = 30.0

    demo_model: bool = True
    demo_stream_delay_ms: int = 0
    """Pause between the demo model's streamed words, to watch a stream arrive."""
    admin_token: SecretStr | None = None
    public_url: str = "http://127.0.0.1:8080"
    log_level: str = "info"

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


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads ``SPU_CONFIG_FILE`` (YAML) when set; environment variables win over it."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("SPU_CONFIG_FILE")
        if not path:
            return {}
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: the config file must be a YAML mapping")
        return loaded
