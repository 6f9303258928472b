"""Test-session environment, set before any notebook kernel starts (kernels inherit it).

Records of the notebooks that nbval executes go to a temporary folder (``C2F_RECORD_DIR``) where the
regression tests read them; the checkpoint cache is fresh, so every notebook trains from scratch as its
reference did; progress goes to a file instead of the page and torch uses one CPU thread, as when the
references were made (:data:`c2f.book.runner.REFERENCE_ENV`): a different thread count changes float
rounding, and a count such as the active units, a threshold on floats, can then flip.
"""

import os
import tempfile
from pathlib import Path

SESSION_DIR = Path(tempfile.mkdtemp(prefix="c2f-tests-"))
SMOKE_RECORDS = SESSION_DIR / "records"
os.environ["C2F_RECORD_DIR"] = str(SMOKE_RECORDS)
os.environ["C2F_CACHE"] = str(SESSION_DIR / "cache")
# the runner's kernels, which made the references, report progress to a file for the console, not to the
# page: one line per trained model instead of a progress bar
os.environ["C2F_PROGRESS"] = str(SESSION_DIR / "progress.log")
from c2f.book.runner import REFERENCE_ENV  # noqa: E402

os.environ.update(REFERENCE_ENV)
