"""The paper's datasets, read from their canonical files, plus the spiral of Appendix A.0.1.

Every loader returns an :class:`ImageDataset`: ``uint8`` images (N, C, H, W) and ``int64``
labels (N,), in the files' original order.  :func:`to_float` maps images to float32 in [0, 1]
at the edge; there is no mean/std normalisation anywhere (as in the paper's code).

Every file read is checked against its official md5 (cached in-process per path, size and
mtime).  A missing or corrupt file, or an absent split, raises :class:`DataError` naming the
file, the expected md5 and the fix.  Nothing is ever substituted silently.

Layout under the data root (:func:`resolve_root`: argument, else ``$RLL_DATA``, else
``~/.cache/rll``)::

    MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]   torchvision layout
    cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin          official binary version
    cifar-10-batches-py/{data_batch_1..5,test_batch}               official python version
    cifar-10-test-partial/test_batch_first1017.bin, test_labels.u8 split "test_partial"
    svhn/{train,test}_32x32.mat                                    official cropped digits
    restricted_imagenet/{train,val}/<class>/<image>                ImageFolder

MNIST reads the uncompressed IDX file when present, else the ``.gz``.  CIFAR-10 reads, per
split, whichever official layout holds all of that split's files (binary first).
``test_partial`` is the first 1017 of the 10 000 CIFAR-10 test images (a local copy, not a
test set; its ``note`` says so).  Restricted ImageNet class folders are either the nine
super-class names (``dog`` ... ``insect``) or ImageNet wnids (``n02085620`` ...); see
:func:`load_dataset`.  ``download`` fetches MNIST, CIFAR-10 (python version) and SVHN;
torchvision is imported only inside it.
"""
from __future__ import annotations

from rll.data.download import download
from rll.data.files import check_checksums
from rll.data.readers import RaggedImages, load_dataset, load_resized_train
from rll.data.registry import (
    CHECKSUMS,
    DATASET_INFO,
    DATASETS,
    RESIMAGENET_RANGES,
    DataError,
    DatasetInfo,
    ImageDataset,
    check_data_root,
    resolve_root,
    to_float,
)
from rll.data.synthetic import make_spiral


__all__ = ["DATASETS", "DataError", "DatasetInfo", "RESIMAGENET_RANGES", "DATASET_INFO", "CHECKSUMS", "ImageDataset", "resolve_root", "to_float", "check_data_root", "check_checksums", "RaggedImages", "load_resized_train", "load_dataset", "download", "make_spiral"]
