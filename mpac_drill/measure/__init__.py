"""How every figure of a drill is measured, on every platform alike.

``observer`` (health sampling, detect), ``recovery`` (RTO from the samples), ``canary``
(acknowledged writes, lost writes, RPO), ``payments`` (QR payments reconciled, finding F9),
``redis_impact`` (what a cache outage lets through), ``load`` (locust's figures). The
Chaos Toolkit entry points in ``probes/`` are a few lines each over these.
"""
