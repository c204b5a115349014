"""Cubes in and out: Zarr cubes, GeoTIFF/COG scenes, GeoTIFF exports, lineage and resuming.

One module per job: ``cube`` (opening a Zarr cube, the blocks a store holds), ``write``
(:func:`write_cube`, safely or resumably), ``resume`` (continuing an interrupted write),
``scenes`` and ``scene_files`` (per-date GeoTIFF/COG files as one lazy cube), ``lineage`` (where
lazy data come from, and a fingerprint of what they hold), ``export`` and ``cog`` (a prediction as
Cloud-Optimized GeoTIFFs). Importing it loads neither torch, matplotlib nor geopandas.
"""

from xcalving.io.cube import missing_blocks, open_cube
from xcalving.io.export import export_geotiffs
from xcalving.io.lineage import input_fingerprint, input_paths
from xcalving.io.scenes import open_scenes
from xcalving.io.write import write_cube

__all__ = ["export_geotiffs", "input_fingerprint", "input_paths", "missing_blocks", "open_cube",
           "open_scenes", "write_cube"]
