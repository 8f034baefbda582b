"""``kit estimate``: will it fit? The training estimate (kit.estimate) or a later step's (kit.estimate.steps)."""

from __future__ import annotations

import argparse
import json
import sys

from kit.errors import KitError
from kit.estimate import estimate_for_config
from kit.estimate.steps import STEPS, step_estimate_for_config
from kit.i18n import _


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's help, with the word it adds itself ("usage:") in the chosen language too."""

    def add_usage(self, usage, actions, groups, prefix=None):  # type: ignore[no-untyped-def]
        super().add_usage(usage, actions, groups, _("usage: ") if prefix is None else prefix)


def estimate_main(argv: list[str]) -> int:
    """``kit estimate CONFIG.yaml [key=value ...] [--device 910B] [--json] [--nproc N] [--step chat]``."""
    parser = argparse.ArgumentParser(prog="kit estimate", add_help=False, formatter_class=_HelpFormatter, description=_(
        "Will it fit? Memory per device for the LoRA run a config describes, from the model's config.json alone."))
    # Our own groups and -h, so that the headings and the help's help are translated like the rest.
    positional = parser.add_argument_group(_("positional arguments"))
    positional.add_argument("config", help=_("the training YAML (LLaMA-Factory keys)"))
    positional.add_argument("overrides", nargs="*", help=_("key=value overrides, as for kit train"))
    options = parser.add_argument_group(_("options"))
    options.add_argument("-h", "--help", action="help", help=_("show this help message and exit"))
    options.add_argument("--device", default=None, help=_("compare with this device (910B, 910B4, A100-80G, H200, cpu ...); default: this machine's"))
    options.add_argument("--device_memory_gib", type=float, default=None, help=_("compare with this much memory instead"))
    options.add_argument("--nproc", type=int, default=None, help=_("processes per node (default: NPROC_PER_NODE or 1)"))
    options.add_argument("--nnodes", type=int, default=None, help=_("nodes (default: NNODES or 1)"))
    options.add_argument("--step", choices=STEPS, default="train",
                         help=_("which step's peak memory: train (default), chat (the chat engine), vllm, export (host RAM)"))
    options.add_argument("--json", action="store_true", help=_("print JSON"))
    args = parser.parse_args(argv)
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
        print(f"kit estimate: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.render_text())
    return 0


if __name__ == "__main__":
    sys.exit(estimate_main(sys.argv[1:]))
