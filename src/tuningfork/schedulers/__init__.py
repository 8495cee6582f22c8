"""Schedulers watch a trial's reports and answer continue, stop or pause."""

from tuningfork.schedulers.base import Decision, NoScheduler, Scheduler
from tuningfork.schedulers.median import MedianStopping

__all__ = ["Decision", "MedianStopping", "NoScheduler", "Scheduler"]
