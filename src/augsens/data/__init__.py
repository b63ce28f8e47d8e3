"""Images: sources decoded once into a uint8 cache on the device.

- :func:`bundled_photos`: the colour photos shipped with scikit-image and scikit-learn (the embedded default);
- :func:`image_folder`: an ImageFolder-style tree (ILSVRC, Places365), optionally a class-balanced subset;
- :func:`train_val`: a train and a val folder as the two partitions of a study;
- :class:`ImageCache`: the decoded images (``[N, 3, 224, 224]`` uint8 by default, class by class) and
  ``gather``;
- :class:`SampleCache`: the same for inputs that are not images (``[N, C, T]`` signals, ...), built by
  :func:`augsens.data.inputs.as_samples`;
- :func:`redraw_within_class`: paper mode's per-row re-draw of the image within its class.

Examples
--------
>>> import torch
>>> from augsens.data import bundled_photos
>>> from augsens.core.factors import ImageFactor
>>> photos = bundled_photos()
>>> factor = ImageFactor("image", photos.class_sizes)
>>> x = photos.gather(factor.decode(torch.tensor([0.0, 0.15])))
>>> tuple(x.shape), x.dtype
((2, 3, 224, 224), torch.float32)
"""

from .cache import ImageCache, SampleCache, decode_image, redraw_within_class
from .sources import BUNDLED_PHOTOS, IMG_EXTENSIONS, TrainVal, bundled_photos, image_folder, train_val

__all__ = [
    "ImageCache",
    "SampleCache",
    "bundled_photos",
    "image_folder",
    "train_val",
    "TrainVal",
    "redraw_within_class",
    "decode_image",
    "BUNDLED_PHOTOS",
    "IMG_EXTENSIONS",
]
