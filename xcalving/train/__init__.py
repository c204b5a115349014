"""Training the ASPP U-Net on a CaFFe patch store, and searching its hyper-parameters.

One module per job: ``loop`` (:class:`TrainConfig` and :func:`train`: epochs, validation,
early stopping, DDP), ``state`` (checkpoints to resume from, the history), ``losses`` (the
front and zone losses) and ``search`` (:func:`tune`: Optuna trials as Dask tasks).
"""

from xcalving.train.loop import TrainConfig, train
from xcalving.train.search import tune

__all__ = ["TrainConfig", "train", "tune"]
