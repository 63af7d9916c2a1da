"""A longer property-based campaign over every parser of outside input (run by hand, not in
CI): the properties of tests/support/parser_properties.py, many more examples per parser than
tests/test_parsers_fuzz.py runs.

    .venv/bin/python bench/fuzz_parsers.py --examples 5000 [--seed 1] [--only NAME]

Prints, per parser, the inputs tried, how often the parser accepted and refused one (with its
documented error; a round trip's inputs are written by hangar, so nothing is counted there),
the failures (an input on which the parser raised something other than its documented error,
or a round trip that did not read back) and the time taken; the first failing input of each
is shown. A failure does not stop the campaign: each input is checked on its own, so the
counts are of distinct inputs. Exit 1 if any failed.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from tests.support.parser_properties import CASES, OUTCOMES, ParserCase

SLOW_SHARE = 100  # a slow case (a scrypt derivation per input) runs examples / 100


@dataclass
class Tally:
    tried: int = 0
    failed: int = 0
    accepted: int = 0  # parser calls that returned a value
    refused: int = 0  # parser calls that raised the documented error
    first: list[str] = field(default_factory=list)
    seconds: float = 0.0


def campaign(case: ParserCase, examples: int, seed: int) -> Tally:
    tally = Tally()

    @hypothesis_seed(seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def run(data: st.DataObject) -> None:
        value = data.draw(case.inputs)
        tally.tried += 1
        try:
            case.check(value)
        except Exception as exc:  # counted, not raised: the campaign goes on
            tally.failed += 1
            if not tally.first:
                cause = "".join(traceback.format_exception_only(exc)).strip()
                tally.first.append(f"{value!r:.300}\n      -> {cause:.500}")

    OUTCOMES.clear()
    started = time.perf_counter()
    run()
    tally.seconds = time.perf_counter() - started
    tally.accepted, tally.refused = OUTCOMES["accepted"], OUTCOMES["refused"]
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=5000, help="examples per parser")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", help="run the parsers whose name contains this")
    args = parser.parse_args()
    cases = [case for case in CASES if not args.only or args.only in case.name]
    print(f"{'parser':<42} {'inputs':>8} {'accepted':>9} {'refused':>8} {'failures':>9} {'s':>6}")
    total_tried = total_failed = 0
    for case in cases:
        examples = max(args.examples // SLOW_SHARE, 5) if case.slow else args.examples
        tally = campaign(case, examples, args.seed)
        total_tried += tally.tried
        total_failed += tally.failed
        print(
            f"{case.name:<42} {tally.tried:>8} {tally.accepted:>9} {tally.refused:>8} "
            f"{tally.failed:>9} {tally.seconds:>6.1f}"
        )
        for line in tally.first:
            print(f"    first failure: {line}")
        sys.stdout.flush()
    print(f"{'total':<42} {total_tried:>8} {total_failed:>9}")
    return 1 if total_failed else 0


if __name__ == "__main__":
    sys.exit(main())
