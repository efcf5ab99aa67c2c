"""``webhook``: POST records as JSON to any URL, optionally signed, or as Slack messages.

Without ``template`` each call posts ``{"records": [...]}`` (up to ``batch_size``). With
``template`` each record becomes ``{"text": "<rendered template>"}``, the shape Slack
incoming webhooks (and Mattermost, Teams connectors, Discord's ``/slack`` endpoint) take.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import orjson
from pydantic import AnyHttpUrl, Field, field_validator

from connectord import (
    DeliveryResult,
    Destination,
    Options,
    PermanentError,
    Record,
    RetryableError,
    Secret,
)
from connectord.expressions import Expression, compile_expression
from connectord.http import raise_for_status
from connectord.ingest import sign

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


class WebhookDestination(Destination):
    """POST records as JSON to a URL, optionally HMAC-signed or as Slack-style text."""

    type = "webhook"
    max_batch_size: ClassVar[int] = 100

    class Options(Options):
        url: AnyHttpUrl = Field(description="Where to POST.")
        hmac_secret: Secret | None = Field(
            None,
            description="Sign each body: `X-Connectord-Signature: t=<unix>,v1=<hex>` "
            "(HMAC-SHA256 of `<t>.<body>`).",
        )
        bearer_token: Secret | None = Field(None, description="Sent as `Authorization: Bearer`.")
        headers: dict[str, Secret] = Field(
            default_factory=dict,
            description="Extra request headers; values are treated as secrets (API keys go here).",
        )
        template: str | None = Field(
            None,
            description="Slack-style message: `{expr}` placeholders are JMESPath on the "
            'record, e.g. "{event} by {userId}: {properties.total}". Posts '
            '{"text": ...} per record.',
        )
        mode: Literal["batch", "each"] = Field(
            "batch",
            description='"batch": one request per batch as {"records": [...]}; '
            '"each": one request per record (the record itself). `template` implies each.',
        )
        batch_size: int = Field(
            100, ge=1, le=10_000, description="Records per request in batch mode."
        )

        @field_validator("template")
        @classmethod
        def _template(cls, value: str | None) -> str | None:
            if value is not None:
                for expression in _PLACEHOLDER.findall(value):
                    compile_expression(expression.strip())
            return value

    def __init__(self, options: Any, context: Any) -> None:
        super().__init__(options, context)
        self.max_batch_size = options.batch_size if options.mode == "batch" else 50
        self.url = str(options.url)
        self.placeholders = {
            e: Expression(e.strip()) for e in _PLACEHOLDER.findall(options.template or "")
        }

    def render(self, record: Record) -> str:
        """Fill the template's ``{expr}`` placeholders from the record."""

        def value(match: re.Match[str]) -> str:
            found = self.placeholders[match.group(1)].search(record)
            if found is None:
                return ""
            return found if isinstance(found, str) else orjson.dumps(found).decode()

        return _PLACEHOLDER.sub(value, self.options.template or "")

    async def send(self, records: Sequence[Record]) -> DeliveryResult | None:
        if self.options.template is None and self.options.mode == "batch":
            await self.post({"records": list(records)})
            return None
        result = DeliveryResult()
        for index, record in enumerate(records):
            body = {"text": self.render(record)} if self.options.template else record
            try:
                await self.post(body)
            except PermanentError as err:
                result.rejected[index] = str(err)
            except RetryableError as err:
                # Only this record and the ones after it are sent again.
                result.retry.update(range(index, len(records)))
                result.retry_after = err.retry_after
                if index == 0:
                    raise
                break
        return result

    async def post(self, payload: Any) -> None:
        body = orjson.dumps(payload)
        headers = {
            "Content-Type": "application/json",
            **{k: v.get_secret_value() for k, v in self.options.headers.items()},
        }
        if self.options.hmac_secret is not None:
            headers["X-Connectord-Signature"] = sign(
                self.options.hmac_secret.get_secret_value(), body
            )
        if self.options.bearer_token is not None:
            headers["Authorization"] = f"Bearer {self.options.bearer_token.get_secret_value()}"
        async with self.context.http().post(self.url, data=body, headers=headers) as response:
            text = await response.text(errors="replace")
            raise_for_status(response.status, response.headers, text, vendor="webhook")
