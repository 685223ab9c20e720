"""Typed pricing failures; each message names the model or field at fault."""


class PricingError(Exception):
    """Base class of every pricing failure."""


class UnknownModelPrice(PricingError):
    """Neither litellm's cost map nor the configuration prices this model.

    Callers must refuse the call: metering a model at an unknown price would
    either give it away or overcharge by a guess.
    """

    def __init__(self, model: str, missing: str) -> None:
        super().__init__(
            f"no price for model {model!r}: {missing} is unknown; "
            "add a rate override for it in the configuration"
        )
        self.model = model
        self.missing = missing


class InvalidTokenCounts(PricingError):
    """A provider's usage report cannot be read as token counts."""

    def __init__(self, field: str, value: object) -> None:
        super().__init__(f"usage field {field!r} is not a token count: {value!r}")
        self.field = field
        self.value = value


class TokenizerUnavailable(PricingError):
    """A tiktoken encoding file is not on disk; loading it would need the network."""

    def __init__(self, encoding: str, path: str) -> None:
        super().__init__(f"tiktoken encoding {encoding!r} is not cached at {path}")
        self.encoding = encoding
        self.path = path
