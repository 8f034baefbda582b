"""The source of the tutorial notebooks: one file per notebook, nbNN_<name>.py for notebooks/*/NN_<name>.ipynb.

Each file lists its cells in order, ``CELLS = [md(...), params(...), code(...), ...]``, every cell with a name of
its own (its cell id in both editions). cells.py holds the helpers and the rules; shared.py the blocks several
notebooks use. scripts/make_notebooks.py writes the notebooks from here (--check compares instead).
"""
