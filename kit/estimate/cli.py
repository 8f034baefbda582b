"""``kit estimate``: will it fit? The training estimate (kit.estimate) or a later step's (kit.estimate.steps)."""

from __future__ import annotations

import json
import math
import sys

from kit.errors import KitError
from kit.estimate import estimate_for_config
from kit.estimate.steps import STEPS, step_estimate_for_config
from kit.i18n import _


def estimate_main(argv: list[str]) -> int:
    """``kit estimate CONFIG.yaml [key=value ...] [--device 910B] [--json] [--nproc N] [--step chat]``."""
    from kit.config.command_line import ConfigCommandParser

    parser = ConfigCommandParser("kit estimate", _(
        "Will it fit? Memory per device for the LoRA run a config describes, from the model's config.json\n"
        "alone (no weights are read)."),
        config_required=True)
    parser.add_argument("--device", default=None, help=_("compare with this device (910B, 910B4, A100-80G, H200, cpu ...); default: this machine's"))
    parser.add_argument("--device_memory_gib", type=float, default=None, metavar="GIB", help=_("compare with this much memory instead"))
    parser.add_argument("--nproc", type=int, default=None, metavar="N", help=_("processes per node (default: NPROC_PER_NODE or 1)"))
    parser.add_argument("--nnodes", type=int, default=None, metavar="N", help=_("nodes (default: NNODES or 1)"))
    parser.add_argument("--step", choices=STEPS, default="train",
                        help=_("which step's peak memory: train (default), chat (the chat engine), vllm, export (host RAM)"))
    parser.add_argument("--json", action="store_true", help=_("print JSON"))
    args = parser.parse_args(argv)
    gib = args.device_memory_gib
    if gib is not None and not (math.isfinite(gib) and 0 < gib <= 1 << 20):
        parser.error(_("--device_memory_gib: {value} is not a memory size; give the device's memory in GiB, e.g. 64").format(
            value=args.device_memory_gib))
    for flag, value in (("--nproc", args.nproc), ("--nnodes", args.nnodes)):
        if value is not None and value < 1:
            parser.error(_("{flag}: {value} is not a count; give 1 or more").format(flag=flag, value=value))
    try:
        from kit.config import load
        from kit.envvars import EnvSettings

        env = EnvSettings.from_environ()
        cfg = load(args.config, args.overrides)
        if args.step == "train":
            result = estimate_for_config(cfg, device=args.device, device_memory_gib=args.device_memory_gib,
                                         nproc=args.nproc or env.nproc_per_node or 1, nnodes=args.nnodes or env.nnodes or 1)
        else:
            result = step_estimate_for_config(cfg, args.step, device=args.device, device_memory_gib=args.device_memory_gib)
    except (KitError, ValueError) as exc:  # ConfigError is a ValueError: a person's mistake, no traceback
        print(_("error: {message}").format(message=exc), file=sys.stderr)
        return 2
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.render_text())
    return 0


if __name__ == "__main__":
    sys.exit(estimate_main(sys.argv[1:]))
