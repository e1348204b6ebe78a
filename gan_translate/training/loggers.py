"""Weights & Biases logging that never blocks or breaks training.

``WandbLogger(mode="auto")`` (the default in every config) runs **offline** unless the user has logged
in (``wandb login`` / ``WANDB_API_KEY``) or asked for online mode (``WANDB_MODE=online``). Offline runs
are written under ``<save_dir>/wandb/offline-run-*`` and can be uploaded later with ``wandb sync``.
If an online run cannot start (no network, service down), it falls back to offline with a warning
instead of failing the training run.
"""

from __future__ import annotations

import netrc
import os
import warnings
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from lightning.pytorch.loggers import WandbLogger as _LightningWandbLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from gan_translate.core.lightning_compat import discard_wandb_experiment, started_wandb_run, wandb_init_kwargs

__all__ = ["WANDB_MODES", "WandbLogger", "WandbMode", "resolve_wandb_mode", "start_wandb_run", "wandb_credentials_available"]

WandbMode = Literal["auto", "online", "offline", "disabled"]
WANDB_MODES: tuple[str, ...] = ("auto", "online", "offline", "disabled")

# With credentials but no network, wandb.init would wait ~100 s before giving up: keep it short.
_ONLINE_INIT_TIMEOUT_S = 30.0


def _quiet_settings(online: bool) -> Any:
    """wandb's settings for a training run: ``quiet`` (its end-of-run history and summary tables and the log-folder
    lines are left out: the run's values are in the run, and the fit's summary names the run folder); online, a short
    wait for the network."""
    import wandb

    return wandb.Settings(quiet=True, **({"init_timeout": _ONLINE_INIT_TIMEOUT_S} if online else {}))


def wandb_credentials_available() -> bool:
    """True when ``wandb login`` has stored a key (netrc) or ``WANDB_API_KEY`` is set."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_wandb_mode(mode: WandbMode = "auto") -> str:
    """Pick the wandb mode: an explicit mode wins, then ``WANDB_MODE``, then online only when logged in."""
    if mode != "auto":
        return mode
    env_mode = os.environ.get("WANDB_MODE", "").strip().lower()
    if env_mode in {"online", "offline", "disabled"}:
        return env_mode
    if env_mode == "dryrun":
        return "offline"
    return "online" if wandb_credentials_available() else "offline"


class WandbLogger(_LightningWandbLogger):
    """Lightning's ``WandbLogger`` with an offline-first ``mode`` and a fallback that keeps training alive.

    Args:
        project: W&B project name.
        name: display name of the run.
        save_dir: folder for the local run files (``<save_dir>/wandb/``).
        mode: ``auto`` (online only when logged in), ``online``, ``offline`` or ``disabled``.
        log_model: upload checkpoints as artifacts (online only).
        id: resume this W&B run id (set automatically when training resumes from a checkpoint).
        tags: run tags.
        **kwargs: passed on to ``wandb.init``.
    """

    def __init__(
        self,
        project: str = "gan-translate",
        name: str | None = None,
        save_dir: str = "runs",
        mode: WandbMode = "auto",
        log_model: bool = False,
        id: str | None = None,  # noqa: A002 - Lightning's and wandb's name for it
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        resolved = resolve_wandb_mode(mode)
        os.makedirs(save_dir, exist_ok=True)
        if resolved != "disabled" and kwargs.get("settings") is None:  # the CLI passes every wandb.init keyword, None
            kwargs["settings"] = _quiet_settings(online=resolved == "online")
        super().__init__(
            project=project,
            name=name,
            save_dir=save_dir,
            id=id,
            log_model=log_model if resolved == "online" else False,
            mode=resolved,
            tags=tags,
            **kwargs,
        )
        # Lightning passes `anonymous=None` on our behalf; wandb warns that the setting has no effect, whatever its
        # value. Not passing it changes nothing but that warning.
        init = wandb_init_kwargs(self)
        if init.get("anonymous") is None:
            init.pop("anonymous", None)
        self.mode = resolved

    @rank_zero_only
    def finalize(self, status: str) -> None:
        super().finalize(status)
        # Close the run so its files are flushed and the next `fit` in this process starts a new run
        # (Lightning leaves it open, and a later WandbLogger would silently reuse it).
        run = started_wandb_run(self)
        if run is not None and hasattr(run, "finish"):
            run.finish(exit_code=0 if status == "success" else 1)
            # A later stage (e.g. `trainer.test` after `fit`) continues this same run.
            discard_wandb_experiment(self, run_id=run.id)

    @property
    def experiment(self) -> Any:
        try:
            return super().experiment
        except Exception as error:
            init = wandb_init_kwargs(self)
            if init.get("mode") != "online":
                raise
            warnings.warn(
                f"W&B online run could not start ({type(error).__name__}: {error}); logging offline instead. "
                "Upload it later with `wandb sync`.",
                stacklevel=2,
            )
            init["mode"] = "offline"
            init["settings"] = _quiet_settings(online=False)
            self.mode = "offline"
            discard_wandb_experiment(self)
            return super().experiment


def start_wandb_run(project: str, directory: str | Path, mode: WandbMode, job_type: str, config: dict[str, Any]) -> Any:
    """A W&B run for a command outside training (``stylize``, ``compare``): offline unless logged in, and never a
    long wait for the network (as :class:`WandbLogger`). Its local files go to ``directory``."""
    import wandb

    Path(directory).mkdir(parents=True, exist_ok=True)
    resolved = resolve_wandb_mode(mode)
    settings = wandb.Settings(init_timeout=_ONLINE_INIT_TIMEOUT_S) if resolved == "online" else None
    return wandb.init(project=project, dir=str(directory), mode=resolved, job_type=job_type,
                      config=config, settings=settings, reinit="finish_previous")
