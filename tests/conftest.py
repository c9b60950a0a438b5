"""One torch intra-op thread in every test process.

The suite runs on two workers (``-n 2``); with torch's default of one thread per core each worker
would start two, four threads on two cores, and tests that call a learner or a collector outside
``train`` (which holds its own threads to one) slow down many times over on tiny tensors.
"""

import torch

torch.set_num_threads(1)
