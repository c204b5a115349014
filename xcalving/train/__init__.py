"""Training the ASPP U-Net on a CaFFe patch store, and searching its hyper-parameters.

One module per job: ``config`` (:class:`TrainConfig`, checked when made), ``loop``
(:func:`train`: epochs, validation, early stopping, DDP), ``state`` (checkpoints to resume
from, the history), ``losses`` (the front and zone losses) and ``search`` (:func:`tune`: Optuna
trials as Dask tasks).
"""

from xcalving.train.config import TrainConfig
from xcalving.train.loop import train
from xcalving.train.search import tune

__all__ = ["TrainConfig", "train", "tune"]
