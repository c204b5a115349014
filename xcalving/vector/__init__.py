"""Fronts: from a prediction to time-indexed front lines, their files, trust and change.

One module per job: ``api`` (:func:`fronts`, :func:`label_fronts`), ``tracing`` (front pixels to
ordered polylines), ``regions`` (where fronts may lie), ``files`` (GeoParquet, GeoPackage,
GeoJSON, FlatGeobuf), ``series`` (a front's neighbours in time), ``qc`` (outlier flags),
``confidence`` (a per-front confidence), ``box`` (the terminus box) and ``change`` (terminus
position, change and rate). Arrows point one way: change → qc → box, series; none back.
The wing is not named ``fronts``: that would shadow :func:`xcalving.fronts`.
"""

from xcalving.vector.api import fronts, label_fronts
from xcalving.vector.box import box_from_centreline, orient_box, terminus_position
from xcalving.vector.change import terminus_change
from xcalving.vector.confidence import assess_fronts
from xcalving.vector.files import check_fronts_path, read_fronts, write_fronts
from xcalving.vector.qc import flag_outliers

__all__ = ["assess_fronts", "box_from_centreline", "check_fronts_path", "flag_outliers",
           "fronts", "label_fronts", "orient_box", "read_fronts", "terminus_change",
           "terminus_position", "write_fronts"]
