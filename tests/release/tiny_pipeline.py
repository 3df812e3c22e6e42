"""A one-step pipeline to compile for the schedule tests.

No ``from __future__ import annotations`` here: kfp reads the component's type hints as real types.
"""

from kfp import dsl


@dsl.component(base_image="python:3.11")
def echo(message: str) -> str:
    return message


@dsl.pipeline(name="tiny-scheduled")
def tiny(message: str = "hello") -> None:
    echo(message=message)
