#!/usr/bin/env python3
"""Fails when a ctest run skipped a test for a reason CI does not accept.

usage: check_skips.py JUNIT_XML ALLOWLIST

JUNIT_XML is ctest's --output-junit file; ALLOWLIST holds one regular expression per line
(# comments). Every skipped test must have printed at least one "FQ-SKIPPED: <reason>" line, and
every such reason must match an expression of the allowlist.
"""
import re
import sys
import xml.etree.ElementTree as ET


def main() -> int:
    junit, allowlist = sys.argv[1], sys.argv[2]
    with open(allowlist, encoding="utf-8") as f:
        allowed = [re.compile(line.strip()) for line in f
                   if line.strip() and not line.lstrip().startswith("#")]
    bad, accepted = [], 0
    for case in ET.parse(junit).getroot().iter("testcase"):
        if case.find("skipped") is None:
            continue
        out = case.findtext("system-out") or ""
        reasons = sorted(set(re.findall(r"FQ-SKIPPED: (.*)", out)))
        name = case.get("name")
        if not reasons:
            bad.append(f"{name}: skipped without saying why")
        for reason in reasons:
            if any(a.search(reason) for a in allowed):
                accepted += 1
            else:
                bad.append(f"{name}: {reason}")
    for line in bad:
        print(f"check_skips: not an accepted skip: {line}")
    print(f"check_skips: {accepted} accepted skip reasons, {len(bad)} not accepted "
          f"({allowlist} lists the accepted ones)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
