"""The fake MPAC server of ``tests/test_load_runner.py`` for the load tests here."""

from tests.test_load_runner import fake_hosts  # noqa: F401 - a fixture
