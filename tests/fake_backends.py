"""Fake generation backends for the stage tests: no model, answers as a real backend returns them
(one Completion per request and sample, in request order). Tests using them say "fake" in their name."""

from __future__ import annotations

from collections.abc import Callable

from avrt.models.backends import Completion


class ScriptedBackend:
    """Answers sample i of each request with `answer_for(request_id, i)`, and records the requests."""

    def __init__(self, answer_for: Callable[[str, int], str], samples: int = 1):
        self.answer_for, self.samples, self.requests = answer_for, samples, []

    @property
    def calls(self) -> int:
        return len(self.requests)

    def close(self) -> None:
        self.closed = True

    def generate(self, requests):
        self.requests.extend(requests)
        return [Completion(r.request_id, i, self.answer_for(r.request_id, i), 10, 5, "stop", i)
                for r in requests for i in range(self.samples)]


def strict_answer_backend(letter: str = "B") -> ScriptedBackend:
    """Answers every request with `letter` in the strict <think>/<answer> format."""
    return ScriptedBackend(lambda request_id, i: f"<think>t</think><answer>{letter}</answer>")


def echo_backend() -> ScriptedBackend:
    """Answers "Looks like A. Answer: (A)" to everything."""
    return ScriptedBackend(lambda request_id, i: "Looks like A.\nAnswer: (A)")


class CountingBackend:
    """Wraps a real backend and counts the requests it answers."""

    def __init__(self, inner):
        self.inner, self.requests = inner, []

    def close(self) -> None:  # the inner backend is the test's, which closes it
        pass

    def generate(self, requests):
        self.requests.extend(requests)
        return self.inner.generate(requests) if self.inner else []
