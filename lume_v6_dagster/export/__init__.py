"""Core ML export, verification and the release bundle.

coremltools announces, on every import, things that are expected here and change nothing:
no Core ML runtime off macOS (parity runs the MIL program with NumPy instead), no
scikit-learn converter (none is used), and an untested torch release (the pinned one, whose
packages the smoke test checks). Converting a traced model also stores torch's int64 index
constants as Core ML's int32, with a warning per package. Those exact notices are dropped at
the source; any other coremltools warning (say, float64 into fp16) still shows.
"""

import logging
import re

KNOWN_BENIGN = re.compile(
    r"Failed to load _ML\w+Proxy: No module named 'coremltools\.libcoremlpython'"
    r"|scikit-learn version \S+ is not supported\."
    r"|Torch version \S+ has not been tested with coremltools\."
    r"|Saving value type of int64 into a builtin type of int32, might lose precision!"
)


class _DropKnownBenign(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not KNOWN_BENIGN.match(record.getMessage())


logging.getLogger("coremltools").addFilter(_DropKnownBenign())
