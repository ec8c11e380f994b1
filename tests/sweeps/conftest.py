"""Ray in these tests stays on the loopback interface.

Ray gives every node the machine's own network address, even for ``127.0.0.1``, unless clusters
are switched off as on Windows and macOS, where it uses the loopback address alone. Ray reads this
when it is imported, and the test's cluster and its sweep commands inherit it.
"""

import os

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
