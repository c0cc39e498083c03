"""The Align callbacks: signed events sent to the host's ``callbacks`` endpoint.

:class:`CallbackSender` sends one event now (:meth:`~CallbackSender.send`) or a sequence in
the background after the configured delay (:meth:`~CallbackSender.schedule`), as Align does
after an order, a revision or an acceptance. Where they go, whether they go by themselves and
the secret they are signed with are read from a :class:`CallbackConfig` at the time of
sending, so a test may change them while the sandbox runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from .signing import signed_event

EventFactory = Callable[[], tuple[str, dict[str, Any]]]
"""Makes one event ``(type, data)`` when it is sent, so its timestamps are the sending time."""


class CallbackConfig(Protocol):
    """The callback settings (the :class:`~.server.Sandbox`'s attributes of the same names)."""

    callback_url: str | None
    callback_secret: str
    auto_callbacks: bool
    callback_delay: float


class Poster(Protocol):
    def post(self, call: str, url: str, payload: bytes, headers: dict[str, str]) -> int: ...


class Spawner(Protocol):
    @property
    def generation(self) -> int: ...

    def spawn(self, work: Callable[[], Any], delay: float = 0.0) -> None: ...


class CallbackSender:
    """Signs and sends Align callbacks, now or in the background."""

    def __init__(self, config: CallbackConfig, outbox: Poster, background: Spawner) -> None:
        self._config = config
        self._outbox = outbox
        self._background = background

    def send(
        self,
        event_type: str,
        data: dict[str, Any],
        url: str | None = None,
        secret: str | None = None,
        webhook_id: str | None = None,
        timestamp: datetime | float | None = None,
    ) -> int:
        """Send one signed callback now; the status the host answered (0: none)."""
        target = url or self._config.callback_url
        if not target:
            raise ValueError("no callback URL: pass url= or set callback_url")
        payload, headers = signed_event(
            event_type, data, secret or self._config.callback_secret, webhook_id, timestamp
        )
        return self._outbox.post("callback", target, payload, headers)

    def schedule(self, events: Sequence[EventFactory]) -> None:
        """Send ``events`` in order after ``callback_delay``, if automatic callbacks are on."""
        if not (self._config.auto_callbacks and self._config.callback_url):
            return
        generation = self._background.generation

        def deliver() -> None:
            for make_event in events:
                if generation != self._background.generation or not self._config.callback_url:
                    return
                event_type, data = make_event()
                self.send(event_type, data)

        self._background.spawn(deliver, delay=self._config.callback_delay)
