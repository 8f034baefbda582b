"""One training run: its plan (``plan``: every check and the encoded data, built once), the output
folder's rules (``output``), the torchrun launch (``launch``), and the training
recipe (``recipe``). DeepSpeed's files are configuration: ``kit.config.deepspeed``."""
