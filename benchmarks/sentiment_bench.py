"""Measure VADER scoring throughput in one process and in a pool of worker processes.

Usage:
    PYTHONPATH=. python benchmarks/sentiment_bench.py [--texts 10000] [--repeats 3] [--workers N]

The texts are the Amazon Alexa review texts repeated up to --texts when CX_REAL_DATA_DIR
points at a folder with amazon_alexa_reviews/amazon_alexa.tsv, and seeded generated
sentences otherwise. The first output line names the source. Both modes score the same texts through
cx_pipeline.text.score_texts in one invocation, and the pool's time includes starting
its workers. Each figure is the median of --repeats runs, except the start-up time of the
first pool, which happens once per process.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import statistics
import time
from pathlib import Path

from cx_pipeline.text import available_cpus, score_texts

_OPENINGS = ["The", "My new", "This", "Our", "The second"]
_SUBJECTS = [
    "echo",
    "speaker",
    "app",
    "delivery",
    "setup",
    "sound",
    "support team",
    "screen",
    "remote",
]
_VERBS = ["is", "was", "seems", "turned out", "has been"]
_OPINIONS = [
    "great",
    "terrible",
    "okay",
    "really good",
    "not working",
    "awful",
    "easy to use",
    "confusing",
    "amazing",
    "slow",
    "fine",
    "disappointing",
    "perfect",
    "broken",
    "better than expected",
]
_TAILS = [
    "and I love it.",
    "but the app keeps crashing.",
    "so I returned it.",
    "for the price.",
    "after the last update.",
    "and the kids use it every day.",
    "which is annoying!",
    "",
]


def generated_texts(count: int, seed: int = 2018) -> list[str]:
    """Return ``count`` seeded review-like sentences of one to three clauses."""
    generator = random.Random(seed)
    texts = []
    for _ in range(count):
        clauses = [
            " ".join(
                [
                    generator.choice(_OPENINGS),
                    generator.choice(_SUBJECTS),
                    generator.choice(_VERBS),
                    generator.choice(_OPINIONS),
                    generator.choice(_TAILS),
                ]
            ).strip()
            for _ in range(generator.randint(1, 3))
        ]
        texts.append(" ".join(clauses))
    return texts


def alexa_texts(count: int) -> list[str] | None:
    """Return the Alexa review texts repeated up to ``count``, or None without the data set."""
    folder = os.environ.get("CX_REAL_DATA_DIR")
    if not folder:
        return None
    path = Path(folder) / "amazon_alexa_reviews" / "amazon_alexa.tsv"
    if not path.is_file():
        return None
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reviews = [row["verified_reviews"] for row in csv.DictReader(handle, delimiter="\t")]
    reviews = [text for text in reviews if text and text.strip()]
    return [reviews[i % len(reviews)] for i in range(count)]


def cpu_ticks() -> tuple[int, int] | None:
    """Return the busy and total CPU ticks of the whole machine from /proc/stat (Linux only)."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def time_scoring(
    texts: list[str], workers: int, repeats: int
) -> tuple[float, float | None, list[float | None]]:
    """Score ``texts`` ``repeats`` times and return the median seconds, the number of the
    machine's cores busy meanwhile (all processes, None without /proc/stat), and the scores.
    """
    durations = []
    scores: list[float | None] = []
    ticks_before = cpu_ticks()
    for _ in range(repeats):
        started = time.perf_counter()
        scores = score_texts(texts, workers=workers, parallel_min_texts=1)
        durations.append(time.perf_counter() - started)
    ticks_after = cpu_ticks()
    busy_cores = None
    if ticks_before and ticks_after and ticks_after[1] > ticks_before[1]:
        busy_share = (ticks_after[0] - ticks_before[0]) / (ticks_after[1] - ticks_before[1])
        busy_cores = busy_share * (os.cpu_count() or 1)
    return statistics.median(durations), busy_cores, scores


def main() -> None:
    """Run both modes on the same texts and print a table of throughput and speedup."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--texts", type=int, default=10_000, help="number of texts to score (default 10000)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per mode; the median is shown (default 3)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=available_cpus(),
        help="worker processes of the pool (default: available CPUs)",
    )
    args = parser.parse_args()

    texts = alexa_texts(args.texts)
    source = "Amazon Alexa review texts, repeated" if texts else "seeded generated sentences"
    if texts is None:
        texts = generated_texts(args.texts)
    mean_length = sum(len(text) for text in texts) / len(texts)
    load = os.getloadavg()

    print(f"texts: {len(texts):,} ({source}), mean length {mean_length:.0f} characters")
    print(
        f"CPUs available: {available_cpus()}, Python {platform.python_version()}, repeats: {args.repeats}"
    )
    print(f"load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")

    # Scoring one text per worker costs almost nothing, so these are start-up times. The
    # first pool of a process also starts the forkserver, and later pools reuse it.
    first_startup_seconds, _, _ = time_scoring(
        texts[: args.workers], workers=args.workers, repeats=1
    )
    startup_seconds, _, _ = time_scoring(
        texts[: args.workers], workers=args.workers, repeats=args.repeats
    )

    single_seconds, single_busy, single_scores = time_scoring(texts, 1, args.repeats)
    pool_seconds, pool_busy, pool_scores = time_scoring(texts, args.workers, args.repeats)
    if pool_scores != single_scores:
        raise SystemExit("error: the pool returned different scores than the single process")

    # "cores busy" counts every process on the machine, so a value above the mode's own
    # process count means other work competed for the CPUs during the measurement.
    print()
    print(
        f"{'mode':<16} {'workers':>7} {'seconds':>8} {'texts/s':>9} {'speedup':>7} {'cores busy':>10}"
    )
    for mode, workers, seconds, busy in (
        ("single process", 1, single_seconds, single_busy),
        ("process pool", args.workers, pool_seconds, pool_busy),
    ):
        busy_text = "n/a" if busy is None else f"{busy:.2f}"
        print(
            f"{mode:<16} {workers:>7} {seconds:>8.2f} {len(texts) / seconds:>9,.0f} "
            f"{single_seconds / seconds:>6.2f}x {busy_text:>10}"
        )
    print(
        f"\npool start-up ({args.workers} texts through the pool): first pool of the process "
        f"{first_startup_seconds:.2f} s, later pools {startup_seconds:.2f} s"
    )


if __name__ == "__main__":
    main()
