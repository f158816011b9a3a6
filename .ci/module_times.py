"""Seconds per test module from a pytest JUnit XML report (setup and teardown included).

python .ci/module_times.py REPORT.xml
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import Counter


def module_times(report: str) -> Counter[str]:
    times: Counter[str] = Counter()
    for case in ET.parse(report).iter("testcase"):
        module = case.get("classname", "?").rsplit(".", 1)[-1]
        times[module] += float(case.get("time", 0))
    return times


if __name__ == "__main__":
    for module, seconds in module_times(sys.argv[1]).items():
        print(f"{module:40s} {seconds:7.0f}")
