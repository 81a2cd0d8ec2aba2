"""Fixtures the OpenAI backend tests share."""
from __future__ import annotations

import pytest

from fake_openai import FakeOpenAI


@pytest.fixture
def servers():
    """``make(**kw)`` starts an in-thread fake OpenAI server; every one made is closed after the test."""
    made: list[FakeOpenAI] = []

    def make(**kw) -> FakeOpenAI:
        made.append(FakeOpenAI(**kw))
        return made[-1]

    yield make
    for s in made:
        s.close()
