"""An event that can never succeed, for the tests of dead letters and of batches."""
from __future__ import annotations


def text_that_always_fails(monkeypatch, text: str = "boom") -> None:
    """From now on a text message saying ``text`` raises in its handler, every time."""
    import handlers
    from handlers import message

    real = message.handle

    def handle(event, services, state):
        if (event.get("message") or {}).get("text") == text:
            raise ValueError("this event can never succeed")
        return real(event, services, state)

    monkeypatch.setattr("handlers.HANDLERS", {**handlers.HANDLERS, "message": handle})
