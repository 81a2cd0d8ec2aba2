"""Argument types and the parser class of the ``manyshot`` command line: a wrong value is a one-line usage error."""
from __future__ import annotations

import argparse

DEBUG_HELP = "on an error, print its traceback (and Prefect's) as well"

EXIT_ERROR = 1  # the command could not be carried out: bad input data, an unusable model, an unwritable --out
EXIT_USAGE = 2  # the command line is wrong (argparse's code): an unknown option, a number out of range
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of stdout went away (`manyshot bank diff --json | head`)

EXIT_CODES = """exit codes:
  0    success
  1    the command could not be carried out: a missing or unreadable bank,
       dataset or model, an unwritable --out, a build that kept no shot,
       an evaluation with no cell that could run
  2    the command line is wrong: an unknown option, a number out of range,
       options that do not go together
  130  interrupted by Ctrl-C (143: by SIGTERM); finished checkpoints are
       kept and the same command resumes
  141  the output pipe closed early (e.g. | head)
An error is one line, "manyshot: error: ..."; --debug adds its traceback."""


class Parser(argparse.ArgumentParser):
    """argparse's parser, with a usage error as one line."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"manyshot: error: {message} (see {self.prog} --help)\n")


def _at_least(minimum: int, kind: str):
    """An argparse type: an integer of at least ``minimum`` (``kind`` names it in the error)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {value}")
        return value
    return parse


POSITIVE, NON_NEGATIVE = _at_least(1, "a positive integer"), _at_least(0, "a non-negative integer")


def temperature(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a temperature >= 0, got {text}")
    return value


def ints(text: str) -> tuple[int, ...]:
    """``"0,4,16"`` -> ``(0, 4, 16)``."""
    words = [x.strip() for x in text.split(",") if x.strip()]
    if not all(word.isdecimal() for word in words):
        raise argparse.ArgumentTypeError(f"expected comma-separated non-negative integers, got {text!r}")
    return tuple(int(word) for word in words)


def shot_counts(text: str) -> tuple[int | str, ...]:
    """``"0,4,max"`` -> shot counts (:func:`flows.core.specs.parse_shots`)."""
    from flows.core.specs import ShotCountError, parse_shots

    try:
        return parse_shots(text)
    except ShotCountError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def words(text: str) -> tuple[str, ...]:
    """``"a, b"`` -> ``("a", "b")``."""
    return tuple(x.strip() for x in text.split(",") if x.strip())


def subcommands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every (sub)command parser below ``parser``."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += [child, *subcommands(child)]
    return found
