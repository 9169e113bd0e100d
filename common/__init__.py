"""common package: the protocol's pure parts, shared by the three programs.

Importing it limits OpenBLAS to one thread, before ``common.batch`` imports
numpy.  Nothing here calls BLAS (numpy only sums words), yet numpy's OpenBLAS
starts one worker per CPU at import, and they spin at full speed for about
0.1 s before they sleep.  On a 2-core machine that is the other program's
core, during the transfer's first tenth of a second: a 4 MiB transfer over
loopback took 28-38 ms with the workers and 23-27 ms without.  Set here, not
by the user, because no value of it does this code any good.
"""

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"
