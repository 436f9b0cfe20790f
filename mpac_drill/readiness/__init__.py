"""DR readiness between drills (``mpac-drill check``): read-only checks, stored and reported.

``rows`` holds the records and thresholds (both platforms return them), ``runner`` runs
one target's checks through its platform's ``readiness`` module, ``history`` stores each
run as ``runs/checks/<UTC>.json`` (``contract/check-result.schema.json``) and reads them
back for the quarterly report, ``junit`` writes one test case per check.
"""
