"""Notebook 40: the runs of a sweep side by side, every loss curve on one figure and the final eval loss per setting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from kit.i18n import N_, _
from kit.tutorial.display import Picture, plot_label

LINE_STYLES = ("-", "--", ":", "-.")


def setting(row: Mapping[str, Any], names: Sequence[str]) -> str:
    """A run by its swept values, ``lora_rank=8, learning_rate=0.003`` (its run id when nothing was swept)."""
    return ", ".join(f"{name}={row[name]:g}" if isinstance(row[name], (int, float)) else f"{name}={row[name]}"
                     for name in names if name in row) or str(row["run_id"])


def _sorted(values: set[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:  # values of several types (None among numbers): in a stable order all the same
        return sorted(values, key=str)


@dataclass
class SweepPlots:
    """The completed runs of a ``kit.tutorial.batch`` results table: colour by the first swept setting, line style by the second."""

    rows: list[dict[str, Any]]  # the runs that completed (status ok)
    sweep: dict[str, list[Any]]  # swept name -> its values, in the order given

    def _key(self, row: Mapping[str, Any], i: int) -> Any:
        """The run's value of the i-th swept setting (a setting given one value is in no row: that value)."""
        names = list(self.sweep)
        if i >= len(names):
            return None
        return row.get(names[i], self.sweep[names[i]][0])

    def setting(self, row: Mapping[str, Any]) -> str:
        return setting(row, list(self.sweep))

    @property
    def best(self) -> dict[str, Any] | None:
        """The run with the lowest final eval loss."""
        scored = [row for row in self.rows if row.get("eval_loss") is not None]
        return min(scored, key=lambda row: row["eval_loss"]) if scored else None

    def best_line(self) -> str:
        best = self.best
        if best is None:
            return _("no run completed")
        return _("lowest eval loss: {setting} ({loss:.3f})").format(setting=self.setting(best), loss=best["eval_loss"])

    def _styles(self) -> tuple[dict[Any, str], dict[Any, str]]:
        colours = {v: f"C{i}" for i, v in enumerate(_sorted({self._key(r, 0) for r in self.rows}))}
        styles = {v: LINE_STYLES[i % len(LINE_STYLES)] for i, v in enumerate(_sorted({self._key(r, 1) for r in self.rows}))}
        return colours, styles

    def curves_figure(self) -> Any:
        """Every run's training loss, smoothed as notebook 20 smooths its curve, from its trainer_log.jsonl."""
        from matplotlib.figure import Figure

        from kit.tutorial.helpers import read_log, smooth_loss

        colours, styles = self._styles()
        fig = Figure(figsize=(7.5, 3.8))
        ax = fig.subplots()
        for row in self.rows:
            log = [r for r in read_log(row["output_dir"]) if "loss" in r]
            ax.plot([r["current_steps"] for r in log], smooth_loss([r["loss"] for r in log]), label=self.setting(row),
                    color=colours[self._key(row, 0)], linestyle=styles[self._key(row, 1)])
        ax.set_xlabel(plot_label(N_("step")))
        ax.set_ylabel(plot_label(N_("training loss (smoothed)")))
        ax.set_title(plot_label(N_("training loss of every run")))
        if self.rows:
            ax.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.16))
        return fig

    def bars_figure(self) -> Any:
        """The final eval loss of each run, one bar per setting."""
        from matplotlib.figure import Figure

        colours, _styles = self._styles()
        fig = Figure(figsize=(7.5, 3.4))
        ax = fig.subplots()
        drawn = ax.bar(range(len(self.rows)), [row["eval_loss"] for row in self.rows],
                       color=[colours[self._key(row, 0)] for row in self.rows])
        ax.bar_label(drawn, fmt="%.3f", fontsize=8)
        ax.set_xticks(range(len(self.rows)), [self.setting(row) for row in self.rows], rotation=20, ha="right", fontsize=8)
        ax.set_ylabel(plot_label(N_("eval loss")))
        ax.set_title(plot_label(N_("final eval loss per setting")))
        return fig

    def curves(self) -> Picture:
        return Picture(self.curves_figure())

    def bars(self) -> Picture:
        return Picture(self.bars_figure())

    def values(self) -> dict[str, Any]:
        best = self.best
        return {"eval_loss": {self.setting(row): row.get("eval_loss") for row in self.rows},
                "curves": len(self.rows), "best": self.setting(best) if best else None}


def sweep_plots(rows: Sequence[Mapping[str, Any]], sweep: Mapping[str, Any]) -> SweepPlots:
    """The runs of ``rows`` (kit.tutorial.batch's table) that completed, with the sweep that made them."""
    return SweepPlots([dict(r) for r in rows if r.get("status") == "ok"],
                      {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in sweep.items()})
