"""Pathology vertical: whole-slide H&E images to genotype predictions (KRAS, TP53, MSI...) with attention
heatmaps. The classes behind every step, for notebooks:

    from vai.verticals.path import SlideReader, TissueDetector, Tiler, StainNormalizer, TileEmbedder, \
        BagSet, GenotypeModel, read_slide_table
"""
from .domain import FeatureDomain
from .embed import TileEmbedder
from .genotype import BagSet, GenotypeModel, TrainConfig, cross_validate
from .labels import read_slide_table, tcga_labels
from .slide import SlideInfo, SlideReader
from .stain import StainNormalizer
from .synth import make_synthetic_dataset, make_synthetic_slide
from .tiling import Tiler, TileGrid, read_grid_h5
from .tissue import TissueDetector, TissueMask

__all__ = ["SlideReader", "SlideInfo", "TissueDetector", "TissueMask", "Tiler", "TileGrid", "read_grid_h5",
           "StainNormalizer", "TileEmbedder", "BagSet", "GenotypeModel", "TrainConfig", "cross_validate",
           "FeatureDomain",
           "read_slide_table", "tcga_labels", "make_synthetic_dataset", "make_synthetic_slide"]
