"""Game day (issue 15): the runbook's region procedures walked by people, step by step, timed.

- ``plan``: the procedures as data (``experiments/plans/<scenario>.yaml``), loaded and checked.
- ``dr``: the sandbox's manual steps, each performed for real (``mpac-drill sandbox dr ...``).
- ``state``: the run folder's ``gameday.json`` and the ack/update handshake files.
- ``walk``: the harness side, run inside the drill in place of the automated failover.
"""
