"""Hardening suites: the figures each suite reports in pytest's summary (helpers are in helpers.py).

A suite calls `tally(template, **counts)`; counts with the same template are summed over every test
that reported them, then printed in a "hardening figures" section. The figures travel on the test
reports (user_properties), so they print with or without -s, and under xdist too.
"""
from collections import defaultdict

import pytest


@pytest.fixture
def tally(record_property):
    """Report counts towards a suite's figure, e.g. tally("TAMPER: {accepted} of {sent} accepted", sent=3)."""
    def report(template, **counts):
        record_property("tally", (template, counts))
    return report


def pytest_terminal_summary(terminalreporter):
    """Sum every suite's tallies and print one line per figure."""
    sums = defaultdict(lambda: defaultdict(int))
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":
                continue
            for name, value in getattr(report, "user_properties", ()):
                if name == "tally":
                    template, counts = value
                    for key, n in counts.items():
                        sums[template][key] += n
    if sums:
        terminalreporter.section("hardening figures")
        for template, counts in sums.items():
            terminalreporter.write_line(template.format_map(counts))  # a count nobody reported is 0

