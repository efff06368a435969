"""Data: the brain MRI phantom, datalists and their verification."""

from monai_hybrid.data.datalist import (
    ALL_LISTS,
    LABELED_LISTS,
    announce_validation,
    datalist_class_names,
    input_images,
    input_root,
    load_list,
    read_datalist,
)
from monai_hybrid.data.mixing import add_sampled_pairs, mixing_weights
from monai_hybrid.data.phantom import PhantomConfig, ensure_phantom, generate_phantom
from monai_hybrid.data.prepare import prepare_datalist
from monai_hybrid.data.selection import select_labeled
from monai_hybrid.data.verify import DatalistError, verify_datalist

__all__ = [
    "ALL_LISTS",
    "add_sampled_pairs",
    "LABELED_LISTS",
    "DatalistError",
    "PhantomConfig",
    "datalist_class_names",
    "announce_validation",
    "ensure_phantom",
    "generate_phantom",
    "input_images",
    "input_root",
    "SimpleITKReader",
    "load_list",
    "mixing_weights",
    "prepare_datalist",
    "read_datalist",
    "select_labeled",
    "verify_datalist",
]


def __getattr__(name: str):
    # SimpleITKReader imports MONAI (and torch): loaded on first use, so the phantom's workers start light.
    if name == "SimpleITKReader":
        from monai_hybrid.data.sitk_reader import SimpleITKReader

        return SimpleITKReader
    raise AttributeError(f"module 'monai_hybrid.data' has no attribute {name!r}")
