"""Speed of the synthetic generator: a 1024 x 1024 scene should take well under a second."""

from xcalving.data.synthetic import glacier_cube


class GlacierCube:
    params = [256, 1024]
    param_names = ["size"]

    def setup(self, size):
        glacier_cube(1, shape=(64, 64), seed=0)  # pay the lazy imports before timing

    def time_one_scene(self, size):
        glacier_cube(1, shape=(size, size), seed=1)

    def time_four_scenes(self, size):
        glacier_cube(4, shape=(size, size), seed=1)

    def peakmem_one_scene(self, size):
        glacier_cube(1, shape=(size, size), seed=1)
