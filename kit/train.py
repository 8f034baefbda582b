"""``python -m kit.train CONFIG.yaml [key=value ...]``: the command the quick start's torchrun line runs.

``torchrun --nproc_per_node 1 ... -m kit.train cfg.yaml`` is how the LLaMA-Factory quick start starts
training, and ``kit train`` starts its torchrun ranks the same way (with ``--plan DIR``). The recipe
itself is ``kit.run.recipe``; this module only keeps that documented command short.
"""

import sys

from kit.run.recipe import main

if __name__ == "__main__":
    sys.exit(main())
