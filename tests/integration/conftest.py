"""The lab fleets the integration tests share.

Every lab a test starts carries the label ``io.fledge.test=<this run>``
(helpers.lab): the run removes its own labs at the end whatever happens,
and `.ci/run` first removes those that a killed run left behind
(``fledge lab down --label io.fledge.test``), never a user's lab.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fledge import inventory

from helpers import remove_labs_of_this_run, shared_fleet


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[inventory.Inventory]:
    """The shared lab fleet, a coordinator and two devices, provisioned once.

    Tests that use it leave it as they found it, unless they run last
    (tests/conftest.py states the order).
    """
    yield shared_fleet.get(tmp_path_factory)


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Remove the shared fleet as soon as the last test that uses it is done."""
    if "fleet" in getattr(item, "fixturenames", ()) and (
        nextitem is None or "fleet" not in getattr(nextitem, "fixturenames", ())
    ):
        shared_fleet.close()


def pytest_sessionfinish(session: pytest.Session) -> None:
    remove_labs_of_this_run()
