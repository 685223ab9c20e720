"""What a call was charged and what the org has left, as every reply tells its client.

A complete reply carries it in headers; a stream, whose headers went out
before its cost was known, ends with it: an SSE comment line just before the
end (clients skip comments), and, when the stream reports usage, inside its
final usage object as decimal strings, as OpenRouter reports ``usage.cost``.
"""

from dataclasses import dataclass

from ledger import SettleResult, format_spus


@dataclass(frozen=True, slots=True)
class Receipt:
    request_id: str
    charged_units: int
    remaining_units: int
    """The org's available credits once the call settled."""

    @classmethod
    def of(cls, request_id: str, result: SettleResult) -> "Receipt":
        return cls(request_id, result.record.charged_units, result.available_units)

    def headers(self) -> dict[str, str]:
        return {
            "x-request-id": self.request_id,
            "x-spu-charged": format_spus(self.charged_units),
            "x-spu-remaining": format_spus(self.remaining_units),
        }

    def usage_fields(self) -> dict[str, str]:
        return {
            "spu_charged": format_spus(self.charged_units),
            "spu_remaining": format_spus(self.remaining_units),
        }

    def comment(self) -> bytes:
        """``: spu_charged=… spu_remaining=…`` and a blank line (which dispatches nothing)."""
        fields = " ".join(f"{name}={value}" for name, value in self.usage_fields().items())
        return f": {fields}\n\n".encode()
