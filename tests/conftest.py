"""The tests keep the kernels' calibrations (``neuroplastic.fused.calibration``) in a file of their own
session: timings taken while tests run would otherwise be what later processes on the machine read.
And the commands they run in this process leave glibc's allocator as it is
(``neuroplastic.devices.keep_freed_memory``, tested in processes of its own)."""
import pytest

from neuroplastic.devices import HEAP_ENV
from neuroplastic.fused import calibration


@pytest.fixture(autouse=True, scope="session")
def _calibrations_of_this_session(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(calibration.ENV, str(tmp_path_factory.mktemp("calibration") / "calibration.json"))
        patch.setenv(HEAP_ENV, "release")
        yield
