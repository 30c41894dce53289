"""Chat client for OpenAI and any OpenAI-compatible server (vLLM, llama.cpp, Ollama, ...).

A thin wrapper over the official ``openai`` SDK that turns its exceptions into the project's
:class:`~integrations.TransientError` / :class:`~integrations.PermanentError` split. It
returns text only; what is done with the text (grounding check, fallback) is the narrator's
business. By design this module knows nothing about agents, brokers or orders.

Servers quote what they were sent in error bodies (some echo the API key in a 401): every
error message goes through :func:`integrations.redact` with the client's key before it is
clipped, and the SDK's exception (which holds the raw body) is not chained to the error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from integrations._errors import MissingCredentialsError, PermanentError, TransientError
from integrations._redact import redact

__all__ = ["OpenAIChat", "LLMReply", "LLMTimeoutError", "KEYLESS_API_KEY"]

#: Sent as the API key to a local server (``base_url`` set) when no key is configured.
KEYLESS_API_KEY = "not-needed"

_MAX_DETAIL = 300

if TYPE_CHECKING:
    import openai


class LLMTimeoutError(TransientError):
    """The LLM server did not answer within the client's time-out."""


@dataclass(frozen=True)
class LLMReply:
    """One chat completion.

    Attributes
    ----------
    text : str
        The assistant message (empty when the server returned no content), with the API key
        (and every registered secret) replaced by ``***``.
    model : str
        The model that answered, as the server reports it.
    latency_s : float
        Wall-clock seconds of the call, retries included.
    """

    text: str
    model: str
    latency_s: float


def _detail(exc: openai.OpenAIError, secrets: tuple[str, ...]) -> str:
    message = getattr(exc, "message", None) or str(exc)
    # Redact before clipping: a clipped key would no longer be recognised.
    message = redact(" ".join(str(message).split()), secrets)
    return message if len(message) <= _MAX_DETAIL else message[: _MAX_DETAIL - 3] + "..."


class OpenAIChat:
    """Single-turn chat completions through the real ``openai.OpenAI`` client.

    Parameters
    ----------
    api_key : str or None
        The OpenAI key (from ``OPENAI_API_KEY`` via :class:`agents.config.Secrets`). May be
        None only when ``base_url`` points at a server that needs no key; ``"not-needed"`` is
        sent then.
    model : str
        Model name, e.g. ``"gpt-4o-mini"``.
    base_url : str, optional
        An OpenAI-compatible endpoint such as ``"http://127.0.0.1:8000/v1"``; default is the
        SDK's (OpenAI's API, or ``OPENAI_BASE_URL``).
    timeout : float, default 20.0
        Seconds per attempt, > 0.
    max_retries : int, default 2
        Retries the SDK makes itself on connection errors, 408/409/429 and 5xx, >= 0.
    temperature : float, default 0.0
        Sampling temperature in [0, 2].

    Raises
    ------
    MissingCredentialsError
        If ``api_key`` is missing and no ``base_url`` is given; names ``OPENAI_API_KEY``.
    ValueError
        For an empty model or an out-of-range numeric argument.
    """

    backend = "openai"

    def __init__(
        self,
        api_key: str | None,
        model: str,
        base_url: str | None = None,
        timeout: float = 20.0,
        max_retries: int = 2,
        temperature: float = 0.0,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must be a non-empty string, got {model!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, (int, float))
            or not 0 <= temperature <= 2
        ):
            raise ValueError(f"temperature must be in [0, 2], got {temperature!r}")
        if base_url is not None and (not isinstance(base_url, str) or not base_url.strip()):
            raise ValueError(f"base_url must be a non-empty string or None, got {base_url!r}")
        key = api_key.strip() if isinstance(api_key, str) else None
        if not key:
            if base_url is None:
                raise MissingCredentialsError(
                    "the openai narrator backend needs an API key: set the environment variable "
                    "OPENAI_API_KEY, or set llm.base_url to a local OpenAI-compatible server"
                )
            key = KEYLESS_API_KEY
        self._model = model
        self._base_url = base_url
        self._timeout = float(timeout)
        self._temperature = float(temperature)
        self._secrets = (key,)
        import openai  # here, not at import: a run with the template narrator never loads it (about 1 s)

        self._client = openai.OpenAI(
            api_key=key, base_url=base_url, timeout=float(timeout), max_retries=max_retries
        )

    @property
    def model(self) -> str:
        """The model requested."""
        return self._model

    @property
    def base_url(self) -> str:
        """The endpoint in use."""
        return str(self._client.base_url)

    def __repr__(self) -> str:
        return f"OpenAIChat(model={self._model!r}, base_url={self.base_url!r})"

    def complete(self, system: str, user: str) -> LLMReply:
        """Send one system and one user message; return the assistant's text.

        Parameters
        ----------
        system : str
            System prompt.
        user : str
            User message.

        Returns
        -------
        LLMReply

        Raises
        ------
        LLMTimeoutError
            No answer within ``timeout`` (after the SDK's retries); a :class:`TransientError`.
        TransientError
            Connection failure, rate limit (429) or server error (5xx).
        PermanentError
            Authentication (401), bad request (400), unknown model (404), any other HTTP error
            status, or an answer without choices.
        """
        if not isinstance(system, str) or not isinstance(user, str):
            raise TypeError("system and user must be strings")
        import openai  # loaded by __init__ already; the exception classes are its

        host = urlsplit(self.base_url).netloc or self.base_url
        start = time.perf_counter()
        try:
            response = self._client.chat.completions.create(
                model=self._model,
                messages=[
                    {"role": "system", "content": system},
                    {"role": "user", "content": user},
                ],
                temperature=self._temperature,
            )
        except openai.APITimeoutError as exc:
            raise LLMTimeoutError(
                f"LLM server {host} did not answer within {self._timeout:g}s"
            ) from exc
        except openai.APIConnectionError as exc:
            raise TransientError(f"cannot reach LLM server {host}: {_detail(exc, self._secrets)}") from None
        except (openai.RateLimitError, openai.InternalServerError) as exc:
            raise TransientError(
                f"LLM server {host} answered HTTP {exc.status_code}: {_detail(exc, self._secrets)}"
            ) from None
        except openai.AuthenticationError as exc:
            raise PermanentError(
                f"LLM server {host} refused the credentials (HTTP 401; check OPENAI_API_KEY): "
                f"{_detail(exc, self._secrets)}"
            ) from None
        except openai.APIStatusError as exc:
            # BadRequest, NotFound (unknown model), PermissionDenied, Unprocessable, ...
            raise PermanentError(
                f"LLM server {host} answered HTTP {exc.status_code}: {_detail(exc, self._secrets)}"
            ) from None
        except openai.OpenAIError as exc:
            # Malformed responses and anything else the SDK raises: retrying would not help.
            raise PermanentError(f"LLM call to {host} failed: {_detail(exc, self._secrets)}") from None
        latency = time.perf_counter() - start
        choices = getattr(response, "choices", None) or []
        if not choices:
            raise PermanentError(f"LLM server {host} returned no choices")
        content = choices[0].message.content
        return LLMReply(
            # A server that echoes the key in its answer does not get it into a narrative either.
            text=redact(content, self._secrets) if isinstance(content, str) else "",
            model=getattr(response, "model", None) or self._model,
            latency_s=latency,
        )
